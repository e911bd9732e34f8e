#!/usr/bin/env node
// Adapter: wampy.js (Node) for the interop scenarios (see ../scenarios.py, PROTOCOL).
//
//   node adapter.js
//
// wampy.js as used here: WebSocket only (no RawSocket transport), JSON / msgpack (msgpackr)
// / cbor (cbor-x) serializers; payloads are passed as {argsList, argsDict}; call options
// disclose_me, timeout, progress_callback; cancel(reqId, {mode}); callee results
// {argsList, argsDict} and progressive results through details' result_handler; errors
// thrown as {error, argsList, argsDict}. The JSON serializer is plain JSON.stringify (no
// WAMP binary convention). wampy does not announce the callee feature call_canceling
// and treats an INTERRUPT as a protocol violation.

'use strict';

const readline = require('readline');
const WebSocket = require('ws');
const { Wampy } = require('wampy');
const { JsonSerializer } = require('wampy/JsonSerializer.js');
const { MsgpackSerializer } = require('wampy/MsgpackSerializer.js');
const { CborSerializer } = require('wampy/CborSerializer.js');
// wampy/wampcra.js is an ES module with top-level await: loaded with import() when needed
let wampyCra = null;
const VERSION = JSON.parse(require('fs').readFileSync(require('path').join(__dirname, 'node_modules', 'wampy', 'package.json'), 'utf8')).version;

const LIB = `wampy.js ${VERSION}`;

class Unsupported extends Error {}

function log(...parts) {
   process.stderr.write(`adapter: ${parts.join(' ')}\n`);
}

function send(obj) {
   process.stdout.write(JSON.stringify(obj) + '\n');
}

// control protocol <-> JS values ({"$bytes": b64} <-> Uint8Array)
function decode(v) {
   if (Array.isArray(v)) return v.map(decode);
   if (v !== null && typeof v === 'object') {
      const keys = Object.keys(v);
      // a Node Buffer: cbor-x encodes a plain Uint8Array as a typed-array tag (64), a Buffer as a byte string
      if (keys.length === 1 && keys[0] === '$bytes') return Buffer.from(v.$bytes, 'base64');
      const out = {};
      for (const k of keys) out[k] = decode(v[k]);
      return out;
   }
   return v;
}

function isBytes(v) {
   return v instanceof Uint8Array || v instanceof ArrayBuffer;
}

function encode(v) {
   if (typeof v === 'bigint') return Number(v);
   if (isBytes(v)) {
      const b = v instanceof ArrayBuffer ? Buffer.from(v) : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      return { $bytes: b.toString('base64') };
   }
   if (Array.isArray(v)) return v.map(encode);
   if (v !== null && typeof v === 'object') {
      const out = {};
      for (const k of Object.keys(v)) out[k] = encode(v[k]);
      return out;
   }
   return v;
}

function hasBytes(v) {
   if (isBytes(v)) return true;
   if (Array.isArray(v)) return v.some(hasBytes);
   if (v !== null && typeof v === 'object') return Object.values(v).some(hasBytes);
   return false;
}

const SERIALIZERS = {
   json: () => new JsonSerializer(),
   msgpack: () => new MsgpackSerializer(),
   cbor: () => new CborSerializer(),
};

const conns = {};
const events = {};
const subs = {};
const regs = {};
const invocations = {};
const held = {};
const calls = {};

function wampErr(e) {
   if (e && typeof e.errorUri === 'string') {
      return { error: e.errorUri, args: encode(e.argsList || []), kwargs: encode(e.argsDict || {}) };
   }
   return null;
}

function payload(args, kwargs) {
   return { argsList: args || [], argsDict: kwargs || {} };
}

function hasBigInteger(v) {
   if (typeof v === 'number') return Number.isInteger(v) && Math.abs(v) > 0xffffffff;
   if (Array.isArray(v)) return v.some(hasBigInteger);
   if (v !== null && typeof v === 'object' && !isBytes(v)) return Object.values(v).some(hasBigInteger);
   return false;
}

// msgpackr and cbor-x (wampy's MsgpackSerializer / CborSerializer) encode a JS number
// that is an integer beyond 32 bits as a float64 (msgpack 0xcb, CBOR 0xfb): a session id
// sent that way reaches the router as a float, which it refuses as an id
// (wamp.error.invalid_argument).
function noBigIntegers(conn, ...values) {
   if (conns[conn].serializer !== 'json' && hasBigInteger(values)) {
      throw new Unsupported(`its ${conns[conn].serializer} serializer (${conns[conn].serializer === 'cbor' ? 'cbor-x' : 'msgpackr'}) ` +
         'encodes integers beyond 32 bits, e.g. session ids, as float64, not as integers');
   }
}

function noJsonBytes(conn, ...values) {
   if (conns[conn].serializer === 'json' && hasBytes(values)) {
      throw new Unsupported('its JSON serializer is plain JSON.stringify: no WAMP binary convention');
   }
}

const ops = {
   async connect({ conn, url, transport, serializer, realm, authmethod, authid, secret }) {
      if (transport !== 'websocket') throw new Unsupported('no RawSocket transport');
      const options = {
         realm, ws: WebSocket, serializer: SERIALIZERS[serializer](), autoReconnect: false,
      };
      if (authmethod === 'wampcra' && !wampyCra) wampyCra = await import('wampy/wampcra.js');
      if (authmethod) {
         options.authid = authid;
         options.authmethods = [authmethod];
         options.onChallenge = (method, info) => (method === 'wampcra'
            ? wampyCra.signManual(info.salt ? wampyCra.deriveKey(secret, info.salt, info.iterations, info.keylen) : secret,
               info.challenge)
            : secret);
      }
      const w = new Wampy(url, options);
      let details;
      try {
         details = await w.connect();
      } catch (e) {
         if (e && e.errorUri) throw e;
         throw e;
      }
      conns[conn] = { w, serializer };
      const d = (details && details.details) || details || {};
      return {
         session: w.getSessionId(), authid: d.authid, authrole: d.authrole,
         authmethod: d.authmethod, realm,
      };
   },

   async disconnect({ conn }) {
      const c = conns[conn];
      delete conns[conn];
      if (!c) return null;
      try {
         await Promise.race([c.w.disconnect(), new Promise((r) => setTimeout(r, 3000))]);
      } catch (e) {
         log('disconnect:', e.message);
      }
      return null;
   },

   async drop({ conn }) {
      const c = conns[conn];
      delete conns[conn];
      c.w._ws.close(); // the transport only: no GOODBYE
      return null;
   },

   async subscribe({ conn, sub, topic, options }) {
      const records = [];
      events[sub] = records;
      // wampy always sends {match, get_retained} in SUBSCRIBE.Options, also when they are
      // undefined: JSON drops them, but msgpackr / cbor-x encode an `undefined` value, which
      // is no valid match policy. Passing match explicitly keeps the options well-formed.
      const opts = { match: 'exact', ...(options || {}) };
      const r = await conns[conn].w.subscribe(topic, (ev) => {
         const d = ev.details || {};
         records.push({
            args: ev.argsList || [], kwargs: ev.argsDict || {}, publisher: d.publisher ?? null,
            publisher_authrole: d.publisher_authrole ?? null, topic: d.topic ?? null,
            retained: d.retained ?? null,
         });
      }, opts);
      subs[sub] = { conn, id: r.subscriptionId, key: r.subscriptionKey };
      return { id: r.subscriptionId };
   },

   async events({ sub }) {
      return events[sub] || [];
   },

   async unsubscribe({ sub }) {
      const s = subs[sub];
      delete subs[sub];
      await conns[s.conn].w.unsubscribe(s.key || s.id);
      return null;
   },

   async publish({ conn, topic, args, kwargs, options }) {
      noJsonBytes(conn, args, kwargs);
      noBigIntegers(conn, args, kwargs, options);
      if (options && options.retain) {
         throw new Unsupported('publish() validates the "retain" option but never puts it into ' +
            'PUBLISH.Options (dist/cjs/wampy.cjs, publish()): a retained event cannot be published');
      }
      if (options && options.exclude_me === false) {
         throw new Unsupported('publish() sends exclude_me only when it is true ' +
            '(`...exclude_me ? { exclude_me } : {}`): exclude_me: false cannot be expressed');
      }
      const r = await conns[conn].w.publish(topic, payload(args, kwargs), options || {});
      return { id: r && r.publicationId };
   },

   async register({ conn, reg, procedure, options, behavior, value }) {
      const invs = [];
      invocations[reg] = invs;
      held[reg] = held[reg] || [];
      const endpoint = async ({ argsList, argsDict, details, result_handler: resultHandler }) => {
         const d = details || {};
         const args = argsList || [];
         const kwargs = argsDict || {};
         const inv = {
            args, kwargs, procedure: d.procedure ?? null, caller: d.caller ?? null,
            caller_authrole: d.caller_authrole ?? null, progress: !!d.receive_progress, status: 'running',
         };
         invs.push(inv);
         switch (behavior) {
            case 'echo': return payload(args, kwargs);
            case 'echo1': return { argsList: [args[0]] };
            case 'value': return { argsList: [value] };
            case 'details': return { argsList: [{ procedure: inv.procedure, caller: inv.caller,
               caller_authrole: inv.caller_authrole, args }] };
            case 'error': {
               const err = new Error('application error');
               err.error = value.uri;
               err.argsList = value.args || [];
               err.argsDict = value.kwargs || {};
               throw err;
            }
            case 'progress':
               if (d.receive_progress) {
                  for (let i = 1; i <= value; i++) {
                     resultHandler({ argsList: [i, 'p'], options: { progress: true } });
                  }
               }
               return { argsList: ['done'] };
            case 'held':
               return new Promise((resolve) => {
                  held[reg].push({ inv, release: () => resolve({ argsList: ['released'] }) });
               });
            default: throw new Error(`unknown behavior ${behavior}`);
         }
      };
      const r = await conns[conn].w.register(procedure, endpoint, options || {});
      regs[reg] = { conn, procedure, id: r.registrationId };
      return { id: r.registrationId };
   },

   async invocations({ reg }) {
      return invocations[reg] || [];
   },

   async release({ reg }) {
      let n = 0;
      for (const h of held[reg] || []) {
         if (h.inv.status === 'running') {
            h.inv.status = 'released';
            h.release();
            n += 1;
         }
      }
      return n;
   },

   async unregister({ reg }) {
      const r = regs[reg];
      delete regs[reg];
      await conns[r.conn].w.unregister(r.procedure);
      return null;
   },

   async call({ conn, procedure, args, kwargs, options }) {
      const st = startCall(conn, procedure, args, kwargs, options);
      const r = await st.promise;
      return { ...result(r), progress: st.progress };
   },

   async call_start({ conn, call, procedure, args, kwargs, options }) {
      const st = startCall(conn, procedure, args, kwargs, options);
      st.outcome = null;
      st.promise.then((r) => { st.outcome = { ok: r }; }, (e) => { st.outcome = { err: e }; });
      calls[call] = st;
      return {};
   },

   async call_cancel({ call, mode }) {
      const st = calls[call];
      conns[st.conn].w.cancel(st.reqId, { mode });
      return null;
   },

   async call_wait({ call, timeout }) {
      const st = calls[call];
      const deadline = Date.now() + timeout * 1000;
      while (!st.outcome && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      if (!st.outcome) return { pending: true };
      if (st.outcome.err) throw st.outcome.err;
      return { ...result(st.outcome.ok), progress: st.progress };
   },
};

function result(r) {
   return { args: (r && r.argsList) || [], kwargs: (r && r.argsDict) || {} };
}

function startCall(conn, procedure, args, kwargs, options) {
   noJsonBytes(conn, args, kwargs);
   noBigIntegers(conn, args, kwargs);
   const w = conns[conn].w;
   const progress = [];
   const opts = {};
   for (const [k, v] of Object.entries(options || {})) {
      if (k === 'receive_progress') {
         if (v) opts.progress_callback = (r) => progress.push(r.argsList || []);
      } else {
         opts[k] = v;
      }
   }
   const promise = w.call(procedure, payload(args, kwargs), opts);
   const reqId = w.getOpStatus().reqId;
   promise.catch(() => {});
   return { conn, promise, progress, reqId };
}

async function handle(req) {
   const { id, op, ...params } = req;
   try {
      if (!ops[op]) throw new Unsupported(`op ${op}`);
      const res = await ops[op](decode(params));
      send({ id, ok: true, result: encode(res === undefined ? null : res) });
   } catch (e) {
      if (e instanceof Unsupported) {
         send({ id, ok: false, unsupported: e.message });
         return;
      }
      const we = wampErr(e);
      if (we) {
         send({ id, ok: false, ...we });
         return;
      }
      log(`${op} failed:`, e && (e.stack || e));
      send({ id, ok: false, exception: `${(e && e.name) || 'Error'}: ${(e && e.message) || e}` });
   }
}

send({
   hello: {
      client: 'wampy.js', version: VERSION, library: LIB,
      websocket: ['json', 'msgpack', 'cbor'], rawsocket: [],
      unsupported: { rawsocket: `${LIB}: no RawSocket transport (WebSocket only)` },
      features: { callee_call_canceling: false },
   },
});

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', (line) => {
   if (!line.trim()) return;
   const req = JSON.parse(line);
   if (req.op === 'quit') {
      process.exit(0);
   }
   handle(req);
});
rl.on('close', () => process.exit(0));
process.on('unhandledRejection', (reason) => log('unhandled rejection:', reason && (reason.stack || reason)));
