#!/usr/bin/env node
// Data-sync driver: unmodified wampy.js (the `wampy` npm package, 8.0.2) against a router
// that runs realms/datasync.toml (records under "app.doc.", conflict policy "rebase").
// See README.md, "Data-sync: JSON records that stay in sync".
//
//   node datasync.js --url ws://127.0.0.1:PORT/ws [--serializer json|msgpack|cbor]
//                    [--scenarios a,b] [--timeout 15] [--tag TAG] [--list]
//
// One JSON line per scenario on stdout ({"client":"wampy.js","serializer","scenario",
// "result":"PASS"|"FAIL"|"SKIP","detail","notes"}), logs on stderr; exit 0 = no FAIL. SKIP:
// what wampy.js cannot express, with the reason in "detail".
//
// How wampy.js expresses the data-sync protocol:
//   - follow a record the documented way for clients without subscribe options: subscribe
//     plainly, buffer the events, call sync.get(uri) -> {v, value, epoch}, then apply the
//     buffered events with a greater v (scenario "observe"). wampy 8 can also send
//     get_retained (subscribe(topic, cb, {get_retained: true})): scenario
//     "observe_get_retained".
//   - payloads: publish(topic, {ops: [...]}) sends a plain object as kwargs with empty
//     args, which is what a record write needs; {argsList, argsDict} sets both.
//     call(proc, "x") / call(proc, [..]) send args, call(proc, {...}) kwargs only
//     (arguments by name).
//   - every publish() is acknowledged (wampy always sets acknowledge: true), and a refused
//     write rejects with a PublishError {errorUri, argsList, argsDict}; a CALL error with a
//     CallError of the same shape.
//   - publish() drops exclude_me: false (`...exclude_me ? {exclude_me} : {}`), so a client
//     that writes by PUBLISH never gets its own change event: it sees a gap at its next
//     event and fills it with sync.get(since); or it writes by CALL, whose change event
//     reaches every subscriber, the caller too, before the RESULT.

'use strict';

const path = require('path');
const WebSocket = require('ws');
const { Wampy } = require('wampy');
const { JsonSerializer } = require('wampy/JsonSerializer.js');
const { MsgpackSerializer } = require('wampy/MsgpackSerializer.js');
const { CborSerializer } = require('wampy/CborSerializer.js');
const { Replica, deepEqual, clone } = require(path.join(__dirname, '..', 'js', 'sync_replica.js'));
const {
   Check, expect, expectEqual, makeLog, runMain, show, withTimeout,
} = require(path.join(__dirname, '..', 'js', 'driver_kit.js'));

const CLIENT = 'wampy.js';
const SERIALIZERS = {
   json: () => new JsonSerializer(),
   msgpack: () => new MsgpackSerializer(),
   cbor: () => new CborSerializer(),
};

const log = makeLog('wampy-datasync');

async function until(cond, ms, what) {
   const deadline = Date.now() + ms;
   while (!cond()) {
      if (Date.now() > deadline) throw new Check(`timeout after ${ms} ms: ${what}`);
      await new Promise((res) => setTimeout(res, 5));
   }
}
class Skip extends Error {} // the client cannot express the scenario: the message says why

function isWampError(e) {
   return e && typeof e.errorUri === 'string';
}

function describeError(e) {
   if (isWampError(e)) return `${e.name} ${e.errorUri} ${show(e.argsList)} ${show(e.argsDict)}`;
   return e && (e.stack || show(e));
}

// wampy always sends {match, get_retained} in SUBSCRIBE.Options, undefined when not
// given: JSON drops undefined members, msgpackr / cbor-x encode them. Both set
// explicitly keep the options well-formed with every serializer.
const PLAIN = { match: 'exact', get_retained: false };

class Ctx {
   constructor(opts, name) {
      this.opts = opts;
      this.name = name;
      this.conns = [];
      this.notes = [];
      this.seq = 0;
   }

   uri(suffix) {
      return `app.doc.wampy.${this.opts.tag}.${this.opts.serializer}.${this.name}${suffix ? `.${suffix}` : ''}`;
   }

   async connect(name) {
      const w = new Wampy(this.opts.url, {
         realm: 'realm1', ws: WebSocket, serializer: SERIALIZERS[this.opts.serializer](), autoReconnect: false,
      });
      const h = { name: name || `c${++this.seq}`, w, open: true };
      this.conns.push(h);
      await withTimeout(w.connect(), 5000, `joining realm1 at ${this.opts.url}`);
      return h;
   }

   async close(h) {
      if (!h.open) return;
      h.open = false;
      try {
         await withTimeout(h.w.disconnect(), 3000, `closing ${h.name}`);
      } catch (e) {
         log('close:', e.message);
      }
   }

   async closeAll() {
      await Promise.all(this.conns.map((h) => this.close(h)));
   }
}

// every sync.* procedure answers with one positional dict
async function call(h, procedure, payload, options) {
   const r = await h.w.call(procedure, payload, options);
   const args = (r && r.argsList) || [];
   expect(args.length === 1 && args[0] !== null && typeof args[0] === 'object' && !Array.isArray(args[0]),
      `${procedure}: expected one positional dict, got args=${show(args)} kwargs=${show(r && r.argsDict)}`);
   return args[0];
}

// {errorUri, argsList, argsDict}: wampy's CallError / PublishError
async function expectError(promise, uri, what) {
   let res;
   try {
      res = await promise;
   } catch (e) {
      expect(isWampError(e), `${what}: expected ${uri}, got ${describeError(e)}`);
      expect(e.errorUri === uri, `${what}: expected ${uri}, got ${describeError(e)}`);
      expect(Array.isArray(e.argsList) && typeof e.argsList[0] === 'string',
         `${what}: ${uri} without a message in args[0]: ${show(e.argsList)}`);
      return e;
   }
   throw new Check(`${what}: expected ${uri}, but it succeeded with ${show(res)}`);
}

// follow a record without subscribe options: subscribe, buffer, sync.get, apply the
// buffered events with a greater v, then apply events as they come
async function follow(h, uri, name, onSubscribed) {
   const r = new Replica(name || h.name);
   const buffered = [];
   let live = false;
   r.events = []; // every event as received: {retained, v}
   await h.w.subscribe(uri, (ev) => {
      const d = ev.details || {};
      r.events.push({ retained: !!d.retained, v: ev.argsDict && ev.argsDict.v });
      if (live) r.receive(!!d.retained, ev.argsList, ev.argsDict);
      else buffered.push({ retained: !!d.retained, args: ev.argsList, kwargs: clone(ev.argsDict) });
   }, PLAIN);
   if (onSubscribed) await onSubscribed();
   const got = await call(h, 'sync.get', uri);
   r.first = got;
   r.snapshot(got);
   for (const e of buffered) r.receive(e.retained, e.args, e.kwargs);
   r.bufferedCount = buffered.length;
   live = true;
   return r;
}

async function matchesGet(h, uri, ...replicas) {
   const got = await call(h, 'sync.get', uri);
   for (const r of replicas) r.assertMatches(got, `sync.get ${uri} (v${got.v})`);
   return got;
}

// a follower that wrote by PUBLISH has no event of its own write (exclude_me: false cannot
// be expressed): fill the gap with sync.get(since)
async function catchUp(h, r, uri) {
   r.gaps = [];
   r.resync(await call(h, 'sync.get', { argsList: [uri], argsDict: { since: r.v, epoch: r.epoch } }));
}

const SCENARIOS = {};

// follow a new record, then one that is written while the follower subscribes
SCENARIOS.observe = async (ctx) => {
   const a = await ctx.connect('a');
   const b = await ctx.connect('b');
   const uri = ctx.uri();
   const ra = await follow(a, uri, 'a');
   expect(ra.first.v === 0 && ra.first.exists === false && ra.first.value === null && typeof ra.first.epoch === 'string',
      `sync.get of a new record: expected {v: 0, exists: false, value: null, epoch}, got ${show(ra.first)}`);
   expect(ra.events.length === 0, `a plain subscription got events before any write: ${show(ra.events)}`);
   await b.w.publish(uri, { ops: [{ op: 'add', path: '/title', value: 'Hello' }] });
   await ra.waitFor(1);
   expect('value' in ra.changes[0], `v1 (creates the record) comes as a value: ${show(ra.changes[0])}`);
   await matchesGet(b, uri, ra);

   // writes going on while c subscribes and reads: the buffered events fill the window
   const c = await ctx.connect('c');
   let writes = 0;
   const writer = (async () => {
      for (let i = 0; i < 20; i++) {
         await call(b, 'sync.patch', [uri, [{ op: 'x-inc', path: '/n', by: 1 }]]);
         writes++;
      }
   })();
   const rc = await follow(c, uri, 'c', async () => {
      while (writes < 3) await new Promise((res) => setTimeout(res, 1));
   });
   await writer;
   await Promise.all([ra.waitFor(21), rc.waitFor(21)]);
   expectEqual('replicas a and c', rc.value, ra.value);
   expectEqual('value', ra.value, { title: 'Hello', n: 20 });
   ctx.notes.push(`c's sync.get returned v${rc.first.v}; ${rc.bufferedCount} events were buffered meanwhile`);
   await matchesGet(b, uri, ra, rc);
};

// wampy 8 does send get_retained: the retained event comes first, with details.retained
SCENARIOS.observe_get_retained = async (ctx) => {
   const a = await ctx.connect('a');
   const b = await ctx.connect('b');
   const uri = ctx.uri();
   const r = new Replica('a');
   const events = [];
   await a.w.subscribe(uri, (ev) => {
      events.push({ retained: (ev.details || {}).retained, args: ev.argsList, kwargs: clone(ev.argsDict) });
      r.receive(!!(ev.details || {}).retained, ev.argsList, ev.argsDict);
   }, { match: 'exact', get_retained: true });
   await r.waitFor(0);
   const first = events[0];
   expect(first.retained === true && first.kwargs.v === 0 && first.kwargs.exists === false,
      `first event: expected retained {v: 0, exists: false}, got ${show(first)}`);
   await call(b, 'sync.set', [uri, { a: 1 }]);
   await call(b, 'sync.patch', [uri, [{ op: 'x-inc', path: '/a', by: 1 }]]);
   await r.waitFor(2);
   expectEqual('log', r.log, ['snapshot@0', 'change@1', 'change@2']);
   await matchesGet(b, uri, r);
};

// PUBLISH: the body as the payload object (kwargs, empty args); always acknowledged
SCENARIOS.write_publish = async (ctx) => {
   const a = await ctx.connect('a');
   const b = await ctx.connect('b');
   const uri = ctx.uri();
   const ra = await follow(a, uri, 'a');
   const pub = await b.w.publish(uri, { ops: [{ op: 'add', path: '/title', value: 'Hello' }] });
   // (msgpackr decodes a 64-bit id as a BigInt)
   expect(pub && ['number', 'bigint'].includes(typeof pub.publicationId),
      `publish(): expected a publicationId, got ${show(pub && Object.keys(pub))}`);
   if (typeof pub.publicationId === 'bigint') ctx.notes.push('publicationId decoded as a BigInt');
   await b.w.publish(uri, { ops: [{ op: 'add', path: '/tags', value: ['x'] }, { op: 'add', path: '/tags/-', value: 'y' }], cid: 'wampy-2' });
   await b.w.publish(uri, { merge: { title: 'Hi', n: 1, tags: null } });
   // {argsList: [], argsDict: body}: the same message, written out
   await b.w.publish(uri, { argsList: [], argsDict: { ops: [{ op: 'x-inc', path: '/n', by: 2 }] } });
   await b.w.publish(uri, { value: { title: 'Whole', n: 3 }, cid: 'wampy-5' });
   await ra.waitFor(5);
   expect(ra.changes[1].cid === 'wampy-2' && ra.changes[4].cid === 'wampy-5', `cids: ${show(ra.changes.map((c) => c.cid))}`);
   expect(Array.isArray(ra.changes[2].ops) && ra.changes[3].ops.every((op) => !op.op.startsWith('x-')),
      `merge / intent ops come as plain ops: ${show(ra.changes.slice(2, 4))}`);
   expectEqual('replica', ra.value, { title: 'Whole', n: 3 });

   // refused writes reject the publish() promise (wampy acknowledges every PUBLISH)
   const e = await expectError(b.w.publish(uri, { argsList: [{ op: 'add', path: '/x', value: 1 }] }),
      'sync.error.invalid_patch', 'PUBLISH with the body in args');
   expect(/kwargs/.test(e.argsList[0]), `the error says why: ${e.argsList[0]}`);
   await expectError(b.w.publish(uri, { ops: [{ op: 'remove', path: '/missing' }] }), 'sync.error.invalid_patch',
      'PUBLISH removing a missing path');

   // a follower writing by PUBLISH gets no event of its own write (see own_publish_echo):
   // the next event shows a gap, which sync.get(since) fills
   await a.w.publish(uri, { ops: [{ op: 'replace', path: '/n', value: 10 }] });
   await call(b, 'sync.patch', [uri, [{ op: 'x-inc', path: '/n', by: 1 }]]);
   await until(() => ra.v === 7 || ra.gaps.length > 0, 5000, 'a sees v7 or a gap');
   expect(ra.v === 7 || (ra.v === 5 && ra.gaps.length === 1), `a after its own PUBLISH and b's CALL: v${ra.v} gaps ${show(ra.gaps)}`);
   if (ra.gaps.length) await catchUp(a, ra, uri);
   expect(ra.v === 7, `after sync.get(since): v${ra.v}`);
   expectEqual('replica', ra.value, { title: 'Whole', n: 11 });
   await matchesGet(b, uri, ra);
};

// PUBLISH with exclude_me: false: the writer's own change event before PUBLISHED. wampy's
// publish() sends exclude_me only when it is true, so this cannot be expressed: SKIP
SCENARIOS.own_publish_echo = async (ctx) => {
   const a = await ctx.connect('a');
   const uri = ctx.uri();
   const ra = await follow(a, uri, 'a');
   await a.w.publish(uri, { value: { n: 1 } }, { exclude_me: false });
   if (ra.v === 1) return; // the echo came before PUBLISHED: this wampy sends the option
   await call(a, 'sync.patch', [uri, [{ op: 'x-inc', path: '/n', by: 1 }]]);
   expect(ra.v === 0 && ra.gaps.length === 1, `no echo of v1, then v2: expected a gap, got v${ra.v} ${show(ra.gaps)}`);
   throw new Skip('wampy.js publish() drops exclude_me: false (it sends exclude_me only when true: ' +
      '`...exclude_me ? { exclude_me } : {}` in dist/cjs/wampy.cjs), so a PUBLISH writer never gets its own ' +
      'change event; it fills the gap with sync.get(since) or writes by CALL (autobahn-js "ordering" covers ' +
      'the router side)');
};

// CALL sync.patch / sync.set / sync.merge; the caller's own change event before its result
SCENARIOS.write_call = async (ctx) => {
   const a = await ctx.connect('a');
   const b = await ctx.connect('b');
   const uri = ctx.uri();
   const ra = await follow(a, uri, 'a');
   expectEqual('sync.set', await call(b, 'sync.set', [uri, { title: 'T', items: [] }]), { v: 1, rebased: false });
   expectEqual('sync.patch', await call(b, 'sync.patch', [uri, [
      { op: 'add', path: '/items/-', value: 'a' }, { op: 'x-append-unique', path: '/items', value: 'b' },
   ]]), { v: 2, rebased: false });
   expectEqual('sync.merge', await call(b, 'sync.merge', [uri, { title: 'T2' }]), { v: 3, rebased: false });
   // by name: a plain object payload is kwargs only
   expectEqual('sync.patch by name', await call(b, 'sync.patch', { uri, ops: [{ op: 'x-inc', path: '/count', by: 5 }], cid: 'wampy-4' }),
      { v: 4, rebased: false });
   // positional plus by name
   expectEqual('sync.set with base', await call(b, 'sync.set', { argsList: [uri, { title: 'last', count: 5 }], argsDict: { base: 4 } }),
      { v: 5, rebased: false });
   // a write that changes nothing (only test ops) makes no version
   const same = await call(b, 'sync.patch', [uri, [{ op: 'test', path: '/title', value: 'last' }]]);
   expect(same.unchanged === true && same.v === 5, `a write that changes nothing: ${show(same)}`);
   await ra.waitFor(5);
   expect(ra.changes[3].cid === 'wampy-4', `v4 echoes the cid: ${show(ra.changes[3])}`);
   // the caller follows the record too: its event is handled before its RESULT
   for (let i = 0; i < 5; i++) {
      const res = await call(a, 'sync.patch', [uri, [{ op: 'x-inc', path: '/count', by: 1 }]]);
      expect(ra.v === res.v, `after the RESULT of v${res.v} a's replica is at v${ra.v}: the change event came later`);
   }
   expectEqual('replica', ra.value, { title: 'last', count: 10 });
   await expectError(call(b, 'sync.patch', [uri, [{ op: 'test', path: '/title', value: 'nope' }]]),
      'sync.error.test_failed', 'a failing test op');
   await matchesGet(b, uri, ra);
};

// a CALL with a stale base on a path changed since: sync.error.conflict {v, conflicts,
// patches}; the same by PUBLISH; rebase locally from the error and retry
SCENARIOS.conflict = async (ctx) => {
   const a = await ctx.connect('a');
   const b = await ctx.connect('b');
   const uri = ctx.uri();
   const ra = await follow(a, uri, 'a');
   await call(b, 'sync.set', [uri, { title: 't', body: 'b' }]);
   await ra.waitFor(1);
   const local = new Replica('a-local');
   local.snapshot({ v: ra.v, epoch: ra.epoch, value: ra.value });
   await call(b, 'sync.patch', [uri, [{ op: 'replace', path: '/title', value: 'B' }]]); // v2
   const err = await expectError(
      call(a, 'sync.patch', { argsList: [uri, [{ op: 'replace', path: '/title', value: 'A' }]], argsDict: { base: 1 } }),
      'sync.error.conflict', 'CALL with a stale base');
   const k = err.argsDict || {};
   expect(err.argsList[0] === `version conflict on ${uri}`, `message: ${show(err.argsList)}`);
   expect(k.v === 2 && k.base === 1 && k.epoch === ra.epoch, `conflict kwargs: ${show(k)}`);
   expectEqual('conflicts', k.conflicts, ['/title']);
   expectEqual('patches', (k.patches || []).map((p) => p.v), [2]);
   for (const p of k.patches) local.change(p);
   expectEqual('local after the missed patches', local.value, { title: 'B', body: 'b' });
   expectEqual('retry with base = kwargs.v', await call(a, 'sync.patch', {
      argsList: [uri, [{ op: 'replace', path: '/title', value: 'A' }]], argsDict: { base: k.v },
   }), { v: 3, rebased: false });
   const perr = await expectError(a.w.publish(uri, { base: 1, ops: [{ op: 'remove', path: '/title' }] }),
      'sync.error.conflict', 'PUBLISH with a stale base');
   expectEqual('PUBLISH conflict kwargs', [perr.argsDict.v, perr.argsDict.conflicts, perr.argsDict.patches.map((p) => p.v)],
      [3, ['/title'], [2, 3]]);
   await ra.waitFor(3);
   expectEqual('replica', ra.value, { title: 'A', body: 'b' });
   await matchesGet(b, uri, ra);
};

// stale base, disjoint paths: applied, {rebased: true}
SCENARIOS.rebase = async (ctx) => {
   const a = await ctx.connect('a');
   const b = await ctx.connect('b');
   const uri = ctx.uri();
   const ra = await follow(a, uri, 'a');
   await call(b, 'sync.set', [uri, { title: 't', body: 'b', items: [] }]); // v1
   await call(b, 'sync.patch', [uri, [{ op: 'replace', path: '/title', value: 'B' }]]); // v2
   expectEqual('stale disjoint CALL', await call(a, 'sync.patch', {
      argsList: [uri, [{ op: 'replace', path: '/body', value: 'A' }]], argsDict: { base: 1 },
   }), { v: 3, rebased: true });
   await b.w.publish(uri, { base: 1, ops: [{ op: 'add', path: '/items/-', value: 1 }] }); // v4, rebased
   await b.w.publish(uri, { base: 2, ops: [{ op: 'add', path: '/items/-', value: 2 }] }); // v5, rebased
   await ra.waitFor(5);
   expectEqual('replica', ra.value, { title: 'B', body: 'A', items: [1, 2] });
   await matchesGet(b, uri, ra);
};

// close, miss writes, reconnect: sync.get(since, epoch) -> patches; another epoch -> value
SCENARIOS.resync = async (ctx) => {
   const a1 = await ctx.connect('a1');
   const b = await ctx.connect('b');
   const uri = ctx.uri();
   const ra = await follow(a1, uri, 'a');
   await call(b, 'sync.set', [uri, { n: 0 }]);
   await ra.waitFor(1);
   await ctx.close(a1);
   for (let i = 0; i < 3; i++) await b.w.publish(uri, { ops: [{ op: 'x-inc', path: '/n', by: 1 }] });
   expect(ra.v === 1, `the closed session still got changes: v${ra.v}`);

   const a2 = await ctx.connect('a2');
   const buffered = [];
   let live = false;
   await a2.w.subscribe(uri, (ev) => {
      if (live) ra.receive(false, ev.argsList, ev.argsDict);
      else buffered.push(clone(ev.argsDict));
   }, PLAIN);
   await call(b, 'sync.patch', [uri, [{ op: 'x-inc', path: '/n', by: 10 }]]); // v5, buffered
   const got = await call(a2, 'sync.get', { argsList: [uri], argsDict: { since: ra.v, epoch: ra.epoch } });
   expect(Array.isArray(got.patches) && !('value' in got) && got.epoch === ra.epoch,
      `sync.get with since and the epoch: expected patches, got ${show(got)}`);
   expectEqual('missed versions', got.patches.map((p) => p.v), [2, 3, 4, 5]);
   ra.resync(got);
   for (const kw of buffered) ra.receive(false, [], kw);
   live = true;
   await b.w.publish(uri, { ops: [{ op: 'x-inc', path: '/n', by: 1 }] }); // v6, live
   await ra.waitFor(6);
   expectEqual('replica', ra.value, { n: 14 });
   await matchesGet(b, uri, ra);
   // by name only, another epoch: the full state
   const full = await call(a2, 'sync.get', { uri, since: 1, epoch: 'not-the-epoch' });
   expect(!('patches' in full) && full.v === 6 && deepEqual(full.value, { n: 14 }) && full.epoch === ra.epoch,
      `sync.get with another epoch: expected the full state, got ${show(full)}`);
   const stale = new Replica('stale-epoch');
   stale.snapshot({ v: 1, epoch: 'not-the-epoch', value: { n: 0 } });
   stale.resync(full);
   await matchesGet(b, uri, ra, stale);
};

// delete, re-create: the version line goes on
SCENARIOS.delete_recreate = async (ctx) => {
   const a = await ctx.connect('a');
   const b = await ctx.connect('b');
   const uri = ctx.uri();
   const ra = await follow(a, uri, 'a');
   expectEqual('sync.create', await call(b, 'sync.create', [uri, { x: 1 }]), { v: 1, rebased: false });
   await expectError(call(b, 'sync.create', [uri, { x: 2 }]), 'sync.error.exists', 'sync.create of an existing record');
   expectEqual('sync.delete', await call(b, 'sync.delete', uri), { v: 2, rebased: false });
   await ra.waitFor(2);
   expect(ra.deleted && ra.value === null, `v2 is a tombstone: ${show(ra.changes[1])}`);
   expectEqual('sync.head', await call(b, 'sync.head', uri), { v: 2, epoch: ra.epoch, exists: false, deleted: true });
   // a new follower of the tombstone
   const c = await ctx.connect('c');
   const rc = await follow(c, uri, 'c');
   expect(rc.first.v === 2 && rc.first.deleted === true, `sync.get of a tombstone: ${show(rc.first)}`);
   expectEqual('sync.create again', await call(b, 'sync.create', [uri, { x: 3 }]), { v: 3, rebased: false });
   await b.w.publish(uri, { delete: true }); // v4
   await b.w.publish(uri, { ops: [{ op: 'add', path: '/y', value: 1 }] }); // v5: re-created, as a value
   await Promise.all([ra.waitFor(5), rc.waitFor(5)]);
   expect(ra.changes[3].deleted === true && deepEqual(ra.changes[4].value, { y: 1 }), `v4/v5: ${show(ra.changes.slice(3))}`);
   expectEqual('a log', ra.log, ['snapshot@0', 'change@1', 'change@2', 'change@3', 'change@4', 'change@5']);
   expectEqual('c log', rc.log, ['snapshot@2', 'change@3', 'change@4', 'change@5']);
   await matchesGet(b, uri, ra, rc);
};

async function runScenario(opts, name) {
   const ctx = new Ctx(opts, name);
   const started = Date.now();
   let result = 'PASS';
   let detail = '';
   try {
      await withTimeout(SCENARIOS[name](ctx), opts.timeout * 1000, `scenario ${name}`);
   } catch (e) {
      result = e instanceof Skip ? 'SKIP' : 'FAIL';
      detail = e instanceof Check || e instanceof Skip ? e.message : `unexpected: ${describeError(e)}`;
   }
   await ctx.closeAll();
   const line = {
      client: CLIENT, serializer: opts.serializer, scenario: name, result, detail, notes: ctx.notes,
      ms: Date.now() - started,
   };
   process.stdout.write(`${JSON.stringify(line)}\n`);
   return result;
}

runMain('wampy-datasync', SCENARIOS, runScenario);
