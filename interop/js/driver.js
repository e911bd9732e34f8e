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
//                  [--wait-peer 20] [--list]

'use strict';

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
try {
   autobahn = require('autobahn');
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
   return opts;
}

function usage(problem) {
   const text = 'usage: node driver.js --url ws://HOST:PORT/PATH [--rawsocket-url rs://HOST:PORT]\n' +
      '       [--serializers json,msgpack,cbor] [--scenarios NAME,...] [--timeout SECONDS]\n' +
      '       [--wait-peer SECONDS] [--realm realm1] [--auth-realm realm2] [--list]\n';
   if (problem) {
      process.stderr.write(`driver: ${problem}\n${text}`);
      process.exit(2);
   }
   process.stdout.write(text);
   process.exit(0);
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
const WIRE_MAX = 60;

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
      const send = t.send;
      t.send = function (msg) {
         traceMsg('TX', tag, msg);
         return send.call(t, msg);
      };
      let onmessage = t.onmessage;
      // the inner transport calls transport.onmessage(msg) at receive time; the session
      // assigns its handler after create() returns
      Object.defineProperty(t, 'onmessage', {
         configurable: true,
         get() {
            return function (msg) {
               traceMsg('RX', tag, msg);
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
         onchallenge: auth.onchallenge,
         max_retries: 0,
         retry_if_unreachable: false,
         use_es6_promises: true,
         on_user_error: (err, msg) => log('user error:', msg || '', err && (err.stack || show(err))),
         on_internal_error: (err, msg) => log('internal error:', msg || '', err && (err.stack || show(err))),
      });
      const handle = { conn, session: null, details: null, closed };
      ctx.conns.push(handle);
      conn.onopen = (session, details) => {
         opened = true;
         handle.session = session;
         handle.details = details;
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

function expectJoined(h, authid, authmethod) {
   const d = h.details;
   expectSame('WELCOME.authid', d.authid, authid);
   expectSame('WELCOME.authrole', d.authrole, 'user');
   if (d.authmethod !== undefined) expectSame('WELCOME.authmethod', d.authmethod, authmethod);
   return `session=${h.session.id} authid=${d.authid} authrole=${d.authrole} authmethod=${d.authmethod}`;
}

scenario('auth_ticket_join', async (ctx) => {
   const h = await connect(ctx, ctx.authRealm, ticketAuth('alice', 'secret123'));
   return expectJoined(h, 'alice', 'ticket');
});

scenario('auth_wampcra_join', async (ctx) => {
   const h = await connect(ctx, ctx.authRealm, craAuth('bob', 'bobsecret'));
   return expectJoined(h, 'bob', 'wampcra');
});

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
   ticketAuth('alice', 'not-the-ticket'), 'wamp.error.authentication_failed', 'wrong ticket'));

scenario('auth_wrong_wampcra', async (ctx) => expectJoinRejected(ctx, ctx.authRealm,
   craAuth('bob', 'not-the-secret'), 'wamp.error.authentication_failed', 'wrong WAMP-CRA secret'));

scenario('auth_anonymous_realm2_rejected', async (ctx) => {
   // the config gives anonymous clients realm1 only; any ABORT reason is accepted here
   const r = await expectJoinRejected(ctx, ctx.authRealm, {}, null, 'anonymous join of realm2');
   return r;
});

scenario('realm2_authorized_ok', async (ctx) => {
   const h = await connect(ctx, ctx.authRealm, ticketAuth('alice', 'secret123'));
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
   const h = await connect(ctx, ctx.authRealm, ticketAuth('alice', 'secret123'));
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
// runner
// --------------------------------------------------------------------------------------

function emit(target, name, result, detail, wireLines) {
   const line = {
      client: CLIENT,
      transport: target.transport,
      scenario: name,
      serializer: target.serializer,
      result,
      detail,
   };
   if (wireLines && wireLines.length) line.wire = wireLines;
   process.stdout.write(JSON.stringify(line) + '\n');
}

async function runScenario(sc, target, opts) {
   const ctx = {
      target,
      realm: opts.realm,
      authRealm: opts.authRealm,
      timeout: opts.timeout,
      conns: [],
   };
   wire = [];
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
   for (const h of ctx.conns) await disconnect(h);
   emit(target, sc.name, result, detail, result === 'FAIL' ? wire.slice() : null);
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
   let selected = SCENARIOS;
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
