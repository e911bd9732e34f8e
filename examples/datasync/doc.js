// Observe a data-sync record and edit it, with plain autobahn-js.
//
//   node doc.js watch app.doc.hello              print every version of the record
//   node doc.js set app.doc.hello title "Hi"     change one field (a JSON Patch)
//   node doc.js inc app.doc.hello likes          increment a counter (an intent op)
//
// Router: wamp-router --config realms/datasync.toml (ws://127.0.0.1:8080/ws, realm1).
// Set WAMP_URL to use another router.
const autobahn = require('autobahn');

const [cmd, uri, field, value] = process.argv.slice(2);
if (!cmd || !uri) {
  console.error('usage: node doc.js watch|set|inc RECORD_URI [FIELD [VALUE]]');
  process.exit(2);
}
const connection = new autobahn.Connection({
  url: process.env.WAMP_URL || 'ws://127.0.0.1:8080/ws', realm: 'realm1',
  max_retries: 0,
});

// RFC 6902 for the ops the router sends (add, remove, replace, move, copy)
function applyPatch(doc, ops) {
  doc = JSON.parse(JSON.stringify(doc));
  const tokens = (p) => p.split('/').slice(1).map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
  const get = (p) => tokens(p).reduce((node, t) => node[t], doc);
  const put = (p, v, insert) => {
    const path = tokens(p);
    if (path.length === 0) { doc = v; return; }
    const last = path.pop();
    const parent = path.reduce((node, t) => node[t], doc);
    if (Array.isArray(parent)) parent.splice(Number(last), insert ? 0 : 1, v);
    else parent[last] = v;
  };
  const remove = (p) => {
    const path = tokens(p);
    const last = path.pop();
    const parent = path.reduce((node, t) => node[t], doc);
    if (Array.isArray(parent)) parent.splice(Number(last), 1); else delete parent[last];
  };
  for (const op of ops) {
    if (op.op === 'add') put(op.path, op.value, true);
    else if (op.op === 'replace') put(op.path, op.value, false);
    else if (op.op === 'remove') remove(op.path);
    else if (op.op === 'copy') put(op.path, JSON.parse(JSON.stringify(get(op.from))), true);
    else if (op.op === 'move') { const v = get(op.from); remove(op.from); put(op.path, v, true); }
  }
  return doc;
}

connection.onopen = async (session) => {
  if (cmd === 'watch') {
    let v = -1; let epoch = null; let doc = null;
    const resync = async () => {  // a gap: fetch what is missing
      const got = await session.call('sync.get', [uri], { since: v, epoch });
      if (got.patches) got.patches.forEach(onPatch); else onSnapshot(got);
    };
    const show = (how) => console.log(`v${v} (${how}):`, JSON.stringify(doc));
    const onSnapshot = (s) => {
      if (s.epoch !== epoch || s.v > v) { v = s.v; epoch = s.epoch; doc = s.value; show('snapshot'); }
    };
    const onPatch = (p) => {
      if (p.v <= v) return;                       // a duplicate
      if (p.v > v + 1) { resync(); return; }      // a gap
      doc = p.deleted ? null : (p.ops ? applyPatch(doc, p.ops) : p.value);
      v = p.v;
      show(p.deleted ? 'deleted' : 'patch');
    };
    await session.subscribe(uri, (args, kw, details) => {
      if (details.retained) onSnapshot(kw); else onPatch(kw);
    }, { get_retained: true });
    console.log(`watching ${uri}; edit it from another terminal (Ctrl-C to stop)`);
    return;
  }
  try {
    let res;
    if (cmd === 'set') {
      let parsed = value;
      try { parsed = JSON.parse(value); } catch (e) { /* a plain string */ }
      res = await session.call('sync.patch', [uri, [{ op: 'x-set', path: `/${field}`, value: parsed }]]);
    } else if (cmd === 'inc') {
      res = await session.call('sync.patch', [uri, [{ op: 'x-inc', path: `/${field}`, by: 1 }]]);
    } else {
      throw new Error(`unknown command ${cmd}`);
    }
    console.log(`${uri} is now at version ${res.v}`);
  } catch (e) {
    console.error('failed:', e.error || e.message, e.args || '', e.kwargs || '');
    process.exitCode = 1;
  }
  connection.close();
};
connection.onclose = (reason, details) => {
  if (reason === 'unreachable') console.error('cannot reach the router:', details.reason || '');
  return true;
};
connection.open();
