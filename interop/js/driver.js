#!/usr/bin/env node
// autobahn-js interop driver for wamp-router.
//
// Runs named scenarios against a running router (and the autobahn-python peer from
// ../python_peer.py, which must already have joined realm1), once per serializer, and
// prints one JSON line per scenario and serializer on stdout:
//
//   {"client":"autobahn-js","transport":"websocket","scenario":"...","serializer":"json",
//    "result":"PASS"|"FAIL"|"SKIP","detail":"..."}
//
// A FAIL line also carries "wire": the WAMP messages this client sent (TX) and received
// (RX) during the scenario, as seen above the serializer. Everything else (logs) goes to
// stderr. Exit status: 0 = no FAIL, 1 = at least one FAIL, 2 = usage, 3 = peer missing.
//
//   node driver.js --url ws://127.0.0.1:PORT/ws [--rawsocket-url rs://127.0.0.1:PORT]
//                  [--serializers json,msgpack,cbor] [--scenarios a,b] [--timeout 10]
//                  [--wait-peer 20] [--auth-file creds.json] [--list]
//
// --auth-file: JSON with the principals the auth_* scenarios log in as (each entry
// replaces the default one, which is what realms/interop.toml configures):
//   {"ticket": {"authid", "ticket", "authrole"}, "wampcra": {"authid", "secret", "authrole"},
//    "wampcra_salted": {...like wampcra}, "cryptosign": {"authid", "seed", "authrole"}}
// ("seed": the 32-byte Ed25519 private key seed, hex). Scenarios that need a principal
// with no default (salted WAMP-CRA, cryptosign) run only when the file provides it (named
// with --scenarios without it, they SKIP).

'use strict';

const fs = require('fs');
const nodeUtil = require('util');
const crypto = require('crypto');

// autobahn-js up to 22.x uses the `ws` package in Node; 26.x and later use the global
// WebSocket of Node >= 22 only. On an older Node, give those the `ws` package as global.
try {
   const abDeps = require('autobahn/package.json').dependencies || {};
   if (typeof globalThis.WebSocket === 'undefined' && !abDeps.ws) globalThis.WebSocket = require('ws');
} catch (e) {
   // reported below when autobahn itself cannot be loaded
}

let autobahn;
let nacl; // tweetnacl, autobahn-js' own Ed25519 (WAMP-Cryptosign) library
try {
   autobahn = require('autobahn');
   nacl = require('tweetnacl');
} catch (e) {
   process.stderr.write(`driver: cannot load autobahn (run "npm ci" in interop/js): ${e.message}\n`);
   process.exit(2);
}

const CLIENT = 'autobahn-js';
const ALL_SERIALIZERS = ['json', 'msgpack', 'cbor'];

// --------------------------------------------------------------------------------------
// command line
// --------------------------------------------------------------------------------------

function parseArgs(argv) {
   const opts = {
      url: null,
      rawsocketUrl: null,
      serializers: ALL_SERIALIZERS.slice(),
      scenarios: null,
      timeout: 10,
      waitPeer: 20,
      realm: 'realm1',
      authRealm: 'realm2',
      authFile: null,
      list: false,
   };
   for (let i = 0; i < argv.length; i++) {
      const a = argv[i];
      const val = () => {
         if (i + 1 >= argv.length) usage(`${a} needs a value`);
         return argv[++i];
      };
      switch (a) {
         case '--url': opts.url = val(); break;
         case '--rawsocket-url': opts.rawsocketUrl = val(); break;
         case '--serializers': opts.serializers = val().split(',').filter(Boolean); break;
         case '--scenarios': opts.scenarios = val().split(',').filter(Boolean); break;
         case '--timeout': opts.timeout = Number(val()); break;
         case '--wait-peer': opts.waitPeer = Number(val()); break;
         case '--realm': opts.realm = val(); break;
         case '--auth-realm': opts.authRealm = val(); break;
         case '--auth-file': opts.authFile = val(); break;
         case '--list': opts.list = true; break;
         case '-h': case '--help': usage(null); break;
         default: usage(`unknown argument ${a}`);
      }
   }
   for (const s of opts.serializers) {
      if (!ALL_SERIALIZERS.includes(s)) usage(`unknown serializer ${s}`);
   }
   if (!opts.list && !opts.url) usage('--url is required');
   if (!(opts.timeout > 0)) usage('--timeout must be a positive number of seconds');
   opts.creds = loadCreds(opts.authFile);
   return opts;
}

function usage(problem) {
   const text = 'usage: node driver.js --url ws://HOST:PORT/PATH [--rawsocket-url rs://HOST:PORT]\n' +
      '       [--serializers json,msgpack,cbor] [--scenarios NAME,...] [--timeout SECONDS]\n' +
      '       [--wait-peer SECONDS] [--realm realm1] [--auth-realm realm2]\n' +
      '       [--auth-file CREDENTIALS.json] [--list]\n';
   if (problem) {
      process.stderr.write(`driver: ${problem}\n${text}`);
      process.exit(2);
   }
   process.stdout.write(text);
   process.exit(0);
}

// The principals of the auth_* scenarios: those of realms/interop.toml, or --auth-file's.
const DEFAULT_CREDS = {
   ticket: { authid: 'alice', ticket: 'secret123', authrole: 'user' },
   wampcra: { authid: 'bob', secret: 'bobsecret', authrole: 'user' },
};

function loadCreds(path) {
   const creds = { ...DEFAULT_CREDS };
   if (!path) return creds;
   let given;
   try {
      given = JSON.parse(fs.readFileSync(path, 'utf8'));
   } catch (e) {
      usage(`cannot read --auth-file ${path}: ${e.message}`);
   }
   const need = {
      ticket: ['authid', 'ticket', 'authrole'],
      wampcra: ['authid', 'secret', 'authrole'],
      wampcra_salted: ['authid', 'secret', 'authrole'],
      cryptosign: ['authid', 'seed', 'authrole'],
   };
   for (const [method, entry] of Object.entries(given || {})) {
      if (!need[method]) usage(`--auth-file: unknown method ${method}`);
      const missing = need[method].filter((k) => typeof (entry || {})[k] !== 'string');
      if (missing.length) usage(`--auth-file: ${method} lacks ${missing.join(', ')}`);
      creds[method] = entry;
   }
   if (creds.cryptosign && !/^[0-9a-fA-F]{64}$/.test(creds.cryptosign.seed)) {
      usage('--auth-file: cryptosign.seed must be 64 hex digits');
   }
   return creds;
}

function log(...parts) {
   process.stderr.write(`driver: ${parts.join(' ')}\n`);
}

// --------------------------------------------------------------------------------------
// values: binary helpers, comparison, rendering
// --------------------------------------------------------------------------------------

function isBytes(v) {
   return v instanceof Uint8Array || v instanceof ArrayBuffer;
}

function toBuffer(v) {
   if (v instanceof ArrayBuffer) return Buffer.from(v);
   return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

// Normalise for comparison: every byte string becomes a Buffer, a missing args/kwargs
// equals an empty one.
function norm(v) {
   if (isBytes(v)) return toBuffer(v);
   if (Array.isArray(v)) return v.map(norm);
   if (v !== null && typeof v === 'object') {
      const out = {};
      for (const k of Object.keys(v)) out[k] = norm(v[k]);
      return out;
   }
   return v;
}

function same(a, b) {
   return nodeUtil.isDeepStrictEqual(norm(a), norm(b));
}

// JSON for humans (details, wire traces): byte strings as <bytes:N hex...>
function show(v, max = 400) {
   let s;
   try {
      s = JSON.stringify(v, function (key, value) {
         const orig = this[key];
         if (isBytes(orig)) {
            const b = toBuffer(orig);
            const hex = b.subarray(0, 24).toString('hex');
            return `<bytes:${b.length} ${hex}${b.length > 24 ? '...' : ''}>`;
         }
         if (typeof value === 'bigint') return `${value}n`;
         return value;
      });
   } catch (e) {
      s = String(v);
   }
   if (s === undefined) s = String(v);
   return s.length > max ? s.slice(0, max) + '...' : s;
}

function expectSame(what, actual, expected) {
   if (!same(actual, expected)) {
      throw new Error(`${what}: expected ${show(expected)}, got ${show(actual)}`);
   }
}

function expect(cond, message) {
   if (!cond) throw new Error(message);
}

// WAMP JSON binary convention (WAMP spec, "Binary conversion of JSON Strings"): a byte
// string travels as a JSON string "\u0000" + base64(bytes). autobahn-js' JSONSerializer
// takes a JSON replacer and reviver, which is where this is done.
function jsonReplacer(key, value) {
   const orig = this[key];
   if (isBytes(orig)) return '\u0000' + toBuffer(orig).toString('base64');
   return value;
}

function jsonReviver(key, value) {
   if (typeof value === 'string' && value.length > 0 && value.charCodeAt(0) === 0) {
      return Buffer.from(value.slice(1), 'base64');
   }
   return value;
}

function makeSerializer(name) {
   const S = autobahn.serializer;
   if (name === 'json') return new S.JSONSerializer(jsonReplacer, jsonReviver);
   if (name === 'msgpack') {
      if (!S.MsgpackSerializer) return null;
      return new S.MsgpackSerializer();
   }
   if (name === 'cbor') {
      if (!S.CBORSerializer) return null;
      return new S.CBORSerializer();
   }
   return null;
}

// --------------------------------------------------------------------------------------
// wire tracing: a transport factory that wraps autobahn-js' own one and records every
// WAMP message (decoded) the session sends and receives, into the current scenario.
// --------------------------------------------------------------------------------------

let wire = [];
const WIRE_MAX = 100;

function traceMsg(dir, tag, msg) {
   if (wire.length >= WIRE_MAX) {
      if (wire.length === WIRE_MAX) wire.push('... (more messages dropped)');
      return;
   }
   wire.push(`${dir} ${tag} ${show(msg, 600)}`);
}

let connSeq = 0;

function tracedFactory(innerType) {
   const Inner = autobahn.transports.get(innerType);
   function Factory(options) {
      this._inner = new Inner(options);
   }
   Factory.prototype.type = innerType;
   Factory.prototype.create = function () {
      const t = this._inner.create();
      if (!t) return t;
      const tag = `c${++connSeq}`;
      // taps: functions (dir, msg) a scenario installs to watch the wire; an RX tap that
      // returns true keeps that message from autobahn-js (see watchWire)
      t.taps = [];
      t.tag = tag;
      const send = t.send;
      t.send = function (msg) {
         traceMsg('TX', tag, msg);
         for (const tap of t.taps.slice()) tap('TX', msg);
         return send.call(t, msg);
      };
      let onmessage = t.onmessage;
      // the inner transport calls transport.onmessage(msg) at receive time; the session
      // assigns its handler after create() returns
      Object.defineProperty(t, 'onmessage', {
         configurable: true,
         get() {
            return function (msg) {
               let keep = false;
               for (const tap of t.taps.slice()) if (tap('RX', msg) === true) keep = true;
               traceMsg('RX', keep ? `${tag} (not passed to autobahn-js)` : tag, msg);
               if (keep) return undefined;
               return onmessage.call(t, msg);
            };
         },
         set(fn) { onmessage = fn; },
      });
      return t;
   };
   return Factory;
}

// autobahn-js logs warnings (e.g. every connection close) as multi-line objects; keep
// them, one line each
autobahn.log.warn = (...parts) => log('autobahn:', parts.map((p) => (typeof p === 'string' ? p : show(p))).join(' '));

autobahn.transports.register('traced-websocket', tracedFactory('websocket'));
autobahn.transports.register('traced-rawsocket', tracedFactory('rawsocket'));

// --------------------------------------------------------------------------------------
// connections
// --------------------------------------------------------------------------------------

class JoinFailed extends Error {
   constructor(reason, details) {
      super(`join failed: ${reason} ${show(details)}`);
      this.reason = reason;
      this.details = details || {};
   }
}

function withTimeout(promise, seconds, what) {
   let timer;
   const t = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout after ${seconds}s: ${what}`)), seconds * 1000);
   });
   return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// autobahn-js takes the deferred factory to use (Connection option `use_deferred`). With
// plain ES6 promises it has nowhere to deliver progressive call results (it calls
// deferred.notify(result) for each RESULT with progress=true); this one is an ES6 promise
// plus notify(), delivered to the listeners registered with promise.onProgress(fn).
function progressDeferred() {
   const d = {};
   d.promise = new Promise((resolve, reject) => {
      d.resolve = resolve;
      d.reject = reject;
   });
   const listeners = [];
   d.promise.onProgress = (fn) => {
      listeners.push(fn);
      return d.promise;
   };
   d.notify = (value) => {
      for (const fn of listeners) fn(value);
   };
   return d;
}

// Opens a connection and resolves with {conn, session, details, closed} once the session
// has joined; rejects with JoinFailed (reason = the ABORT reason URI) if it does not.
function connect(ctx, realm, auth = {}) {
   const target = ctx.target;
   const transport = target.transport === 'websocket'
      ? { type: 'traced-websocket', url: target.url, serializers: [makeSerializer(target.serializer)] }
      : { type: 'traced-rawsocket', host: target.host, port: target.port };
   const p = new Promise((resolve, reject) => {
      let opened = false;
      let closedResolve;
      const closed = new Promise((r) => { closedResolve = r; });
      const conn = new autobahn.Connection({
         transports: [transport],
         realm,
         authmethods: auth.authmethods,
         authid: auth.authid,
         authextra: auth.authextra,
         onchallenge: auth.onchallenge,
         max_retries: 0,
         retry_if_unreachable: false,
         use_deferred: progressDeferred,
         on_user_error: (err, msg) => log('user error:', msg || '', err && (err.stack || show(err))),
         on_internal_error: (err, msg) => log('internal error:', msg || '', err && (err.stack || show(err))),
      });
      const handle = { conn, session: null, details: null, closed };
      ctx.conns.push(handle);
      conn.onopen = (session, details) => {
         opened = true;
         handle.session = session;
         handle.details = details;
         handle.transport = conn._transport;
         resolve(handle);
      };
      conn.onclose = (reason, details) => {
         // details.reason is the WAMP reason (ABORT/GOODBYE) if there was one
         closedResolve({ reason, details });
         if (!opened) reject(new JoinFailed((details && details.reason) || reason, details));
         return true; // never reconnect
      };
      conn.open();
   });
   return withTimeout(p, ctx.timeout, `joining ${realm}`);
}

async function disconnect(handle) {
   try {
      if (handle.conn.isOpen) handle.conn.close();
      else if (handle.conn.isConnected) handle.conn.close();
   } catch (e) {
      // already closed
   }
   try {
      await withTimeout(handle.closed, 3, 'closing');
   } catch (e) {
      log('close:', e.message);
   }
}

// Expect a promise to reject with a WAMP error URI; returns the autobahn.Error.
async function expectWampError(promise, uri, what) {
   let res;
   try {
      res = await promise;
   } catch (err) {
      if (err instanceof autobahn.Error || (err && typeof err.error === 'string')) {
         if (err.error !== uri) {
            throw new Error(`${what}: expected error ${uri}, got ${err.error} args=${show(err.args)}`);
         }
         return err;
      }
      throw new Error(`${what}: expected error ${uri}, got exception ${err && (err.message || show(err))}`);
   }
   throw new Error(`${what}: expected error ${uri}, but it succeeded with ${show(res)}`);
}

// Waits for the first event (args, kwargs, details) that satisfies pred.
function eventWaiter(pred) {
   let resolveFn;
   const promise = new Promise((r) => { resolveFn = r; });
   const received = [];
   const handler = (args, kwargs, details) => {
      received.push({ args, kwargs });
      if (pred(args || [], kwargs || {})) resolveFn({ args: args || [], kwargs: kwargs || {}, details });
   };
   return { handler, promise, received };
}

function resultArgsKwargs(res) {
   if (res instanceof autobahn.Result) return { args: res.args, kwargs: res.kwargs };
   return { args: [res], kwargs: {} };
}

function nonce() {
   return crypto.randomBytes(6).toString('hex');
}

// bytes 0..255 twice, starting with NUL (the JSON binary marker) and 0xff
function samplePayload() {
   const b = Buffer.alloc(512);
   for (let i = 0; i < b.length; i++) b[i] = i % 256;
   b[1] = 0xff;
   return b;
}

// --------------------------------------------------------------------------------------
// scenarios: async (ctx) => detail string; throw = FAIL; return {skip: reason} = SKIP
// --------------------------------------------------------------------------------------

const SCENARIOS = [];
function scenario(name, fn, opts = {}) {
   SCENARIOS.push({ name, fn, ...opts });
}

function rawsocketNoBinary(ctx) {
   if (ctx.target.transport === 'rawsocket') {
      return 'autobahn-js rawsocket transport serializes with plain JSON.stringify: ' +
         'no WAMP JSON binary conversion';
   }
   return null;
}

scenario('join_anonymous', async (ctx) => {
   const h = await connect(ctx, ctx.realm);
   const d = h.details;
   expect(typeof h.session.id === 'number' && Number.isSafeInteger(h.session.id) && h.session.id > 0,
      `session id is not a WAMP id: ${show(h.session.id)}`);
   expect(d.roles && d.roles.broker && d.roles.dealer, `WELCOME roles lack broker/dealer: ${show(d.roles)}`);
   if (d.authrole !== undefined) expectSame('WELCOME.authrole', d.authrole, 'anonymous');
   if (ctx.target.transport === 'websocket') {
      expectSame('negotiated subprotocol', d.transport && d.transport.protocol, `wamp.2.${ctx.target.serializer}`);
   }
   return `session=${h.session.id} authmethod=${d.authmethod} authrole=${d.authrole} ` +
      `protocol=${d.transport && d.transport.protocol}`;
});

scenario('subscribe_event_from_python', async (ctx) => {
   const h = await connect(ctx, ctx.realm);
   const n = nonce();
   const args = [1, 'two', { three: 3 }, [true, null, 1.5]];
   const kwargs = { n, k: 'v', list: [1, 2, 3], nested: { a: 'b' } };
   const w = eventWaiter((a, kw) => kw.n === n);
   await h.session.subscribe('com.interop.to_js', w.handler);
   await h.session.call('com.interop.publish_to_js', args, kwargs);
   const ev = await withTimeout(w.promise, ctx.timeout, 'event on com.interop.to_js');
   expectSame('event args', ev.args, args);
   expectSame('event kwargs', ev.kwargs, kwargs);
   return `received args=${show(ev.args)} kwargs=${show(ev.kwargs)}`;
});

scenario('publish_event_to_python', async (ctx) => {
   const h = await connect(ctx, ctx.realm);
   const n = nonce();
   const args = ['hello', 42, { x: [1, 2] }, -7, 0.25];
   const kwargs = { n, flag: false, empty: {}, none: null, text: 'h\u00e9llo \u2603' };
   const w = eventWaiter((a, kw) => kw.n === n);
   await h.session.subscribe('com.interop.from_python', w.handler);
   const pub = await h.session.publish('com.interop.to_python', args, kwargs, { acknowledge: true });
   expect(pub && pub.id, `no publication id in PUBLISHED: ${show(pub)}`);
   const ev = await withTimeout(w.promise, ctx.timeout,
      'python peer re-publishing on com.interop.from_python');
   expectSame('args seen by python (re-published)', ev.args, args);
   expectSame('kwargs seen by python (re-published)', ev.kwargs, kwargs);
   return `publication=${pub.id}; python got args=${show(ev.args)} kwargs=${show(ev.kwargs)}`;
});

scenario('call_python_args_kwargs', async (ctx) => {
   const h = await connect(ctx, ctx.realm);
   const s = h.session;
   const sum = await s.call('com.interop.add', [2, 3]);
   expectSame('com.interop.add(2, 3)', sum, 5);
   const args = [1, 'x', [true, null], { a: 1.5 }, ''];
   const kwargs = { k: 'v', n: -12345678901, deep: { list: [{}, []] } };
   const res = await s.call('com.interop.echo', args, kwargs);
   expect(res instanceof autobahn.Result, `echo with kwargs did not give a multi-result: ${show(res)}`);
   expectSame('echo args', res.args, args);
   expectSame('echo kwargs', res.kwargs, kwargs);
   const single = await s.call('com.interop.echo', ['only']);
   expectSame('echo single arg', single, 'only');
   return `add=${sum}; echo args=${show(res.args)} kwargs=${show(res.kwargs)}`;
});

scenario('call_python_error_args', async (ctx) => {
   const h = await connect(ctx, ctx.realm);
   const err = await expectWampError(h.session.call('com.interop.oops', [1], { a: 2 }),
      'com.example.oops', 'com.interop.oops');
   expectSame('error args', err.args, ['bad', 42]);
   expect(Object.keys(err.kwargs || {}).length === 0, `error kwargs not empty: ${show(err.kwargs)}`);
   return `error=${err.error} args=${show(err.args)}`;
});

scenario('register_called_by_python', async (ctx) => {
   const h = await connect(ctx, ctx.realm);
   const s = h.session;
   const seen = [];
   await s.register('com.interop.js.mul', (args, kwargs) => {
      seen.push(args);
      return args[0] * args[1];
   });
   await s.register('com.interop.js.echo', (args, kwargs) => new autobahn.Result(args, kwargs));
   const prod = await s.call('com.interop.call_js', ['com.interop.js.mul', 6, 7]);
   expectSame('python calling com.interop.js.mul(6, 7)', prod, 42);
   expectSame('args JS received from python', seen[0], [6, 7]);
   const args = ['a', 1, [2, { b: null }]];
   const kwargs = { k: 'v', num: 3.5 };
   const res = await s.call('com.interop.call_js', ['com.interop.js.echo', ...args], kwargs);
   const rk = resultArgsKwargs(res);
   expectSame('python -> com.interop.js.echo args', rk.args, args);
   expectSame('python -> com.interop.js.echo kwargs', rk.kwargs, kwargs);
   return `mul(6, 7)=${prod}; echo args=${show(rk.args)} kwargs=${show(rk.kwargs)}`;
});

scenario('register_error_to_python', async (ctx) => {
   const h = await connect(ctx, ctx.realm);
   const s = h.session;
   await s.register('com.interop.js.fail', () => {
      throw new autobahn.Error('com.example.js_oops', ['nope', 7], { why: 'test' });
   });
   const seen = await s.call('com.interop.call_js_error', ['com.interop.js.fail']);
   expectSame('error python saw', seen, { error: 'com.example.js_oops', args: ['nope', 7], kwargs: { why: 'test' } });
   return `python saw ${show(seen)}`;
});

scenario('call_missing_procedure', async (ctx) => {
   const h = await connect(ctx, ctx.realm);
   const err = await expectWampError(h.session.call(`com.interop.does_not_exist.${nonce()}`),
      'wamp.error.no_such_procedure', 'calling an unregistered procedure');
   return `error=${err.error} args=${show(err.args)}`;
});

scenario('binary_call_roundtrip', async (ctx) => {
   const skip = rawsocketNoBinary(ctx);
   if (skip) return { skip };
   const h = await connect(ctx, ctx.realm);
   const s = h.session;
   const payload = samplePayload();
   const res = await s.call('com.interop.echo', [payload, 'text'], { blob: payload });
   expect(res instanceof autobahn.Result, `echo did not give a multi-result: ${show(res)}`);
   expect(isBytes(res.args[0]), `echoed args[0] is not a byte string: ${show(res.args[0])}`);
   expectSame('echoed args', res.args, [payload, 'text']);
   expectSame('echoed kwargs', res.kwargs, { blob: payload });
   const d = await s.call('com.interop.describe', [payload]);
   const want = { type: 'bytes', len: payload.length, hex: payload.toString('hex') };
   expectSame('what python received', d.args && d.args[0], want);
   const made = await s.call('com.interop.make_bytes', [300]);
   const expected = Buffer.from(Array.from({ length: 300 }, (_, i) => i % 256));
   expect(isBytes(made), `bytes made by python did not arrive as a byte string: ${show(made)}`);
   expectSame('bytes made by python', made, expected);
   return `echo ${payload.length} bytes ok; python saw bytes(${d.args[0].len}); got ${made.length} bytes from python`;
});

scenario('binary_pubsub_roundtrip', async (ctx) => {
   const skip = rawsocketNoBinary(ctx);
   if (skip) return { skip };
   const h = await connect(ctx, ctx.realm);
   const n = nonce();
   const payload = samplePayload();
   const w = eventWaiter((a, kw) => kw.n === n);
   await h.session.subscribe('com.interop.from_python', w.handler);
   await h.session.publish('com.interop.to_python', [payload], { n, blob: payload }, { acknowledge: true });
   const ev = await withTimeout(w.promise, ctx.timeout, 're-published binary event');
   expect(isBytes(ev.args[0]), `event args[0] is not a byte string: ${show(ev.args[0])}`);
   expectSame('binary event args', ev.args, [payload]);
   expectSame('binary event kwargs', ev.kwargs, { n, blob: payload });
   return `${payload.length} bytes out and back through python`;
});

function ticketAuth(authid, ticket) {
   return {
      authmethods: ['ticket'],
      authid,
      onchallenge: (session, method, extra) => {
         if (method !== 'ticket') throw new Error(`unexpected challenge method ${method}`);
         return ticket;
      },
   };
}

function craAuth(authid, secret) {
   return {
      authmethods: ['wampcra'],
      authid,
      onchallenge: (session, method, extra) => {
         if (method !== 'wampcra') throw new Error(`unexpected challenge method ${method}`);
         let key = secret;
         if (extra.salt) {
            key = autobahn.auth_cra.derive_key(secret, extra.salt, extra.iterations, extra.keylen);
         }
         return autobahn.auth_cra.sign(key, extra.challenge);
      },
   };
}

// autobahn-js' own WAMP-Cryptosign helpers (autobahn.auth_cryptosign: public_key,
// sign_challenge) on a tweetnacl key pair, the way its create_connection() uses them.
// `key` announces the public key in HELLO.authextra.pubkey; `signer` (default: the same
// key) signs the challenge.
function cryptosignAuth(authid, key, signer = key) {
   const cs = autobahn.auth_cryptosign;
   return {
      authmethods: ['cryptosign'],
      authid,
      authextra: { pubkey: cs.public_key(key), channel_binding: null },
      onchallenge: (session, method, extra) => {
         if (method !== 'cryptosign') throw new Error(`unexpected challenge method ${method}`);
         return cs.sign_challenge(signer, extra);
      },
   };
}

function keyFromSeed(hex) {
   return nacl.sign.keyPair.fromSeed(Uint8Array.from(Buffer.from(hex, 'hex')));
}

function expectJoined(h, authid, authmethod, authrole = 'user') {
   const d = h.details;
   expectSame('WELCOME.authid', d.authid, authid);
   expectSame('WELCOME.authrole', d.authrole, authrole);
   if (d.authmethod !== undefined) expectSame('WELCOME.authmethod', d.authmethod, authmethod);
   return `session=${h.session.id} authid=${d.authid} authrole=${d.authrole} authmethod=${d.authmethod}`;
}

// the ticket principal (see --auth-file), logged in
function ticketUser(ctx) {
   const p = ctx.creds.ticket;
   return connect(ctx, ctx.authRealm, ticketAuth(p.authid, p.ticket));
}

scenario('auth_ticket_join', async (ctx) => {
   const p = ctx.creds.ticket;
   return expectJoined(await ticketUser(ctx), p.authid, 'ticket', p.authrole);
});

scenario('auth_wampcra_join', async (ctx) => {
   const p = ctx.creds.wampcra;
   const h = await connect(ctx, ctx.authRealm, craAuth(p.authid, p.secret));
   return expectJoined(h, p.authid, 'wampcra', p.authrole);
});

scenario('auth_wampcra_salted_join', async (ctx) => {
   const p = ctx.creds.wampcra_salted;
   let salt = null;
   const auth = craAuth(p.authid, p.secret);
   const sign = auth.onchallenge;
   auth.onchallenge = (session, method, extra) => {
      salt = extra.salt;
      return sign(session, method, extra);
   };
   const h = await connect(ctx, ctx.authRealm, auth);
   expect(typeof salt === 'string' && salt.length > 0, 'the CHALLENGE had no salt');
   return `${expectJoined(h, p.authid, 'wampcra', p.authrole)} (salted, autobahn.auth_cra.derive_key)`;
}, { needs: 'wampcra_salted' });

scenario('auth_cryptosign_join', async (ctx) => {
   const p = ctx.creds.cryptosign;
   const key = keyFromSeed(p.seed);
   // without an authid (the router finds the principal by its key), then with it
   const h = await connect(ctx, ctx.authRealm, cryptosignAuth(undefined, key));
   const first = expectJoined(h, p.authid, 'cryptosign', p.authrole);
   expectSame('WELCOME.authmethod', h.details.authmethod, 'cryptosign');
   const h2 = await connect(ctx, ctx.authRealm, cryptosignAuth(p.authid, key));
   expectJoined(h2, p.authid, 'cryptosign', p.authrole);
   return `${first}; again with authid ${p.authid}: session=${h2.session.id}`;
}, { needs: 'cryptosign' });

async function expectJoinRejected(ctx, realm, auth, uri, what) {
   try {
      const h = await connect(ctx, realm, auth);
      throw new Error(`${what}: joined (session ${h.session.id}) but must be rejected with ${uri}`);
   } catch (e) {
      if (!(e instanceof JoinFailed)) throw e;
      if (uri !== null && e.reason !== uri) {
         throw new Error(`${what}: expected ABORT ${uri}, got ${e.reason} ${show(e.details.message)}`);
      }
      return `ABORT ${e.reason}${e.details.message ? ` (${e.details.message})` : ''}`;
   }
}

scenario('auth_wrong_ticket', async (ctx) => expectJoinRejected(ctx, ctx.authRealm,
   ticketAuth(ctx.creds.ticket.authid, 'not-the-ticket'), 'wamp.error.authentication_failed',
   'wrong ticket'));

scenario('auth_wrong_wampcra', async (ctx) => expectJoinRejected(ctx, ctx.authRealm,
   craAuth(ctx.creds.wampcra.authid, 'not-the-secret'), 'wamp.error.authentication_failed',
   'wrong WAMP-CRA secret'));

scenario('auth_wrong_wampcra_salted', async (ctx) => expectJoinRejected(ctx, ctx.authRealm,
   craAuth(ctx.creds.wampcra_salted.authid, 'not-the-secret'), 'wamp.error.authentication_failed',
   'wrong salted WAMP-CRA secret'), { needs: 'wampcra_salted' });

// the configured public key in HELLO, but the challenge signed with another key
scenario('auth_wrong_cryptosign_key', async (ctx) => {
   const p = ctx.creds.cryptosign;
   const other = nacl.sign.keyPair();
   return expectJoinRejected(ctx, ctx.authRealm, cryptosignAuth(p.authid, keyFromSeed(p.seed), other),
      'wamp.error.authentication_failed', 'cryptosign signature by another key');
}, { needs: 'cryptosign' });

// a key no principal has (announced and signed with it): refused the same way
scenario('auth_unknown_cryptosign_key', async (ctx) => expectJoinRejected(ctx, ctx.authRealm,
   cryptosignAuth(undefined, nacl.sign.keyPair()), 'wamp.error.authentication_failed',
   'unknown cryptosign key'), { needs: 'cryptosign' });

scenario('auth_anonymous_realm2_rejected', async (ctx) => {
   // the config gives anonymous clients realm1 only; any ABORT reason is accepted here
   const r = await expectJoinRejected(ctx, ctx.authRealm, {}, null, 'anonymous join of realm2');
   return r;
});

scenario('realm2_authorized_ok', async (ctx) => {
   const h = await ticketUser(ctx);
   const s = h.session;
   const proc = `com.example.interop.${nonce()}`;
   await s.register(proc, (args) => new autobahn.Result(['pong', ...args]));
   const r = await s.call(proc, [1]);
   expectSame(`call ${proc}`, resultArgsKwargs(r).args, ['pong', 1]);
   const n = nonce();
   const w = eventWaiter((a, kw) => kw.n === n);
   await s.subscribe('com.example.interop.topic', w.handler);
   await s.publish('com.example.interop.topic', ['hi'], { n }, { acknowledge: true, exclude_me: false });
   await withTimeout(w.promise, ctx.timeout, 'own event on com.example.interop.topic');
   return 'register/call/subscribe/publish under com.example. allowed';
});

scenario('realm2_not_authorized', async (ctx) => {
   const h = await ticketUser(ctx);
   const s = h.session;
   const NA = 'wamp.error.not_authorized';
   await expectWampError(s.call('com.other.proc', [1]), NA, 'call com.other.proc');
   await expectWampError(s.publish('com.other.topic', [1], {}, { acknowledge: true }), NA,
      'publish com.other.topic');
   await expectWampError(s.register('com.other.proc', () => 1), NA, 'register com.other.proc');
   await expectWampError(s.subscribe('com.other.topic', () => {}), NA, 'subscribe com.other.topic');
   return `call/publish/register/subscribe outside com.example. -> ${NA}`;
});

// --------------------------------------------------------------------------------------
// Advanced Profile scenarios. Each one exists twice: `..._py` has the autobahn-python
// peer on the other side, `..._js` a second (and third) autobahn-js session of this
// process.
// --------------------------------------------------------------------------------------

const PY = 'com.interop.';
// an id no session/registration has (registration ids may be small sequential numbers)
const UNKNOWN_ID = 2 ** 53 - 7;

function sleep(ms) {
   return new Promise((r) => setTimeout(r, ms));
}

function join(ctx) {
   return connect(ctx, ctx.realm);
}

function joinAll(ctx, n) {
   return Promise.all(Array.from({ length: n }, () => join(ctx)));
}

function py(h, name, args, kwargs, options) {
   return h.session.call(PY + name, args, kwargs, options);
}

// Records every event of one subscription (args, kwargs, autobahn.Event details) and
// lets a scenario wait for one.
function recorder() {
   const events = [];
   const waiters = [];
   const handler = (args, kwargs, details) => {
      const ev = { args: args || [], kwargs: kwargs || {}, details: details || {} };
      events.push(ev);
      for (const w of waiters.slice()) {
         if (w.pred(ev)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(ev);
         }
      }
   };
   const waitFor = (pred, seconds, what) => {
      const found = events.find(pred);
      if (found) return Promise.resolve(found);
      return withTimeout(new Promise((resolve) => waiters.push({ pred, resolve })), seconds,
         `${what}; received so far: ${show(events.map((e) => e.args))}`);
   };
   const labels = () => events.map((e) => e.args[0]);
   return { events, handler, waitFor, labels };
}

const labelled = (label) => (ev) => ev.args[0] === label;

// Watches one connection's WAMP messages (dir 'TX' or 'RX') matching pred. Matching RX
// messages are not passed on to autobahn-js when keep is true, or a function
// (msg, index of the match) that returns true. Returns
// {seen: [...], first: Promise of the first match, stop()}.
function watchWire(h, dir, pred, keep = false) {
   const seen = [];
   let resolveFirst;
   const first = new Promise((r) => { resolveFirst = r; });
   const tap = (d, msg) => {
      if (d !== dir || !pred(msg)) return false;
      seen.push(msg);
      resolveFirst(msg);
      if (dir !== 'RX') return false;
      return typeof keep === 'function' ? keep(msg, seen.length - 1) === true : keep;
   };
   h.transport.taps.push(tap);
   const stop = () => {
      const i = h.transport.taps.indexOf(tap);
      if (i >= 0) h.transport.taps.splice(i, 1);
   };
   return { seen, first, stop };
}

const MSG = { ERROR: 8, PUBLISH: 16, CALL: 48, CANCEL: 49, RESULT: 50, INTERRUPT: 69 };

// Polls fn() until it returns a value pred accepts.
async function pollUntil(fn, pred, seconds, what) {
   const deadline = Date.now() + seconds * 1000;
   let last;
   for (;;) {
      last = await fn();
      if (pred(last)) return last;
      if (Date.now() > deadline) throw new Error(`timeout after ${seconds}s: ${what}; last: ${show(last)}`);
      await sleep(20);
   }
}

// The events the python peer recorded on its subscription `topic`, once pred(events).
function pyEvents(ctx, h, topic, pred, what) {
   return pollUntil(() => py(h, 'events', [topic]), (evs) => Array.isArray(evs) && pred(evs),
      ctx.timeout, `python events on ${topic}: ${what}`);
}

// python subscribes (removed again at the end of the scenario)
async function pySub(ctx, h, topic, options = {}) {
   const id = await py(h, 'sub', [topic, options]);
   ctx.cleanups.push(() => py(h, 'unsub', [topic]));
   return id;
}

async function pyRegister(ctx, h, proc, options = {}) {
   const id = await py(h, 'register', [proc, options]);
   ctx.cleanups.push(() => py(h, 'unregister', [proc]));
   return id;
}

const pyLabels = (evs) => evs.map((e) => e.args[0]);
const unique = (what) => `com.interop.${what}.${nonce()}`;

// -- pub/sub ---------------------------------------------------------------------------

scenario('pubsub_exclude_me_false_js', async (ctx) => {
   const [a, b] = await joinAll(ctx, 2);
   const topic = unique('excl');
   const ra = recorder();
   const rb = recorder();
   await a.session.subscribe(topic, ra.handler);
   await b.session.subscribe(topic, rb.handler);
   const ack = { acknowledge: true };
   await a.session.publish(topic, ['self'], {}, { ...ack, exclude_me: false });
   await a.session.publish(topic, ['default'], {}, ack);
   await a.session.publish(topic, ['marker'], {}, { ...ack, exclude_me: false });
   await ra.waitFor(labelled('marker'), ctx.timeout, 'A: own marker event');
   await rb.waitFor(labelled('marker'), ctx.timeout, 'B: marker event');
   expectSame('events the publisher A got (exclude_me false, default, false)', ra.labels(), ['self', 'marker']);
   expectSame('events B got', rb.labels(), ['self', 'default', 'marker']);
   return 'publisher got its own events only with exclude_me: false; the other session got all';
});

scenario('pubsub_exclude_me_false_py', async (ctx) => {
   const a = await join(ctx);
   const topic = unique('excl');
   const ra = recorder();
   await pySub(ctx, a, topic);
   await a.session.subscribe(topic, ra.handler);
   await a.session.publish(topic, ['js-self'], {}, { acknowledge: true, exclude_me: false });
   await py(a, 'pub', [topic, ['py-self'], {}, { exclude_me: false }]);
   await py(a, 'pub', [topic, ['py-default'], {}, {}]);
   await a.session.publish(topic, ['js-default'], {}, { acknowledge: true });
   await py(a, 'pub', [topic, ['marker'], {}, { exclude_me: false }]);
   await ra.waitFor(labelled('marker'), ctx.timeout, 'JS: marker');
   const evs = await pyEvents(ctx, a, topic, (e) => pyLabels(e).includes('marker'), 'marker');
   expectSame('events JS got', ra.labels(), ['js-self', 'py-self', 'py-default', 'marker']);
   expectSame('events python got', pyLabels(evs), ['js-self', 'py-self', 'js-default', 'marker']);
   return 'JS and python each get their own events only with exclude_me: false';
});

scenario('pubsub_eligible_exclude_js', async (ctx) => {
   const [a, b, c] = await joinAll(ctx, 3);
   const topic = unique('elig');
   const rb = recorder();
   const rc = recorder();
   await b.session.subscribe(topic, rb.handler);
   await c.session.subscribe(topic, rc.handler);
   const ack = { acknowledge: true };
   await a.session.publish(topic, ['eligible-b'], {}, { ...ack, eligible: [b.session.id] });
   await a.session.publish(topic, ['exclude-b'], {}, { ...ack, exclude: [b.session.id] });
   await a.session.publish(topic, ['eligible-b-c-exclude-c'], {}, {
      ...ack, eligible: [b.session.id, c.session.id], exclude: [c.session.id] });
   await a.session.publish(topic, ['marker'], {}, ack);
   await rb.waitFor(labelled('marker'), ctx.timeout, 'B: marker');
   await rc.waitFor(labelled('marker'), ctx.timeout, 'C: marker');
   expectSame('events B got', rb.labels(), ['eligible-b', 'eligible-b-c-exclude-c', 'marker']);
   expectSame('events C got', rc.labels(), ['exclude-b', 'marker']);
   return `eligible/exclude by session id (B=${b.session.id}, C=${c.session.id}) honoured`;
});

scenario('pubsub_eligible_exclude_py', async (ctx) => {
   const [a, b] = await joinAll(ctx, 2);
   const pid = await py(a, 'whoami');
   const topic = unique('elig');
   const ra = recorder();
   const rb = recorder();
   await pySub(ctx, a, topic);
   await a.session.subscribe(topic, ra.handler);
   await b.session.subscribe(topic, rb.handler);
   await a.session.publish(topic, ['js-eligible-py'], {}, { acknowledge: true, eligible: [pid] });
   await a.session.publish(topic, ['js-exclude-py'], {}, { acknowledge: true, exclude: [pid] });
   await py(a, 'pub', [topic, ['py-eligible-b'], {}, { eligible: [b.session.id] }]);
   await py(a, 'pub', [topic, ['py-exclude-b'], {}, { exclude: [b.session.id] }]);
   await py(a, 'pub', [topic, ['marker'], {}, { exclude_me: false }]);
   await ra.waitFor(labelled('marker'), ctx.timeout, 'A: marker');
   await rb.waitFor(labelled('marker'), ctx.timeout, 'B: marker');
   const evs = await pyEvents(ctx, a, topic, (e) => pyLabels(e).includes('marker'), 'marker');
   expectSame('events JS publisher A got', ra.labels(), ['py-exclude-b', 'marker']);
   expectSame('events JS B got', rb.labels(), ['js-exclude-py', 'py-eligible-b', 'marker']);
   expectSame('events python got', pyLabels(evs), ['js-eligible-py', 'marker']);
   return `JS -> python (${pid}) and python -> JS (${b.session.id}) eligible/exclude honoured`;
});

scenario('pubsub_disclose_me_js', async (ctx) => {
   const [a, b] = await joinAll(ctx, 2);
   const topic = unique('disclose');
   const rb = recorder();
   await b.session.subscribe(topic, rb.handler);
   await a.session.publish(topic, ['hidden'], {}, { acknowledge: true });
   await a.session.publish(topic, ['shown'], {}, { acknowledge: true, disclose_me: true });
   const shown = await rb.waitFor(labelled('shown'), ctx.timeout, 'disclosed event');
   const hidden = rb.events.find(labelled('hidden'));
   expect(hidden, 'the undisclosed event did not arrive before the disclosed one');
   expectSame('details.publisher without disclose_me', hidden.details.publisher, undefined);
   expectSame('details.publisher with disclose_me', shown.details.publisher, a.session.id);
   expectSame('details.publisher_authrole', shown.details.publisher_authrole, 'anonymous');
   return `publisher=${shown.details.publisher} authid=${shown.details.publisher_authid} ` +
      `authrole=${shown.details.publisher_authrole}; nothing without disclose_me`;
});

scenario('pubsub_disclose_me_py', async (ctx) => {
   const a = await join(ctx);
   const topic = unique('disclose');
   await pySub(ctx, a, topic);
   await a.session.publish(topic, ['hidden'], {}, { acknowledge: true });
   await a.session.publish(topic, ['shown'], {}, { acknowledge: true, disclose_me: true });
   const evs = await pyEvents(ctx, a, topic, (e) => e.length >= 2, 'two events');
   expectSame('python: publisher without disclose_me', evs[0].publisher, null);
   expectSame('python: publisher with disclose_me', evs[1].publisher, a.session.id);
   expectSame('python: publisher_authrole', evs[1].publisher_authrole, 'anonymous');
   return `python saw publisher=${evs[1].publisher} (none without disclose_me); the other ` +
      'direction is not expressible: autobahn-python 26.x PublishOptions has no disclose_me';
});

scenario('pubsub_pattern_js', async (ctx) => {
   const [a, b] = await joinAll(ctx, 2);
   const n = nonce();
   const prefix = `com.interop.pfx.${n}`;
   const wildcard = `com.interop.wc.${n}..leaf`;
   const rp = recorder();
   const rw = recorder();
   await b.session.subscribe(prefix, rp.handler, { match: 'prefix' });
   await b.session.subscribe(wildcard, rw.handler, { match: 'wildcard' });
   const ack = { acknowledge: true };
   await a.session.publish(`com.interop.other.${n}.a`, ['no-match'], {}, ack);
   await a.session.publish(`com.interop.wc.${n}.x.other`, ['no-match-wc'], {}, ack);
   await a.session.publish(`${prefix}.a.b`, ['p1'], {}, ack);
   await a.session.publish(`com.interop.wc.${n}.x.leaf`, ['w1'], {}, ack);
   const p1 = await rp.waitFor(labelled('p1'), ctx.timeout, 'prefix event');
   const w1 = await rw.waitFor(labelled('w1'), ctx.timeout, 'wildcard event');
   expectSame('prefix subscription: details.topic', p1.details.topic, `${prefix}.a.b`);
   expectSame('wildcard subscription: details.topic', w1.details.topic, `com.interop.wc.${n}.x.leaf`);
   expectSame('events on the prefix subscription', rp.labels(), ['p1']);
   expectSame('events on the wildcard subscription', rw.labels(), ['w1']);
   return `prefix -> ${p1.details.topic}; wildcard -> ${w1.details.topic}`;
});

scenario('pubsub_pattern_py', async (ctx) => {
   const a = await join(ctx);
   const n = nonce();
   const prefix = `com.interop.pfx.${n}`;
   const wildcard = `com.interop.wc.${n}..leaf`;
   await pySub(ctx, a, prefix, { match: 'prefix' });
   await pySub(ctx, a, wildcard, { match: 'wildcard' });
   const rp = recorder();
   const rw = recorder();
   await a.session.subscribe(`com.interop.jpfx.${n}`, rp.handler, { match: 'prefix' });
   await a.session.subscribe(`com.interop.jwc.${n}..leaf`, rw.handler, { match: 'wildcard' });
   const ack = { acknowledge: true };
   // JS publishes, python's pattern subscriptions receive
   await a.session.publish(`com.interop.wc.${n}.x.other`, ['no-match'], {}, ack);
   await a.session.publish(`${prefix}.a.b`, ['p1'], {}, ack);
   await a.session.publish(`com.interop.wc.${n}.x.leaf`, ['w1'], {}, ack);
   const pe = await pyEvents(ctx, a, prefix, (e) => e.length >= 1, 'prefix event');
   const we = await pyEvents(ctx, a, wildcard, (e) => e.length >= 1, 'wildcard event');
   expectSame('python prefix subscription: events', pe.map((e) => [e.args[0], e.topic]), [['p1', `${prefix}.a.b`]]);
   expectSame('python wildcard subscription: events', we.map((e) => [e.args[0], e.topic]),
      [['w1', `com.interop.wc.${n}.x.leaf`]]);
   // python publishes, JS's pattern subscriptions receive
   await py(a, 'pub', [`com.interop.jpfx.${n}.c`, ['p2'], {}, {}]);
   await py(a, 'pub', [`com.interop.jwc.${n}.y.leaf`, ['w2'], {}, {}]);
   const p2 = await rp.waitFor(labelled('p2'), ctx.timeout, 'JS prefix event');
   const w2 = await rw.waitFor(labelled('w2'), ctx.timeout, 'JS wildcard event');
   expectSame('JS prefix subscription: details.topic', p2.details.topic, `com.interop.jpfx.${n}.c`);
   expectSame('JS wildcard subscription: details.topic', w2.details.topic, `com.interop.jwc.${n}.y.leaf`);
   return 'JS -> python and python -> JS prefix and wildcard subscriptions with details.topic';
});

scenario('pubsub_retained_js', async (ctx) => {
   const a = await join(ctx);
   const topic = unique('retained');
   await a.session.publish(topic, ['first'], {}, { acknowledge: true, retain: true });
   await a.session.publish(topic, ['last'], { k: 'v' }, { acknowledge: true, retain: true });
   await a.session.publish(topic, ['not-retained'], {}, { acknowledge: true });
   const [c, d] = await joinAll(ctx, 2); // new sessions, joined after the publications
   const rc = recorder();
   const rd = recorder();
   await c.session.subscribe(topic, rc.handler, { get_retained: true });
   const ev = await rc.waitFor(() => true, ctx.timeout, 'the retained event');
   await d.session.subscribe(topic, rd.handler); // without get_retained
   await a.session.publish(topic, ['live'], {}, { acknowledge: true });
   await rc.waitFor(labelled('live'), ctx.timeout, 'C: live event');
   await rd.waitFor(labelled('live'), ctx.timeout, 'D: live event');
   expectSame('retained event args/kwargs', [ev.args, ev.kwargs], [['last'], { k: 'v' }]);
   expectSame('retained event details.retained', ev.details.retained, true);
   expectSame('events C got (get_retained)', rc.labels(), ['last', 'live']);
   expectSame('details.retained of the live event', rc.events[1].details.retained, false);
   expectSame('events D got (no get_retained)', rd.labels(), ['live']);
   return 'a new session subscribing with get_retained got the last retained event, ' +
      'details.retained=true; nothing without get_retained';
});

scenario('pubsub_retained_py', async (ctx) => {
   const a = await join(ctx);
   // python retains, a new JS session fetches it
   const t1 = unique('retained');
   await py(a, 'pub', [t1, ['from-python'], { k: 1 }, { retain: true }]);
   const c = await join(ctx);
   const rc = recorder();
   await c.session.subscribe(t1, rc.handler, { get_retained: true });
   const ev = await rc.waitFor(() => true, ctx.timeout, 'the retained event from python');
   expectSame('retained event from python', [ev.args, ev.kwargs], [['from-python'], { k: 1 }]);
   expectSame('details.retained (JS)', ev.details.retained, true);
   // JS retains, python subscribes with get_retained
   const t2 = unique('retained');
   await a.session.publish(t2, ['from-js'], {}, { acknowledge: true, retain: true });
   await pySub(ctx, a, t2, { get_retained: true });
   const evs = await pyEvents(ctx, a, t2, (e) => e.length >= 1, 'retained event');
   expectSame('python: retained event', [evs[0].args, evs[0].retained], [['from-js'], true]);
   return 'python -> new JS session and JS -> python retained events with details.retained';
});

// -- RPC -------------------------------------------------------------------------------

// A JS endpoint that answers only when released: {endpoint, invocations, release()}
function heldEndpoint() {
   const state = { invocations: 0, pending: [] };
   state.endpoint = () => {
      state.invocations += 1;
      return new Promise((resolve) => state.pending.push(resolve));
   };
   state.release = () => {
      for (const r of state.pending.splice(0)) r('released');
   };
   return state;
}

async function collectProgress(promise) {
   const progress = [];
   promise.onProgress((v) => progress.push(v));
   const result = await promise;
   return { progress, result };
}

scenario('rpc_progressive_results_js', async (ctx) => {
   const [a, b] = await joinAll(ctx, 2);
   const proc = unique('progress');
   const seen = [];
   await b.session.register(proc, (args, kwargs, details) => {
      seen.push(typeof details.progress === 'function');
      if (details.progress) for (let i = 1; i <= 3; i++) details.progress([i]);
      return 'done';
   });
   const r = await collectProgress(a.session.call(proc, [], {}, { receive_progress: true }));
   expectSame('progressive results', r.progress, [1, 2, 3]);
   expectSame('final result', r.result, 'done');
   const plain = await collectProgress(a.session.call(proc, []));
   expectSame('without receive_progress: progress', plain.progress, []);
   expectSame('callee got a progress function', seen, [true, false]);
   return `progress ${show(r.progress)} then ${show(r.result)}; none without receive_progress`;
});

scenario('rpc_progressive_results_py', async (ctx) => {
   const a = await join(ctx);
   const r = await collectProgress(py(a, 'progress', [3], {}, { receive_progress: true }));
   expectSame('progressive results from python', r.progress, [0, 1, 2]);
   expectSame('final result from python', r.result, 'done');
   const proc = unique('progress');
   await a.session.register(proc, (args, kwargs, details) => {
      if (details.progress) for (let i = 1; i <= 3; i++) details.progress([i, 'p']);
      return 'js done';
   });
   const got = await py(a, 'call_js_progress', [proc]);
   expectSame('what python received from the JS callee', got, {
      progress: [[1, 'p'], [2, 'p'], [3, 'p']], result: 'js done' });
   return `python -> JS ${show(r.progress)}; JS -> python ${show(got.progress)}`;
});

const CANCEL_SPEC = 'WAMP spec, Call Canceling: "skip: The pending call is canceled and ERROR ' +
   'is sent immediately back to the caller. No INTERRUPT is sent to the callee"; "killnowait: ' +
   'The pending call is canceled and ERROR is sent immediately back to the caller. INTERRUPT ' +
   'is sent to the callee"; and if the callee does not support call canceling, the behaviour ' +
   'is "skip" (no INTERRUPT, ERROR to the caller at once)';

// Set up before session.call(proc): the returned function gives the request id of that
// CALL (autobahn-js sends it synchronously inside call()).
function callRequest(h, proc) {
   const w = watchWire(h, 'TX', (m) => m[0] === MSG.CALL && m[3] === proc);
   return () => {
      w.stop();
      return w.seen.length ? w.seen[w.seen.length - 1][1] : null;
   };
}

// Cancels `promise` (a CALL of proc on h) with mode, the autobahn-js way
// (promise.cancel({mode})), and checks what the caller gets. autobahn-js rejects the call
// itself at once for skip/killnowait and then treats the router's ERROR as a protocol
// violation (it no longer knows the request), so here that ERROR is taken off the wire
// before autobahn-js sees it, and checked. Returns a description.
// calleeCancels: whether the callee announced call_canceling (else even "kill" must be
// answered at once, as "skip"); context(): more to say when it fails.
async function cancelAndCheck(ctx, h, promise, request, mode, calleeCancels, context = () => '') {
   const fromRouter = watchWire(h, 'RX', (m) => (m[0] === MSG.ERROR && m[1] === MSG.CALL && m[2] === request) ||
      (m[0] === MSG.RESULT && m[1] === request),
   // only the ERROR ending a "kill" call is still expected by autobahn-js
   (m, i) => mode !== 'kill' || i > 0);
   ctx.cleanups.push(fromRouter.stop);
   const settled = promise.then((v) => ({ ok: v }), (e) => ({ err: e }));
   promise.cancel({ mode });
   let uri;
   if (mode === 'kill') {
      // autobahn-js keeps a "kill" call pending: the router's ERROR ends it
      const wait = calleeCancels ? ctx.timeout : ctx.quick;
      let s;
      try {
         s = await withTimeout(settled, wait, 'ERROR');
      } catch (e) {
         throw new Error(`cancel(kill): the caller got no ERROR for CALL request ${request} within ` +
            `${wait}s after CANCEL ${show([MSG.CANCEL, request, { mode }])}` + (calleeCancels
            ? ' (the callee, which announced call_canceling, was sent INTERRUPT and answers ERROR)'
            : `; the callee did not announce call_canceling. ${CANCEL_SPEC}`) + context());
      }
      expect(s.err, `cancel(kill): the call returned ${show(s.ok)}, expected an ERROR`);
      uri = s.err.error;
   } else {
      const s = await settled;
      expect(s.err, `autobahn-js did not reject the canceled call: ${show(s.ok)}`);
      let msg;
      try {
         msg = await withTimeout(fromRouter.first, ctx.quick, 'ERROR');
      } catch (e) {
         throw new Error(`cancel(${mode}): the router sent the caller no ERROR for CALL request ` +
            `${request} within ${ctx.quick}s after CANCEL ${show([MSG.CANCEL, request, { mode }])}; ` +
            `expected [8, 48, ${request}, {}, "wamp.error.canceled"]. ${CANCEL_SPEC}` + context());
      }
      expect(msg[0] === MSG.ERROR, `cancel(${mode}): the router answered ${show(msg)}, expected ERROR`);
      uri = msg[4];
   }
   expectSame(`cancel(${mode}): error URI the caller got`, uri, 'wamp.error.canceled');
   return { fromRouter, uri };
}

function cancelScenarioPy(mode) {
   scenario(`rpc_cancel_${mode}_py`, async (ctx) => {
      const a = await join(ctx);
      const key = nonce();
      const req = callRequest(a, PY + 'slow');
      const call = py(a, 'slow', [key, 10]);
      const request = req();
      await pollUntil(() => py(a, 'slow_status', [key]), (s) => s === 'running', ctx.timeout,
         'python slow() running');
      const { fromRouter } = await cancelAndCheck(ctx, a, call, request, mode, true);
      let status;
      if (mode === 'skip') {
         status = await py(a, 'slow_status', [key]);
         expectSame('python callee status after cancel(skip) (no INTERRUPT)', status, 'running');
         const after = await py(a, 'release', [key]); // slow() answers; the router drops it
         expectSame('python slow() after release', after, 'finished');
         expectSame('messages for the canceled call (only one ERROR)', fromRouter.seen.length, 1);
      } else {
         status = await pollUntil(() => py(a, 'slow_status', [key]), (s) => s !== 'running',
            ctx.quick, `python callee interrupted after cancel(${mode})`).catch((e) => {
            throw new Error(`cancel(${mode}): the python callee was not interrupted (INTERRUPT ` +
               `expected, it announced call_canceling): ${e.message}`);
         });
         expectSame(`python callee status after cancel(${mode})`, status, 'interrupted');
      }
      if (mode === 'kill') {
         expect(fromRouter.seen.length === 1 && fromRouter.seen[0][0] === MSG.ERROR,
            `cancel(kill): expected one ERROR for the call, got ${show(fromRouter.seen)}`);
      }
      // the session is still fine
      expectSame('ping after cancel', await py(a, 'ping'), 'pong');
      return `caller got wamp.error.canceled; python callee: ${mode === 'skip' ? 'not interrupted, ' +
         'its late answer dropped' : 'interrupted'}`;
   });
}

function cancelScenarioJs(mode) {
   scenario(`rpc_cancel_${mode}_js`, async (ctx) => {
      const [a, b] = await joinAll(ctx, 2);
      const proc = unique('held');
      const held = heldEndpoint();
      await b.session.register(proc, held.endpoint);
      await b.session.register(`${proc}.ping`, () => 'pong');
      const interrupts = watchWire(b, 'RX', (m) => m[0] === MSG.INTERRUPT, true);
      const req = callRequest(a, proc);
      const call = a.session.call(proc, []);
      const request = req();
      await pollUntil(() => held.invocations, (n) => n === 1, ctx.timeout, 'JS callee invoked');
      const { fromRouter } = await cancelAndCheck(ctx, a, call, request, mode, false,
         () => (interrupts.seen.length ? `; the router sent INTERRUPT ${show(interrupts.seen)} to the ` +
            'autobahn-js callee, which did not announce call_canceling' : ''));
      held.release(); // the callee answers late; the router must drop that
      expectSame(`call after cancel(${mode})`, await a.session.call(`${proc}.ping`), 'pong');
      expectSame('messages for the canceled call', fromRouter.seen.map((m) => m[0]), [MSG.ERROR]);
      expect(interrupts.seen.length === 0, `the router sent INTERRUPT to autobahn-js, which did not ` +
         `announce callee feature call_canceling: ${show(interrupts.seen)}`);
      return `caller got wamp.error.canceled; the autobahn-js callee (no call_canceling) got no ` +
         'INTERRUPT and its late answer was dropped';
   });
}

for (const mode of ['skip', 'kill', 'killnowait']) {
   cancelScenarioPy(mode);
   cancelScenarioJs(mode);
}

const TIMEOUT_SPEC = 'WAMP spec, Call Timeouts: when the timeout expires the Dealer cancels the ' +
   'call as with mode "killnowait": ERROR wamp.error.timeout to the caller and INTERRUPT to a ' +
   'callee that supports call canceling';

async function timedCall(ctx, promise, ms) {
   const t0 = Date.now();
   let s;
   try {
      s = await withTimeout(promise.then((v) => ({ ok: v }), (e) => ({ err: e })), ms / 1000 + ctx.quick,
         `ERROR wamp.error.timeout for a CALL with timeout ${ms}`);
   } catch (e) {
      throw new Error(`${e.message}: the router sent nothing. ${TIMEOUT_SPEC}`);
   }
   const elapsed = Date.now() - t0;
   expect(s.err, `the call with timeout ${ms} returned ${show(s.ok)}`);
   expectSame('error URI', s.err.error, 'wamp.error.timeout');
   expect(elapsed >= ms - 50, `ERROR wamp.error.timeout after ${elapsed} ms, before the ${ms} ms timeout`);
   return elapsed;
}

scenario('rpc_call_timeout_py', async (ctx) => {
   const a = await join(ctx);
   const key = nonce();
   const elapsed = await timedCall(ctx, py(a, 'slow', [key, 10], {}, { timeout: 300 }), 300);
   const status = await pollUntil(() => py(a, 'slow_status', [key]), (s) => s !== 'running',
      ctx.quick, 'python callee interrupted after the timeout').catch((e) => {
      throw new Error(`${e.message}. ${TIMEOUT_SPEC}`);
   });
   expectSame('python callee status after the timeout', status, 'interrupted');
   const ok = await py(a, 'add', [1, 2], {}, { timeout: 2000 });
   expectSame('a call that finishes within its timeout', ok, 3);
   return `wamp.error.timeout after ${elapsed} ms (timeout 300 ms); python callee interrupted`;
});

scenario('rpc_call_timeout_js', async (ctx) => {
   const [a, b] = await joinAll(ctx, 2);
   const proc = unique('held');
   const held = heldEndpoint();
   await b.session.register(proc, held.endpoint);
   await b.session.register(`${proc}.quick`, () => 'quick');
   const interrupts = watchWire(b, 'RX', (m) => m[0] === MSG.INTERRUPT, true);
   const elapsed = await timedCall(ctx, a.session.call(proc, [], {}, { timeout: 300 }), 300);
   held.release();
   expectSame('a call that finishes within its timeout',
      await a.session.call(`${proc}.quick`, [], {}, { timeout: 2000 }), 'quick');
   expect(interrupts.seen.length === 0, `the router sent INTERRUPT to autobahn-js, which did not ` +
      `announce call_canceling: ${show(interrupts.seen)}`);
   return `wamp.error.timeout after ${elapsed} ms (timeout 300 ms); the late answer was dropped`;
});

function expectAlternating(results, names) {
   expect(new Set(results).size === 2 && names.every((n) => results.includes(n)),
      `round robin over ${show(names)} gave ${show(results)}`);
   for (let i = 1; i < results.length; i++) {
      expect(results[i] !== results[i - 1], `round robin did not alternate: ${show(results)}`);
   }
}

scenario('rpc_shared_roundrobin_js', async (ctx) => {
   const [a, b, c] = await joinAll(ctx, 3);
   const proc = unique('rr');
   await b.session.register(proc, () => 'b', { invoke: 'roundrobin' });
   await c.session.register(proc, () => 'c', { invoke: 'roundrobin' });
   const results = [];
   for (let i = 0; i < 6; i++) results.push(await a.session.call(proc));
   expectAlternating(results, ['b', 'c']);
   await expectWampError(a.session.register(proc, () => 'a', { invoke: 'single' }),
      'wamp.error.procedure_already_exists', 'registering a roundrobin procedure with invoke single');
   return `6 calls -> ${results.join(',')}`;
});

scenario('rpc_shared_roundrobin_py', async (ctx) => {
   const a = await join(ctx);
   const proc = unique('rr');
   await a.session.register(proc, () => ({ by: 'js' }), { invoke: 'roundrobin' });
   await pyRegister(ctx, a, proc, { invoke: 'roundrobin' });
   const results = [];
   for (let i = 0; i < 6; i++) results.push((await a.session.call(proc)).by);
   expectAlternating(results, ['js', 'python']);
   return `6 calls -> ${results.join(',')}`;
});

scenario('rpc_pattern_registration_js', async (ctx) => {
   const [a, b] = await joinAll(ctx, 2);
   const n = nonce();
   const answer = (kind) => (args, kwargs, details) => [kind, details.procedure];
   await b.session.register(`com.interop.pp.${n}`, answer('prefix'), { match: 'prefix' });
   await b.session.register(`com.interop.pw.${n}..end`, answer('wildcard'), { match: 'wildcard' });
   await b.session.register(`com.interop.pp.${n}.exact`, answer('exact'));
   const p = await a.session.call(`com.interop.pp.${n}.x.y`);
   const w = await a.session.call(`com.interop.pw.${n}.mid.end`);
   const e = await a.session.call(`com.interop.pp.${n}.exact`);
   expectSame('prefix registration: [kind, details.procedure]', p, ['prefix', `com.interop.pp.${n}.x.y`]);
   expectSame('wildcard registration: [kind, details.procedure]', w, ['wildcard', `com.interop.pw.${n}.mid.end`]);
   expectSame('exact registration wins over the prefix', e, ['exact', `com.interop.pp.${n}.exact`]);
   await expectWampError(a.session.call(`com.interop.pw.${n}.mid.other`), 'wamp.error.no_such_procedure',
      'a URI the wildcard does not match');
   return `prefix -> ${p[1]}; wildcard -> ${w[1]}; exact beats prefix`;
});

scenario('rpc_pattern_registration_py', async (ctx) => {
   const a = await join(ctx);
   const n = nonce();
   await pyRegister(ctx, a, `com.interop.pp.${n}`, { match: 'prefix' });
   await pyRegister(ctx, a, `com.interop.pw.${n}..end`, { match: 'wildcard' });
   const p = await a.session.call(`com.interop.pp.${n}.x.y`, [1]);
   const w = await a.session.call(`com.interop.pw.${n}.mid.end`, [2]);
   expectSame('python prefix registration: details.procedure', [p.by, p.procedure, p.args],
      ['python', `com.interop.pp.${n}.x.y`, [1]]);
   expectSame('python wildcard registration: details.procedure', [w.by, w.procedure, w.args],
      ['python', `com.interop.pw.${n}.mid.end`, [2]]);
   await a.session.register(`com.interop.jpp.${n}`, (args, kwargs, details) => details.procedure,
      { match: 'prefix' });
   const j = await py(a, 'call_js', [`com.interop.jpp.${n}.from.python`]);
   expectSame('JS prefix registration called by python: details.procedure', j, `com.interop.jpp.${n}.from.python`);
   return 'JS -> python prefix/wildcard and python -> JS prefix registrations with details.procedure';
});

scenario('rpc_caller_disclosure_js', async (ctx) => {
   const [a, b] = await joinAll(ctx, 2);
   const proc = unique('who');
   await b.session.register(proc, (args, kwargs, details) => new autobahn.Result([], {
      caller: details.caller === undefined ? null : details.caller,
      caller_authrole: details.caller_authrole === undefined ? null : details.caller_authrole,
   }));
   const shown = resultArgsKwargs(await a.session.call(proc, [], {}, { disclose_me: true })).kwargs;
   const hidden = resultArgsKwargs(await a.session.call(proc, [], {}, {})).kwargs;
   expectSame('callee details with disclose_me', shown, { caller: a.session.id, caller_authrole: 'anonymous' });
   expectSame('callee details without disclose_me', hidden, { caller: null, caller_authrole: null });
   return `callee saw caller=${shown.caller} authrole=${shown.caller_authrole}; nothing without disclose_me`;
});

scenario('rpc_caller_disclosure_py', async (ctx) => {
   const a = await join(ctx);
   const shown = await py(a, 'whocalled', [], {}, { disclose_me: true });
   const hidden = await py(a, 'whocalled', [], {}, {});
   expectSame('python callee: details with disclose_me', [shown.caller, shown.caller_authrole],
      [a.session.id, 'anonymous']);
   expectSame('python callee: details without disclose_me', hidden.caller, null);
   return `python saw caller=${shown.caller} authid=${shown.caller_authid} ` +
      `authrole=${shown.caller_authrole}; the other direction is not expressible: ` +
      'autobahn-python 26.x CallOptions has no disclose_me';
});

// -- meta API --------------------------------------------------------------------------

async function checkSessionMeta(h, others) {
   const s = h.session;
   let count;
   let list;
   // a session of an earlier scenario may still be leaving: ask again if the two differ
   for (let i = 0; i < 3; i++) {
      count = await s.call('wamp.session.count');
      list = await s.call('wamp.session.list');
      expect(Array.isArray(list), `wamp.session.list did not return a list: ${show(list)}`);
      if (count === list.length) break;
      await sleep(50);
   }
   expect(typeof count === 'number' && count === list.length,
      `wamp.session.count=${show(count)} but wamp.session.list has ${list.length}`);
   for (const id of [s.id, ...others]) {
      expect(list.includes(id), `wamp.session.list ${show(list)} lacks session ${id}`);
   }
   const anon = await s.call('wamp.session.count', [['anonymous']]);
   expectSame('wamp.session.count(["anonymous"])', anon, count);
   const none = await s.call('wamp.session.count', [['no-such-role']]);
   expectSame('wamp.session.count(["no-such-role"])', none, 0);
   return { count, list };
}

function expectSessionInfo(what, info, id) {
   expect(info && typeof info === 'object', `${what}: not a dict: ${show(info)}`);
   expectSame(`${what}.session`, info.session, id);
   expectSame(`${what}.authrole`, info.authrole, 'anonymous');
}

scenario('meta_session_js', async (ctx) => {
   const [a, b] = await joinAll(ctx, 2);
   const { count } = await checkSessionMeta(a, [b.session.id]);
   const info = await a.session.call('wamp.session.get', [b.session.id]);
   expectSessionInfo('wamp.session.get(B)', info, b.session.id);
   await expectWampError(a.session.call('wamp.session.get', [UNKNOWN_ID]), 'wamp.error.no_such_session',
      'wamp.session.get of an unknown session');
   return `count=${count}, list has A and B, get(B)=${show(info, 200)}`;
});

scenario('meta_session_py', async (ctx) => {
   const a = await join(ctx);
   const pid = await py(a, 'whoami');
   const { count } = await checkSessionMeta(a, [pid]);
   const info = await a.session.call('wamp.session.get', [pid]);
   expectSessionInfo('wamp.session.get(python)', info, pid);
   const seen = await py(a, 'meta', ['wamp.session.get', a.session.id]);
   expectSessionInfo('python: wamp.session.get(JS)', seen, a.session.id);
   const pyList = await py(a, 'meta', ['wamp.session.list']);
   expect(pyList.includes(a.session.id) && pyList.includes(pid), `python: wamp.session.list ${show(pyList)}`);
   return `count=${count}; JS get(python)=${show(info, 160)}; python get(JS) ok`;
});

scenario('meta_session_events_js', async (ctx) => {
   const a = await join(ctx);
   const joins = recorder();
   const leaves = recorder();
   await a.session.subscribe('wamp.session.on_join', joins.handler);
   await a.session.subscribe('wamp.session.on_leave', leaves.handler);
   const b = await join(ctx);
   const bid = b.session.id;
   const j = await joins.waitFor((e) => e.args[0] && e.args[0].session === bid, ctx.timeout, 'on_join of B');
   expectSessionInfo('on_join details', j.args[0], bid);
   await disconnect(b);
   const l = await leaves.waitFor((e) => e.args[0] === bid, ctx.timeout, 'on_leave of B');
   expectSame('on_leave args', l.args, [bid, l.args[1], 'anonymous']);
   return `on_join ${show(j.args[0], 160)}; on_leave ${show(l.args)}`;
});

scenario('meta_session_events_py', async (ctx) => {
   const a = await join(ctx);
   await pySub(ctx, a, 'wamp.session.on_join');
   await pySub(ctx, a, 'wamp.session.on_leave');
   const b = await join(ctx);
   const bid = b.session.id;
   const joins = await pyEvents(ctx, a, 'wamp.session.on_join',
      (e) => e.some((x) => x.args[0] && x.args[0].session === bid), 'on_join of the JS session');
   expectSessionInfo('python: on_join details', joins.find((x) => x.args[0].session === bid).args[0], bid);
   await disconnect(b);
   const leaves = await pyEvents(ctx, a, 'wamp.session.on_leave',
      (e) => e.some((x) => x.args[0] === bid), 'on_leave of the JS session');
   const l = leaves.find((x) => x.args[0] === bid);
   expectSame('python: on_leave args', l.args, [bid, l.args[1], 'anonymous']);
   return `python saw on_join and on_leave of JS session ${bid}`;
});

function expectCreated(what, ev, sid, uri, match) {
   expect(ev.args.length >= 2, `${what}: args ${show(ev.args)}`);
   expectSame(`${what}: session`, ev.args[0], sid);
   const d = ev.args[1];
   expectSame(`${what}: details uri/match`, [d.uri, d.match], [uri, match]);
   expect(typeof d.id === 'number' && typeof d.created === 'string', `${what}: details ${show(d)}`);
   return d;
}

scenario('meta_subscription_js', async (ctx) => {
   const [a, b, c] = await joinAll(ctx, 3);
   const creates = recorder();
   const subs = recorder();
   await a.session.subscribe('wamp.subscription.on_create', creates.handler);
   await a.session.subscribe('wamp.subscription.on_subscribe', subs.handler);
   const topic = unique('meta.sub');
   const sb = await b.session.subscribe(topic, () => {});
   const cr = await creates.waitFor((e) => e.args[1] && e.args[1].uri === topic, ctx.timeout, 'on_create');
   const d = expectCreated('on_create', cr, b.session.id, topic, 'exact');
   expectSame('on_create details.id = the subscription id', d.id, sb.id);
   await subs.waitFor((e) => e.args[0] === b.session.id && e.args[1] === sb.id, ctx.timeout, 'on_subscribe of B');
   const sc = await c.session.subscribe(topic, () => {});
   expectSame('second subscriber: same subscription id', sc.id, sb.id);
   await subs.waitFor((e) => e.args[0] === c.session.id && e.args[1] === sb.id, ctx.timeout, 'on_subscribe of C');
   expectSame('on_create events for the topic', creates.events.filter((e) => e.args[1].uri === topic).length, 1);
   expectSame('wamp.subscription.lookup', await a.session.call('wamp.subscription.lookup', [topic]), sb.id);
   expectSame('wamp.subscription.lookup (prefix)',
      await a.session.call('wamp.subscription.lookup', [topic, { match: 'prefix' }]), null);
   const subscribers = await a.session.call('wamp.subscription.list_subscribers', [sb.id]);
   expectSame('wamp.subscription.list_subscribers', [...subscribers].sort(),
      [b.session.id, c.session.id].sort());
   return `on_create/on_subscribe, lookup=${sb.id}, list_subscribers=${show(subscribers)}`;
});

scenario('meta_subscription_py', async (ctx) => {
   const a = await join(ctx);
   const pid = await py(a, 'whoami');
   const creates = recorder();
   const subs = recorder();
   await a.session.subscribe('wamp.subscription.on_create', creates.handler);
   await a.session.subscribe('wamp.subscription.on_subscribe', subs.handler);
   const topic = unique('meta.sub');
   const sid = await pySub(ctx, a, topic);
   const cr = await creates.waitFor((e) => e.args[1] && e.args[1].uri === topic, ctx.timeout, 'on_create');
   expectSame('on_create details.id', expectCreated('on_create', cr, pid, topic, 'exact').id, sid);
   await subs.waitFor((e) => e.args[0] === pid && e.args[1] === sid, ctx.timeout, 'on_subscribe of python');
   expectSame('wamp.subscription.lookup', await a.session.call('wamp.subscription.lookup', [topic]), sid);
   expectSame('python: wamp.subscription.lookup', await py(a, 'meta', ['wamp.subscription.lookup', topic]), sid);
   await a.session.subscribe(topic, () => {});
   const subscribers = await a.session.call('wamp.subscription.list_subscribers', [sid]);
   expectSame('wamp.subscription.list_subscribers', [...subscribers].sort(), [pid, a.session.id].sort());
   return `python's subscription ${sid}: on_create/on_subscribe, lookup, list_subscribers=${show(subscribers)}`;
});

scenario('meta_registration_js', async (ctx) => {
   const [a, b] = await joinAll(ctx, 2);
   const creates = recorder();
   const regs = recorder();
   await a.session.subscribe('wamp.registration.on_create', creates.handler);
   await a.session.subscribe('wamp.registration.on_register', regs.handler);
   const proc = unique('meta.reg');
   const rb = await b.session.register(proc, () => 1);
   const cr = await creates.waitFor((e) => e.args[1] && e.args[1].uri === proc, ctx.timeout, 'on_create');
   expectSame('on_create details.id', expectCreated('on_create', cr, b.session.id, proc, 'exact').id, rb.id);
   await regs.waitFor((e) => e.args[0] === b.session.id && e.args[1] === rb.id, ctx.timeout, 'on_register');
   expectSame('wamp.registration.lookup', await a.session.call('wamp.registration.lookup', [proc]), rb.id);
   const got = await a.session.call('wamp.registration.get', [rb.id]);
   expectSame('wamp.registration.get', [got.id, got.uri, got.match, got.invoke], [rb.id, proc, 'exact', 'single']);
   await expectWampError(a.session.call('wamp.registration.get', [UNKNOWN_ID]), 'wamp.error.no_such_registration',
      'wamp.registration.get of an unknown id');
   return `on_create/on_register, lookup, get=${show(got)}`;
});

scenario('meta_registration_py', async (ctx) => {
   const a = await join(ctx);
   const pid = await py(a, 'whoami');
   const creates = recorder();
   const regs = recorder();
   await a.session.subscribe('wamp.registration.on_create', creates.handler);
   await a.session.subscribe('wamp.registration.on_register', regs.handler);
   const proc = unique('meta.reg');
   const rid = await pyRegister(ctx, a, proc, { invoke: 'roundrobin' });
   const cr = await creates.waitFor((e) => e.args[1] && e.args[1].uri === proc, ctx.timeout, 'on_create');
   const d = expectCreated('on_create', cr, pid, proc, 'exact');
   expectSame('on_create details id/invoke', [d.id, d.invoke], [rid, 'roundrobin']);
   await regs.waitFor((e) => e.args[0] === pid && e.args[1] === rid, ctx.timeout, 'on_register of python');
   expectSame('wamp.registration.lookup', await a.session.call('wamp.registration.lookup', [proc]), rid);
   const got = await a.session.call('wamp.registration.get', [rid]);
   expectSame('wamp.registration.get', [got.id, got.uri, got.match, got.invoke], [rid, proc, 'exact', 'roundrobin']);
   const pyGot = await py(a, 'meta', ['wamp.registration.lookup', proc]);
   expectSame('python: wamp.registration.lookup', pyGot, rid);
   return `python's registration ${rid}: on_create/on_register, lookup, get=${show(got)}`;
});

scenario('meta_testament_js', async (ctx) => {
   const [a, b, c] = await joinAll(ctx, 3);
   const topic = unique('testament');
   const r = recorder();
   await a.session.subscribe(topic, r.handler);
   await b.session.call('wamp.session.add_testament', [topic, ['b-left', b.session.id], { k: 'v' }]);
   await c.session.call('wamp.session.add_testament', [topic, ['c-lost', c.session.id], {}]);
   const bid = b.session.id;
   const cid = c.session.id;
   await disconnect(b); // GOODBYE
   const eb = await r.waitFor(labelled('b-left'), ctx.timeout, 'testament of B (GOODBYE)');
   expectSame('testament of B', [eb.args, eb.kwargs], [['b-left', bid], { k: 'v' }]);
   c.transport.close(1000, 'dropped'); // the transport goes away without GOODBYE
   const ec = await r.waitFor(labelled('c-lost'), ctx.timeout, 'testament of C (transport closed)');
   expectSame('testament of C', ec.args, ['c-lost', cid]);
   expectSame('events', r.labels(), ['b-left', 'c-lost']);
   return 'testaments published after a GOODBYE and after a transport close';
});

scenario('meta_testament_py', async (ctx) => {
   const a = await join(ctx);
   const b = await join(ctx);
   const topic = unique('testament');
   await pySub(ctx, a, topic);
   const bid = b.session.id;
   await b.session.call('wamp.session.add_testament', [topic, ['b-left', bid], { k: 'v' }]);
   await disconnect(b);
   const evs = await pyEvents(ctx, a, topic, (e) => e.length >= 1, 'the testament');
   expectSame('python: testament event', [evs[0].args, evs[0].kwargs], [['b-left', bid], { k: 'v' }]);
   return `python got the testament of JS session ${bid}`;
});

// -- large payloads --------------------------------------------------------------------

const MIB = 1024 * 1024;
const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');

function bigString() {
   return crypto.randomBytes(MIB / 2).toString('hex'); // 1 MiB of ASCII
}

scenario('large_string_call_py', async (ctx) => {
   const a = await join(ctx);
   const s = bigString();
   const t0 = Date.now();
   const back = await a.session.call(PY + 'echo', [s]);
   const ms = Date.now() - t0;
   expect(typeof back === 'string', `echo of 1 MiB string returned ${show(back)}`);
   expect(back === s, `1 MiB string changed on the way (length ${back.length})`);
   const d = await py(a, 'digest', [s]);
   expectSame('what python received', d, [{ type: 'str', len: MIB, sha256: sha256(s) }]);
   return `1 MiB string echoed by python in ${ms} ms; python's sha256 matches`;
});

scenario('large_string_call_js', async (ctx) => {
   const [a, b] = await joinAll(ctx, 2);
   const proc = unique('echo');
   await b.session.register(proc, (args) => args[0]);
   const s = bigString();
   const t0 = Date.now();
   const back = await a.session.call(proc, [s]);
   expect(typeof back === 'string' && back === s, `1 MiB string changed on the way: ${show(back, 80)}`);
   return `1 MiB string echoed by autobahn-js in ${Date.now() - t0} ms`;
});

scenario('large_binary_call_py', async (ctx) => {
   const skip = rawsocketNoBinary(ctx);
   if (skip) return { skip };
   const a = await join(ctx);
   const buf = crypto.randomBytes(MIB);
   buf[0] = 0;
   const t0 = Date.now();
   const back = await a.session.call(PY + 'echo', [buf]);
   const ms = Date.now() - t0;
   expect(isBytes(back), `echo of 1 MiB bytes returned ${show(back, 80)}`);
   expect(toBuffer(back).equals(buf), `1 MiB bytes changed on the way (length ${toBuffer(back).length})`);
   const d = await py(a, 'digest', [buf]);
   expectSame('what python received', d, [{ type: 'bytes', len: MIB, sha256: sha256(buf) }]);
   return `1 MiB bytes echoed by python in ${ms} ms; python got bytes with the same sha256`;
});

scenario('large_binary_call_js', async (ctx) => {
   const skip = rawsocketNoBinary(ctx);
   if (skip) return { skip };
   const [a, b] = await joinAll(ctx, 2);
   const proc = unique('echo');
   const seen = [];
   await b.session.register(proc, (args) => {
      seen.push(isBytes(args[0]) ? toBuffer(args[0]).length : show(args[0], 40));
      return args[0];
   });
   const buf = crypto.randomBytes(MIB);
   buf[0] = 0;
   const t0 = Date.now();
   const back = await a.session.call(proc, [buf]);
   expect(isBytes(back) && toBuffer(back).equals(buf), `1 MiB bytes changed on the way: ${show(back, 80)}`);
   expectSame('what the JS callee received', seen, [MIB]);
   return `1 MiB bytes echoed by autobahn-js in ${Date.now() - t0} ms`;
});

// --------------------------------------------------------------------------------------
// runner
// --------------------------------------------------------------------------------------

function emit(target, name, result, detail, wireLines, ms) {
   const line = {
      client: CLIENT,
      transport: target.transport,
      scenario: name,
      serializer: target.serializer,
      result,
      detail,
   };
   if (ms !== undefined) line.ms = ms;
   if (wireLines && wireLines.length) line.wire = wireLines;
   process.stdout.write(JSON.stringify(line) + '\n');
}

async function runScenario(sc, target, opts) {
   const ctx = {
      target,
      realm: opts.realm,
      authRealm: opts.authRealm,
      creds: opts.creds,
      timeout: opts.timeout,
      // how long to wait for something the router must do at once (an ERROR after a
      // CANCEL, say) before calling it missing
      quick: Math.min(opts.timeout, 1.5),
      conns: [],
      cleanups: [],
   };
   wire = [];
   const t0 = Date.now();
   let result;
   let detail;
   try {
      const r = await withTimeout(Promise.resolve().then(() => sc.fn(ctx)), opts.timeout * 2, sc.name);
      if (r && typeof r === 'object' && r.skip) {
         result = 'SKIP';
         detail = r.skip;
      } else {
         result = 'PASS';
         detail = r === undefined ? '' : String(r);
      }
   } catch (e) {
      result = 'FAIL';
      detail = e instanceof Error ? e.message : `rejected with ${show(e)}`;
   }
   for (const fn of ctx.cleanups.reverse()) {
      try {
         await withTimeout(Promise.resolve().then(fn), 3, 'cleanup');
      } catch (e) {
         log(`${sc.name}: cleanup failed:`, e.message || show(e));
      }
   }
   for (const h of ctx.conns) await disconnect(h);
   emit(target, sc.name, result, detail, result === 'FAIL' ? wire.slice() : null, Date.now() - t0);
   return result;
}

function parseRawsocketUrl(url) {
   const m = /^(?:rs|tcp):\/\/([^:/]+):(\d+)\/?$/.exec(url);
   if (!m) usage(`bad --rawsocket-url ${url} (want rs://HOST:PORT)`);
   return { host: m[1], port: Number(m[2]) };
}

function targets(opts) {
   const out = [];
   for (const s of opts.serializers) {
      out.push({ transport: 'websocket', serializer: s, url: opts.url });
   }
   if (opts.rawsocketUrl) {
      const { host, port } = parseRawsocketUrl(opts.rawsocketUrl);
      for (const s of opts.serializers) out.push({ transport: 'rawsocket', serializer: s, host, port });
   }
   return out;
}

// Why a serializer cannot be used from Node, or null.
function unusable(target) {
   if (target.transport === 'rawsocket' && target.serializer !== 'json') {
      return `autobahn-js ${autobahn.version} rawsocket transport implements JSON only ` +
         '(lib/transport/rawsocket.js: Protocol.SERIALIZERS = {json: 1})';
   }
   if (target.transport === 'websocket' && !makeSerializer(target.serializer)) {
      return `autobahn.serializer has no ${target.serializer} serializer in this Node build`;
   }
   return null;
}

async function waitForPeer(opts) {
   const target = { transport: 'websocket', serializer: 'json', url: opts.url };
   const deadline = Date.now() + opts.waitPeer * 1000;
   let last = 'never tried';
   while (Date.now() < deadline) {
      const ctx = { target, realm: opts.realm, timeout: opts.timeout, conns: [] };
      try {
         const h = await connect(ctx, opts.realm);
         try {
            const r = await h.session.call('com.interop.ping');
            if (r === 'pong') return true;
            last = `ping returned ${show(r)}`;
         } catch (e) {
            last = e.error || e.message;
         }
      } catch (e) {
         last = e.message;
      }
      for (const h of ctx.conns) await disconnect(h);
      await new Promise((r) => setTimeout(r, 250));
   }
   log(`python peer not available after ${opts.waitPeer}s: ${last}`);
   return false;
}

async function main() {
   const opts = parseArgs(process.argv.slice(2));
   // scenarios that need a principal only --auth-file provides run when it does
   let selected = SCENARIOS.filter((s) => !s.needs || opts.creds[s.needs]);
   if (opts.scenarios) {
      const unknown = opts.scenarios.filter((n) => !SCENARIOS.some((s) => s.name === n));
      if (unknown.length) usage(`unknown scenario(s): ${unknown.join(', ')}`);
      selected = SCENARIOS.filter((s) => opts.scenarios.includes(s.name));
   }
   if (opts.list) {
      for (const s of SCENARIOS) process.stdout.write(s.name + '\n');
      return 0;
   }
   log(`autobahn-js ${autobahn.version} on Node ${process.version}; WebSocket: ` +
      ('WebSocket' in global ? 'global WebSocket' : 'ws package'));
   if (opts.waitPeer > 0 && !(await waitForPeer(opts))) return 3;

   let failed = 0;
   for (const target of targets(opts)) {
      const why = unusable(target);
      for (const sc of selected) {
         if (why) {
            emit(target, sc.name, 'SKIP', why);
            continue;
         }
         if (sc.needs && !opts.creds[sc.needs]) {
            emit(target, sc.name, 'SKIP', `no ${sc.needs} principal: give one with --auth-file`);
            continue;
         }
         if ((await runScenario(sc, target, opts)) === 'FAIL') failed += 1;
      }
   }
   return failed ? 1 : 0;
}

process.on('unhandledRejection', (reason) => {
   log('unhandled rejection:', reason && (reason.stack || show(reason)));
});

main().then(
   (code) => process.exit(code),
   (err) => {
      log('crashed:', err && (err.stack || err));
      process.exit(2);
   },
);
