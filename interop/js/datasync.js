#!/usr/bin/env node
// Data-sync driver: unmodified autobahn-js (22.11.1) against a router that runs
// realms/datasync.toml (records under "app.doc.", conflict policy "rebase", implicit
// create). See README.md, "Data-sync: JSON records that stay in sync".
//
//   node datasync.js --url ws://127.0.0.1:PORT/ws [--serializer json|msgpack|cbor]
//                    [--scenarios a,b] [--timeout 15] [--tag TAG] [--list]
//
// Prints one JSON line per scenario on stdout:
//   {"client":"autobahn-js","serializer":"json","scenario":"...","result":"PASS"|"FAIL",
//    "detail":"...", "wire": [...] (FAIL only: the WAMP messages each connection received)}
// and logs on stderr. Exit status: 0 = every scenario passed, 1 = a FAIL, 2 = usage.
//
// Every scenario keeps its own replica of the record: it applies the RFC 6902 ops the
// router sends with its own applier (sync_replica.js) and compares the replica with
// sync.get at the end. Record URIs are app.doc.abjs.<tag>.<serializer>.<scenario>..., so
// runs against the same router do not meet.

'use strict';

const { Replica, canonical, deepEqual, clone } = require('./sync_replica.js');
const { Check, expect, expectEqual, makeLog, runMain, show, withTimeout } = require('./driver_kit.js');

let autobahn;
try {
   autobahn = require('autobahn');
} catch (e) {
   process.stderr.write(`datasync: cannot load autobahn (run "npm ci" in interop/js): ${e.message}\n`);
   process.exit(2);
}

const CLIENT = 'autobahn-js';

const log = makeLog('datasync');

// autobahn-js logs every connection close as a multi-line object: one line each
autobahn.log.warn = (...parts) => log('autobahn:', parts.map((p) => (typeof p === 'string' ? p : show(p))).join(' '));

// --------------------------------------------------------------------------------------
// connections, with a wire tap: autobahn.transports.register() is autobahn-js' public
// way to add a transport; this one wraps the websocket transport and records each WAMP
// message the session receives, in arrival order (for the ordering checks).
// --------------------------------------------------------------------------------------

const MSG = { ERROR: 8, PUBLISHED: 17, SUBSCRIBED: 33, EVENT: 36, RESULT: 50 };

function label(msg) {
   switch (msg[0]) {
      case 2: return 'WELCOME';
      case MSG.SUBSCRIBED: return 'SUBSCRIBED';
      case MSG.PUBLISHED: return 'PUBLISHED';
      case MSG.EVENT: {
         const kw = msg[5] || {};
         return `EVENT${msg[3] && msg[3].retained ? ' retained' : ''} v${kw.v}`;
      }
      case MSG.RESULT: {
         const r = (msg[3] || [])[0];
         return r && typeof r === 'object' && 'v' in r ? `RESULT v${r.v}` : 'RESULT';
      }
      case MSG.ERROR: return `ERROR ${msg[4]}`;
      default: return `type ${msg[0]}`;
   }
}

function tappedFactory() {
   const Inner = autobahn.transports.get('websocket');
   function Factory(options) {
      this._inner = new Inner(options);
   }
   Factory.prototype.type = 'websocket';
   Factory.prototype.create = function () {
      const t = this._inner.create();
      if (!t) return t;
      t.rx = [];
      let onmessage = t.onmessage;
      Object.defineProperty(t, 'onmessage', {
         configurable: true,
         get() {
            return function (msg) {
               t.rx.push(label(msg));
               return onmessage.call(t, msg);
            };
         },
         set(fn) { onmessage = fn; },
      });
      return t;
   };
   return Factory;
}
autobahn.transports.register('tapped-websocket', tappedFactory());

function makeSerializer(name) {
   const S = autobahn.serializer;
   if (name === 'json') return new S.JSONSerializer();
   if (name === 'msgpack') return new S.MsgpackSerializer();
   return new S.CBORSerializer();
}

class Ctx {
   constructor(opts, name) {
      this.opts = opts;
      this.name = name;
      this.conns = [];
      this.seq = 0;
   }

   uri(suffix) {
      return `app.doc.abjs.${this.opts.tag}.${this.opts.serializer}.${this.name}${suffix ? `.${suffix}` : ''}`;
   }

   // a joined session: {name, conn, session, rx (labels of received messages), closed}
   connect(name) {
      const handle = { name: name || `c${++this.seq}`, conn: null, session: null, rx: [], closed: null };
      const p = new Promise((resolve, reject) => {
         let opened = false;
         let closedResolve;
         handle.closed = new Promise((r) => { closedResolve = r; });
         const conn = new autobahn.Connection({
            transports: [{
               type: 'tapped-websocket', url: this.opts.url,
               serializers: [makeSerializer(this.opts.serializer)],
            }],
            realm: 'realm1',
            max_retries: 0,
            retry_if_unreachable: false,
            on_user_error: (err, msg) => log('user error:', msg || '', err && (err.stack || show(err))),
            on_internal_error: (err, msg) => log('internal error:', msg || '', err && (err.stack || show(err))),
         });
         handle.conn = conn;
         this.conns.push(handle);
         conn.onopen = (session) => {
            opened = true;
            handle.session = session;
            handle.rx = conn._transport.rx; // the tapped transport's list (read only)
            resolve(handle);
         };
         conn.onclose = (reason, details) => {
            closedResolve({ reason, details });
            if (!opened) reject(new Error(`join failed: ${reason} ${show(details)}`));
            return true; // no reconnect
         };
         conn.open();
      });
      return withTimeout(p, 5000, `joining realm1 at ${this.opts.url}`);
   }

   async close(handle) {
      try {
         if (handle.conn.isOpen || handle.conn.isConnected) handle.conn.close();
      } catch (e) {
         // already closed
      }
      await withTimeout(handle.closed, 3000, `closing ${handle.name}`).catch((e) => log(e.message));
   }

   async closeAll() {
      await Promise.all(this.conns.map((h) => this.close(h)));
   }
}

// --------------------------------------------------------------------------------------
// helpers
// --------------------------------------------------------------------------------------

// every sync.* procedure answers with one positional dict; autobahn-js hands a single
// positional result over as that value (a Result object only for several args or kwargs)
async function call(h, procedure, args, kwargs) {
   const res = await h.session.call(procedure, args, kwargs);
   if (res instanceof autobahn.Result) {
      throw new Check(`${procedure}: expected one positional dict, got Result args=${show(res.args)} kwargs=${show(res.kwargs)}`);
   }
   expect(res !== null && typeof res === 'object' && !Array.isArray(res),
      `${procedure}: expected a dict, got ${show(res)}`);
   return res;
}

// expects the promise to reject with the WAMP error `uri`; returns the autobahn.Error
// ({error, args, kwargs}: autobahn-js' error object, not a JS Error)
async function expectError(promise, uri, what) {
   let res;
   try {
      res = await promise;
   } catch (err) {
      if (err instanceof autobahn.Error) {
         expect(err.error === uri, `${what}: expected ${uri}, got ${err.error} ${show(err.args)} ${show(err.kwargs)}`);
         expect(Array.isArray(err.args) && typeof err.args[0] === 'string',
            `${what}: ${uri} without a message in args[0]: ${show(err.args)}`);
         return err;
      }
      throw new Check(`${what}: expected ${uri}, got ${err && (err.stack || show(err))}`);
   }
   throw new Check(`${what}: expected ${uri}, but it succeeded with ${show(res)}`);
}

const ACK = { acknowledge: true };

// PUBLISH a write body (kwargs), acknowledged; args stay empty
function write(h, uri, body, options) {
   return h.session.publish(uri, [], body, { ...ACK, ...(options || {}) });
}

// observe a record: SUBSCRIBE with get_retained, the retained event first, then changes
async function observe(h, uri, name) {
   const replica = new Replica(name || h.name);
   replica.calls = []; // [{retained, args, kwargs}] as the handler got them
   replica.subscription = await h.session.subscribe(uri, (args, kwargs, details) => {
      replica.calls.push({ retained: details.retained, args, kwargs: clone(kwargs) });
      replica.receive(details.retained, args, kwargs);
   }, { get_retained: true });
   await replica.waitFor(0, 5000);
   expect(replica.calls[0].retained === true,
      `${replica.name}: the first event after SUBSCRIBED is not the retained one: ${show(replica.calls[0])}`);
   return replica;
}

async function matchesGet(h, uri, ...replicas) {
   const got = await call(h, 'sync.get', [uri]);
   for (const r of replicas) r.assertMatches(got, `sync.get ${uri} (v${got.v})`);
   return got;
}

// the labels in `seq` appear in `rx` in this order (other messages may be in between)
function expectOrder(rx, seq, what) {
   let i = 0;
   for (const item of rx) {
      if (i < seq.length && item === seq[i]) i++;
   }
   expect(i === seq.length, `${what}: expected ${seq.join(' -> ')} in this order, received ${rx.join(', ')}`);
}

function checkChange(p, what) {
   expect(typeof p.ts === 'string' && /^\d{4}-\d\d-\d\dT/.test(p.ts), `${what}: ts is not ISO 8601: ${show(p)}`);
   expect(!('by' in p), `${what}: "by" present although disclose_author = false: ${show(p)}`);
}

// --------------------------------------------------------------------------------------
// scenarios
// --------------------------------------------------------------------------------------

const SCENARIOS = {};

// SUBSCRIBE with get_retained on a record never written: {v: 0, exists: false}; on an
// existing one: its state
SCENARIOS.observe = async (ctx) => {
   const a = await ctx.connect('a');
   const b = await ctx.connect('b');
   const uri = ctx.uri();
   const ra = await observe(a, uri, 'a');
   const first = ra.calls[0];
   expectEqual('retained event args', first.args, []);
   expect(first.kwargs.v === 0 && first.kwargs.exists === false && first.kwargs.value === null,
      `retained event of a new record: expected {v: 0, exists: false, value: null}, got ${show(first.kwargs)}`);
   expect(typeof first.kwargs.epoch === 'string' && first.kwargs.epoch.length > 0,
      `retained event without an epoch: ${show(first.kwargs)}`);
   expect(!('deleted' in first.kwargs) || first.kwargs.deleted === false, `a new record is not deleted: ${show(first.kwargs)}`);
   const head = await call(b, 'sync.head', [uri]);
   expectEqual('sync.head of a new record', head, { v: 0, epoch: ra.epoch, exists: false, deleted: false });
   await matchesGet(b, uri, ra);

   const res = await call(b, 'sync.set', [uri, { title: 'Hello', tags: ['a'] }]);
   expectEqual('sync.set result', res, { v: 1, rebased: false });
   await ra.waitFor(1);
   const created = ra.changes[0];
   expect('value' in created && !('ops' in created), `the write that creates a record comes as a whole value: ${show(created)}`);
   checkChange(created, 'v1');

   // a second subscription (another session) to the existing record gets its state
   const rb = await observe(b, uri, 'b');
   const snap = rb.calls[0].kwargs;
   expect(snap.v === 1 && deepEqual(snap.value, { title: 'Hello', tags: ['a'] }) && snap.epoch === ra.epoch,
      `retained event of an existing record: ${show(snap)}`);
   expect(snap.exists !== false && !snap.deleted, `an existing record's snapshot says exists=false or deleted: ${show(snap)}`);
   await matchesGet(a, uri, ra, rb);
   expectEqual('a log', ra.log, ['snapshot@0', 'change@1']);
   expectEqual('b log', rb.log, ['snapshot@1']);
};

// PUBLISH {ops | merge | value} with acknowledge: PUBLISHED, and every observer applies
SCENARIOS.write_publish = async (ctx) => {
   const a = await ctx.connect('a');
   const b = await ctx.connect('b');
   const uri = ctx.uri();
   const ra = await observe(a, uri, 'a');

   const pub = await write(b, uri, { ops: [{ op: 'add', path: '/title', value: 'Hello' }] });
   expect(pub && typeof pub.id === 'number', `acknowledged PUBLISH: expected a Publication, got ${show(pub)}`);
   await write(b, uri, { ops: [{ op: 'add', path: '/tags', value: ['x'] }, { op: 'add', path: '/tags/-', value: 'y' }], cid: 'abjs-pub-2' });
   await write(b, uri, { merge: { title: 'Hi', n: 1, meta: { a: { b: 1 } }, tags: null } });
   await write(b, uri, { ops: [{ op: 'x-inc', path: '/n', by: 2 }, { op: 'x-set', path: '/deep/er/key', value: true }] });
   await write(b, uri, { ops: [{ op: 'move', from: '/meta/a', path: '/moved' }, { op: 'copy', from: '/moved', path: '/copied' }] });
   await ra.waitFor(5);

   const [c1, c2, c3, c4, c5] = ra.changes;
   expect('value' in c1, `v1 (creates the record) comes as a value: ${show(c1)}`);
   expect(c2.cid === 'abjs-pub-2' && Array.isArray(c2.ops), `v2 echoes the cid: ${show(c2)}`);
   expect(!c2.ops.some((op) => op.path.endsWith('/-')), `v2: "-" not resolved to an index: ${show(c2.ops)}`);
   expect(Array.isArray(c3.ops) && c3.ops.length > 0, `v3: a merge patch comes as ops: ${show(c3)}`);
   expect(Array.isArray(c4.ops) && c4.ops.every((op) => !op.op.startsWith('x-')), `v4: intent ops expanded: ${show(c4)}`);
   for (const c of ra.changes) checkChange(c, `v${c.v}`);
   expectEqual('replica after five PUBLISHes', ra.value,
      { title: 'Hi', n: 3, meta: {}, deep: { er: { key: true } }, moved: { b: 1 }, copied: { b: 1 } });

   // a whole value
   await write(b, uri, { value: { replaced: [1, 2, 3] }, cid: 'abjs-pub-6' });
   await ra.waitFor(6);
   expect('value' in ra.changes[5] && ra.changes[5].cid === 'abjs-pub-6', `v6: a whole-value write: ${show(ra.changes[5])}`);

   // the body goes in kwargs; args are refused
   const e = await expectError(b.session.publish(uri, [{ op: 'add', path: '/x', value: 1 }], {}, ACK),
      'sync.error.invalid_patch', 'PUBLISH with the body in args');
   expect(/kwargs/.test(e.args[0]), `the error says why: ${e.args[0]}`);
   await expectError(write(b, uri, { ops: [{ op: 'add', path: '/a' }], value: {} }), 'sync.error.invalid_patch',
      'PUBLISH with two bodies');
   await expectError(write(b, uri, { value: {} }, { exclude: [1] }), 'sync.error.invalid_options',
      'PUBLISH with exclude');
   await matchesGet(b, uri, ra);
   expectEqual('a log', ra.log, ['snapshot@0', 'change@1', 'change@2', 'change@3', 'change@4', 'change@5', 'change@6']);
};

// CALL sync.patch / sync.set / sync.merge, by position and by name
SCENARIOS.write_call = async (ctx) => {
   const a = await ctx.connect('a');
   const b = await ctx.connect('b');
   const uri = ctx.uri();
   const ra = await observe(a, uri, 'a');

   expectEqual('sync.set', await call(b, 'sync.set', [uri, { title: 'T', items: [] }]), { v: 1, rebased: false });
   expectEqual('sync.patch', await call(b, 'sync.patch', [uri, [
      { op: 'add', path: '/items/-', value: 'a' },
      { op: 'x-append-unique', path: '/items', value: 'b' },
      { op: 'test', path: '/title', value: 'T' },
   ]]), { v: 2, rebased: false });
   expectEqual('sync.merge', await call(b, 'sync.merge', [uri, { title: 'T2', extra: { k: 1 } }]), { v: 3, rebased: false });
   expectEqual('sync.patch by name', await call(b, 'sync.patch', [], {
      uri, ops: [{ op: 'x-inc', path: '/count', by: 5 }], cid: 'abjs-call-4',
   }), { v: 4, rebased: false });
   // a write that changes nothing makes no version
   const same = await call(b, 'sync.patch', [uri, [{ op: 'x-append-unique', path: '/items', value: 'a' }]]);
   expect(same.unchanged === true && same.v === 4, `a write that changes nothing: expected {v: 4, unchanged: true}, got ${show(same)}`);
   // conditional, up to date
   expectEqual('sync.set with base = v', await call(b, 'sync.set', [uri, { title: 'last', items: ['z'] }], { base: 4 }),
      { v: 5, rebased: false });
   expectEqual('sync.merge with base by name', await call(b, 'sync.merge', [], { uri, merge: { items: null, n: 1 }, base: 5 }),
      { v: 6, rebased: false });
   await ra.waitFor(6);
   expect(ra.changes[3].cid === 'abjs-call-4', `v4 echoes the cid: ${show(ra.changes[3])}`);
   expect('value' in ra.changes[4], `v5 (sync.set) comes as a whole value: ${show(ra.changes[4])}`);
   for (const c of ra.changes) checkChange(c, `v${c.v}`);
   expectEqual('replica', ra.value, { title: 'last', n: 1 });
   await expectError(call(b, 'sync.patch', [uri, [{ op: 'test', path: '/title', value: 'nope' }]]),
      'sync.error.test_failed', 'sync.patch with a failing test');
   await expectError(call(b, 'sync.patch', [uri, [{ op: 'add', path: '/constructor', value: 1 }]]),
      'sync.error.invalid_key', 'sync.patch of /constructor');
   await expectError(call(b, 'sync.get', ['com.example.not_a_record']), 'sync.error.not_managed', 'sync.get outside the domain');
   await matchesGet(b, uri, ra);
   expectEqual('a log', ra.log, ['snapshot@0', 'change@1', 'change@2', 'change@3', 'change@4', 'change@5', 'change@6']);
};

// two observers of the same record follow the same versions
SCENARIOS.second_observer = async (ctx) => {
   const a = await ctx.connect('a');
   const b = await ctx.connect('b');
   const w = await ctx.connect('w');
   const uri = ctx.uri();
   const ra = await observe(a, uri, 'a');
   await call(w, 'sync.set', [uri, { list: [], n: 0 }]);
   await write(w, uri, { ops: [{ op: 'add', path: '/list/0', value: 'first' }] });
   await call(w, 'sync.patch', [uri, [{ op: 'x-inc', path: '/n', by: 1 }]]);
   await ra.waitFor(3);
   // b arrives late: the state at v3, then the same changes as a
   const rb = await observe(b, uri, 'b');
   expect(rb.v === 3 && deepEqual(rb.value, ra.value), `b's snapshot: v${rb.v} ${canonical(rb.value)}, a: v${ra.v} ${canonical(ra.value)}`);
   for (let i = 0; i < 6; i++) {
      if (i % 2) await write(w, uri, { ops: [{ op: 'add', path: '/list/0', value: `p${i}` }] });
      else await call(w, 'sync.patch', [uri, [{ op: 'x-inc', path: '/n', by: i }, { op: 'remove', path: '/list/0' }, { op: 'add', path: '/list/-', value: i }]]);
   }
   await Promise.all([ra.waitFor(9), rb.waitFor(9)]);
   expectEqual('b log', rb.log, ['snapshot@3', 'change@4', 'change@5', 'change@6', 'change@7', 'change@8', 'change@9']);
   expectEqual('the changes a and b received after v3', rb.changes, ra.changes.slice(3));
   expectEqual('a and b', rb.value, ra.value);
   await matchesGet(w, uri, ra, rb);
};

// SUBSCRIBED -> retained snapshot -> changes; the writer's own change event before its
// RESULT (CALL) or PUBLISHED (PUBLISH with exclude_me: false)
SCENARIOS.ordering = async (ctx) => {
   const a = await ctx.connect('a');
   const b = await ctx.connect('b');
   const uri = ctx.uri();
   await call(b, 'sync.set', [uri, { n: 0 }]);
   await call(b, 'sync.patch', [uri, [{ op: 'x-inc', path: '/n', by: 1 }]]);
   const mark = a.rx.length;
   const ra = await observe(a, uri, 'a');
   await call(b, 'sync.patch', [uri, [{ op: 'x-inc', path: '/n', by: 1 }]]);
   await ra.waitFor(3);
   const wire = a.rx.slice(mark);
   expectEqual('received after SUBSCRIBE', wire, ['SUBSCRIBED', 'EVENT retained v2', 'EVENT v3']);
   expectEqual('a log', ra.log, ['snapshot@2', 'change@3']);

   for (let i = 0; i < 5; i++) {
      const m = a.rx.length;
      const res = await call(a, 'sync.patch', [uri, [{ op: 'x-inc', path: '/n', by: 1 }]]);
      // the EVENT was handled before the RESULT: the replica holds the version already
      expect(ra.v === res.v, `after the RESULT of v${res.v} the replica is at v${ra.v}: the change event came later`);
      expectEqual(`received for the CALL of v${res.v}`, a.rx.slice(m), [`EVENT v${res.v}`, `RESULT v${res.v}`]);
   }
   // PUBLISH with exclude_me: false: the own change before PUBLISHED
   const m = a.rx.length;
   await write(a, uri, { ops: [{ op: 'replace', path: '/n', value: 100 }] }, { exclude_me: false });
   expect(ra.v === 9 && ra.value.n === 100, `after PUBLISHED the replica is at v${ra.v} ${canonical(ra.value)}`);
   expectEqual('received for the PUBLISH of v9', a.rx.slice(m), ['EVENT v9', 'PUBLISHED']);
   // with the default exclude_me the publisher gets no event of its own write
   const m2 = a.rx.length;
   await write(a, uri, { ops: [{ op: 'replace', path: '/n', value: 101 }] });
   await call(a, 'sync.patch', [uri, [{ op: 'x-inc', path: '/n', by: 1 }]]);
   expectEqual('received for a PUBLISH (exclude_me default) then a CALL', a.rx.slice(m2),
      ['PUBLISHED', 'EVENT v11', 'RESULT v11']);
   expect(ra.gaps.length === 1 && ra.v === 9, `the replica saw the gap at v10: ${show(ra.gaps)} v${ra.v}`);
   // the gap is repaired the documented way
   ra.gaps = [];
   ra.resync(await call(a, 'sync.get', [uri], { since: ra.v, epoch: ra.epoch }));
   expect(ra.value.n === 102, `after the resync: ${canonical(ra.value)}`);
   await matchesGet(b, uri, ra);
};

// a stale conditional write on a path someone else changed: sync.error.conflict with what
// was missed; the client rebases locally and writes again
SCENARIOS.conflict = async (ctx) => {
   const a = await ctx.connect('a');
   const b = await ctx.connect('b');
   const uri = ctx.uri();
   const ra = await observe(a, uri, 'a');
   await call(b, 'sync.set', [uri, { title: 't', body: 'b', items: [] }]);
   await ra.waitFor(1);
   const local = new Replica('a-local'); // a's state at v1, while b writes
   local.snapshot({ v: ra.v, epoch: ra.epoch, value: ra.value });
   await call(b, 'sync.patch', [uri, [{ op: 'replace', path: '/title', value: 'B' }]], { base: 1 }); // v2

   const err = await expectError(
      call(a, 'sync.patch', [uri, [{ op: 'replace', path: '/title', value: 'A' }]], { base: 1, cid: 'abjs-c1' }),
      'sync.error.conflict', 'CALL sync.patch with a stale base');
   expect(err.args[0] === `version conflict on ${uri}`, `conflict message: ${show(err.args)}`);
   const k = err.kwargs;
   expect(k.v === 2 && k.base === 1 && k.epoch === ra.epoch, `conflict kwargs v/base/epoch: ${show(k)}`);
   expectEqual('conflict paths', k.conflicts, ['/title']);
   expect(Array.isArray(k.patches) && k.patches.map((p) => p.v).join() === '2', `conflict patches: ${show(k.patches)}`);
   // rebase without another round trip: apply the missed patches, redo the edit, base = v
   for (const p of k.patches) local.change(p);
   expectEqual('local state after the missed patches', local.value, { title: 'B', body: 'b', items: [] });
   expectEqual('retry with base = kwargs.v',
      await call(a, 'sync.patch', [uri, [{ op: 'replace', path: '/title', value: 'A' }]], { base: k.v, cid: 'abjs-c1' }),
      { v: 3, rebased: false });

   // the same refusal by an acknowledged PUBLISH
   const perr = await expectError(write(a, uri, { base: 1, ops: [{ op: 'remove', path: '/title' }] }),
      'sync.error.conflict', 'PUBLISH with a stale base');
   expectEqual('PUBLISH conflict paths', perr.kwargs.conflicts, ['/title']);
   expectEqual('PUBLISH conflict patches', perr.kwargs.patches.map((p) => p.v), [2, 3]);
   // a stale whole-value write clashes with everything
   const verr = await expectError(call(a, 'sync.set', [uri, { x: 1 }], { base: 2 }), 'sync.error.conflict', 'stale sync.set');
   expectEqual('stale sync.set conflict paths', verr.kwargs.conflicts, ['']);
   // a wrong epoch is a conflict; a base ahead of the record too
   await expectError(call(a, 'sync.patch', [uri, [{ op: 'add', path: '/x', value: 1 }]], { epoch: 'not-the-epoch' }),
      'sync.error.conflict', 'a write with another epoch');
   await expectError(call(a, 'sync.patch', [uri, [{ op: 'add', path: '/x', value: 1 }]], { base: 99 }),
      'sync.error.conflict', 'a write with a base ahead of the record');
   await ra.waitFor(3);
   expectEqual('replica', ra.value, { title: 'A', body: 'b', items: [] });
   await matchesGet(b, uri, ra);
};

// a stale conditional write whose ops no longer apply because a missed version removed
// their target: a conflict (the versions after base touched the path), with the patches
SCENARIOS.conflict_removed_path = async (ctx) => {
   const a = await ctx.connect('a');
   const uri = ctx.uri();
   await call(a, 'sync.set', [uri, { a: 1, b: 2 }]); // v1
   await call(a, 'sync.patch', [uri, [{ op: 'remove', path: '/a' }]]); // v2
   const err = await expectError(call(a, 'sync.patch', [uri, [{ op: 'replace', path: '/a', value: 5 }]], { base: 1 }),
      'sync.error.conflict', 'a stale replace of /a after v2 removed /a');
   expectEqual('conflict paths', err.kwargs.conflicts, ['/a']);
};

// a stale conditional write on paths nobody touched since its base: applied, rebased
SCENARIOS.rebase = async (ctx) => {
   const a = await ctx.connect('a');
   const b = await ctx.connect('b');
   const uri = ctx.uri();
   const ra = await observe(a, uri, 'a');
   await call(b, 'sync.set', [uri, { title: 't', body: 'b', items: [], n: 0 }]); // v1
   await call(b, 'sync.patch', [uri, [{ op: 'replace', path: '/title', value: 'B' }]], { base: 1 }); // v2
   expectEqual('stale disjoint sync.patch', await call(a, 'sync.patch', [uri, [{ op: 'replace', path: '/body', value: 'A' }]], { base: 1 }),
      { v: 3, rebased: true });
   // appends commute with appends; x-inc with x-inc of the same number
   // (a follows the record: exclude_me: false brings its own change back, or it would see a gap)
   await write(a, uri, { base: 1, ops: [{ op: 'add', path: '/items/-', value: 1 }] }, { exclude_me: false }); // v4
   await write(b, uri, { base: 1, ops: [{ op: 'add', path: '/items/-', value: 2 }] }); // v5
   expectEqual('stale x-inc after an x-inc', await call(b, 'sync.patch', [uri, [{ op: 'x-inc', path: '/n', by: 1 }]], { base: 5 }),
      { v: 6, rebased: false });
   expectEqual('stale x-inc', await call(a, 'sync.patch', [uri, [{ op: 'x-inc', path: '/n', by: 2 }]], { base: 5 }),
      { v: 7, rebased: true });
   expectEqual('stale sync.merge on another key', await call(a, 'sync.merge', [uri, { extra: 'e' }], { base: 2 }),
      { v: 8, rebased: true });
   await ra.waitFor(8);
   for (const c of ra.changes.slice(3, 5)) {
      expect(c.ops.every((op) => !op.path.endsWith('/-')), `v${c.v}: the append comes with a concrete index: ${show(c.ops)}`);
   }
   expectEqual('replica', ra.value, { title: 'B', body: 'A', items: [1, 2], n: 3, extra: 'e' });
   await matchesGet(b, uri, ra);
};

// close the connection, another client writes, reconnect: sync.get(since, epoch) gives the
// missed patches; with another epoch, the full state
SCENARIOS.resync = async (ctx) => {
   const a1 = await ctx.connect('a1');
   const b = await ctx.connect('b');
   const uri = ctx.uri();
   const ra = await observe(a1, uri, 'a');
   await call(b, 'sync.set', [uri, { n: 0, log: [] }]);
   await ra.waitFor(1);
   await ctx.close(a1);
   expect(!a1.conn.isOpen, 'a1 is still open');
   for (let i = 1; i <= 3; i++) {
      await call(b, 'sync.patch', [uri, [{ op: 'x-inc', path: '/n', by: 1 }, { op: 'add', path: '/log/-', value: i }]]);
   }
   expect(ra.v === 1, `the closed session still got changes: v${ra.v}`);

   const a2 = await ctx.connect('a2');
   // subscribe (no get_retained), buffer, get what was missed, then the buffered events
   const buffered = [];
   let live = false;
   await a2.session.subscribe(uri, (args, kwargs, details) => {
      if (live) ra.receive(details.retained, args, kwargs);
      else buffered.push({ args, kwargs: clone(kwargs), retained: details.retained });
   });
   await write(b, uri, { ops: [{ op: 'x-inc', path: '/n', by: 10 }] }); // v5, while a2 fetches
   const got = await call(a2, 'sync.get', [uri], { since: ra.v, epoch: ra.epoch });
   expect(Array.isArray(got.patches) && !('value' in got), `sync.get with since and the epoch: expected patches, got ${show(got)}`);
   expect(got.epoch === ra.epoch, `sync.get: epoch changed: ${show(got)}`);
   const missed = got.patches.map((p) => p.v);
   expect(missed[0] === 2 && missed.join() === Array.from({ length: got.v - 1 }, (_, i) => i + 2).join(),
      `sync.get(since=1): patches ${missed}, v${got.v}`);
   ra.resync(got);
   for (const e of buffered) ra.receive(e.retained, e.args, e.kwargs);
   live = true;
   await ra.waitFor(5);
   expectEqual('replica after the resync', ra.value, { n: 13, log: [1, 2, 3] });
   await write(b, uri, { ops: [{ op: 'x-inc', path: '/n', by: 1 }] }); // v6, live
   await ra.waitFor(6);
   await matchesGet(b, uri, ra);

   // nothing missed: an empty list of patches
   const none = await call(a2, 'sync.get', [uri], { since: 6, epoch: ra.epoch });
   expectEqual('sync.get(since=v)', none, { v: 6, epoch: ra.epoch, patches: [] });
   // another epoch: the full state, which replaces a replica with that epoch
   const stale = new Replica('stale-epoch');
   stale.snapshot({ v: 1, epoch: 'not-the-epoch', value: { n: 0 } });
   const full = await call(a2, 'sync.get', [uri], { since: 1, epoch: 'not-the-epoch' });
   expect(!('patches' in full) && full.v === 6 && full.epoch === ra.epoch, `sync.get with another epoch: ${show(full)}`);
   stale.resync(full);
   stale.assertMatches(full, 'the snapshot');
   await matchesGet(b, uri, ra, stale);
};

// sync.delete makes a tombstone; sync.create (or any write) re-creates the record and the
// version line goes on
SCENARIOS.delete_recreate = async (ctx) => {
   const a = await ctx.connect('a');
   const b = await ctx.connect('b');
   const c = await ctx.connect('c');
   const uri = ctx.uri();
   const ra = await observe(a, uri, 'a');
   expectEqual('sync.create', await call(b, 'sync.create', [uri, { x: 1 }]), { v: 1, rebased: false });
   const ex = await expectError(call(b, 'sync.create', [uri, { x: 2 }]), 'sync.error.exists', 'sync.create of an existing record');
   expect(ex.kwargs.v === 1, `sync.error.exists kwargs: ${show(ex.kwargs)}`);
   expectEqual('sync.delete', await call(b, 'sync.delete', [uri]), { v: 2, rebased: false });
   await ra.waitFor(2);
   expect(ra.deleted && ra.value === null && ra.changes[1].deleted === true, `v2 is a tombstone: ${show(ra.changes[1])}`);
   expectEqual('sync.head of a deleted record', await call(b, 'sync.head', [uri]),
      { v: 2, epoch: ra.epoch, exists: false, deleted: true });
   await expectError(call(b, 'sync.delete', [uri]), 'sync.error.not_found', 'sync.delete of a deleted record');
   // a new observer gets the tombstone as its snapshot
   const rc = await observe(c, uri, 'c');
   const snap = rc.calls[0].kwargs;
   expect(snap.v === 2 && snap.deleted === true && snap.value === null, `snapshot of a tombstone: ${show(snap)}`);

   expectEqual('sync.create again', await call(b, 'sync.create', [uri, { x: 3 }]), { v: 3, rebased: false });
   await Promise.all([ra.waitFor(3), rc.waitFor(3)]);
   expect(!ra.deleted && deepEqual(ra.value, { x: 3 }), `after the re-create: ${canonical(ra.value)}`);
   // delete by PUBLISH, re-create by a patch (applied to {}, sent as the whole value)
   await write(b, uri, { delete: true });
   await write(b, uri, { ops: [{ op: 'add', path: '/y', value: 1 }] });
   await Promise.all([ra.waitFor(5), rc.waitFor(5)]);
   expect(ra.changes[3].deleted === true && deepEqual(ra.changes[4].value, { y: 1 }),
      `v4/v5: ${show(ra.changes.slice(3))}`);
   expectEqual('a log', ra.log, ['snapshot@0', 'change@1', 'change@2', 'change@3', 'change@4', 'change@5']);
   expectEqual('c log', rc.log, ['snapshot@2', 'change@3', 'change@4', 'change@5']);
   await matchesGet(b, uri, ra, rc);
   const hist = await call(b, 'sync.history', [uri]);
   expectEqual('sync.history versions', hist.patches.map((p) => p.v), [1, 2, 3, 4, 5]);
};

// --------------------------------------------------------------------------------------
// runner
// --------------------------------------------------------------------------------------

async function runScenario(opts, name) {
   const ctx = new Ctx(opts, name);
   const started = Date.now();
   let result = 'PASS';
   let detail = '';
   try {
      await withTimeout(SCENARIOS[name](ctx), opts.timeout * 1000, `scenario ${name}`);
   } catch (e) {
      result = 'FAIL';
      if (e instanceof autobahn.Error) detail = `unexpected WAMP error ${e.error} ${show(e.args)} ${show(e.kwargs)}`;
      else detail = e instanceof Check ? e.message : (e && (e.stack || show(e)));
   }
   const line = { client: CLIENT, serializer: opts.serializer, scenario: name, result, detail, ms: Date.now() - started };
   if (result === 'FAIL') line.wire = ctx.conns.map((h) => `${h.name}: ${h.rx.slice(-30).join(', ')}`);
   await ctx.closeAll();
   process.stdout.write(`${JSON.stringify(line)}\n`);
   return result;
}

runMain('datasync', SCENARIOS, runScenario);
