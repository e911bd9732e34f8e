// A data-sync record replica for the interop drivers (datasync.js here, and
// ../wampy/datasync.js): an RFC 6902 applier of its own and the client rules of the
// README ("Data-sync", "What arrives on a record topic"). No dependencies.
//
// The router sends plain RFC 6902 ops (add, remove, replace, move, copy; concrete paths,
// no "-", no test); this applier is strict (a path that does not exist is an error), so a
// replica that diverges from the router fails loudly instead of drifting.

'use strict';

function clone(v) {
   return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
}

// JSON text with sorted keys: equal JSON values give equal strings
function canonical(v) {
   if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
   if (v !== null && typeof v === 'object') {
      return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
   }
   return JSON.stringify(v === undefined ? null : v);
}

function deepEqual(a, b) {
   return canonical(a) === canonical(b);
}

class PatchError extends Error {}

function tokens(pointer) {
   if (typeof pointer !== 'string') throw new PatchError(`path is not a string: ${JSON.stringify(pointer)}`);
   if (pointer === '') return [];
   if (pointer[0] !== '/') throw new PatchError(`path does not start with "/": ${pointer}`);
   return pointer.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

const INDEX = /^(0|[1-9][0-9]*)$/;

function isContainer(v) {
   return v !== null && typeof v === 'object';
}

function has(node, key) {
   if (Array.isArray(node)) return INDEX.test(key) && Number(key) < node.length;
   return isContainer(node) && Object.prototype.hasOwnProperty.call(node, key);
}

function walk(doc, toks, pointer) {
   let node = doc;
   for (const t of toks) {
      if (!has(node, t)) throw new PatchError(`path ${pointer} does not exist`);
      node = node[t];
   }
   return node;
}

// RFC 6902 on a copy of doc; returns the new document
function applyPatch(doc, ops) {
   if (!Array.isArray(ops)) throw new PatchError(`ops is not a list: ${JSON.stringify(ops)}`);
   let root = clone(doc);
   const get = (pointer) => walk(root, tokens(pointer), pointer);
   const parentOf = (pointer) => {
      const toks = tokens(pointer);
      if (toks.length === 0) return null;
      const last = toks.pop();
      const parent = walk(root, toks, pointer);
      if (!isContainer(parent)) throw new PatchError(`parent of ${pointer} is not a container`);
      return { parent, last };
   };
   const add = (pointer, value) => {
      const p = parentOf(pointer);
      if (!p) { root = value; return; }
      if (Array.isArray(p.parent)) {
         if (p.last === '-') { p.parent.push(value); return; }
         if (!INDEX.test(p.last) || Number(p.last) > p.parent.length) {
            throw new PatchError(`bad array index in ${pointer}`);
         }
         p.parent.splice(Number(p.last), 0, value);
      } else {
         p.parent[p.last] = value;
      }
   };
   const remove = (pointer) => {
      const p = parentOf(pointer);
      if (!p) throw new PatchError('cannot remove the root');
      if (!has(p.parent, p.last)) throw new PatchError(`path ${pointer} does not exist`);
      if (Array.isArray(p.parent)) p.parent.splice(Number(p.last), 1);
      else delete p.parent[p.last];
   };
   const replace = (pointer, value) => {
      const p = parentOf(pointer);
      if (!p) { root = value; return; }
      if (!has(p.parent, p.last)) throw new PatchError(`path ${pointer} does not exist`);
      p.parent[Array.isArray(p.parent) ? Number(p.last) : p.last] = value;
   };
   ops.forEach((op, i) => {
      try {
         switch (op.op) {
            case 'add': add(op.path, clone(op.value)); break;
            case 'remove': remove(op.path); break;
            case 'replace': replace(op.path, clone(op.value)); break;
            case 'copy': add(op.path, clone(get(op.from))); break;
            case 'move': {
               if (op.path !== op.from && op.path.startsWith(`${op.from}/`)) {
                  throw new PatchError(`move of ${op.from} into itself`);
               }
               const v = get(op.from);
               remove(op.from);
               add(op.path, v);
               break;
            }
            case 'test':
               if (!deepEqual(get(op.path), op.value)) throw new PatchError(`test failed at ${op.path}`);
               break;
            default: throw new PatchError(`unknown op ${JSON.stringify(op.op)}`);
         }
      } catch (e) {
         if (e instanceof PatchError) throw new PatchError(`op ${i} ${JSON.stringify(op)}: ${e.message}`);
         throw e;
      }
   });
   return root;
}

// The state of one record as a client holds it, following the client rules: a snapshot
// with another epoch replaces the state; a snapshot or change with v not above the local
// one is a duplicate; v = local + 1 applies; a larger v is a gap (recorded in .gaps: the
// scenarios expect none).
class Replica {
   constructor(name) {
      this.name = name || 'replica';
      this.v = -1;
      this.epoch = null;
      this.value = null;
      this.deleted = false;
      this.log = []; // "snapshot@v" | "change@v" | "dup@v", as received
      this.changes = []; // the change bodies applied, in order
      this.gaps = [];
      this.errors = []; // what went wrong inside event handlers (a client library swallows it)
      this._waiters = [];
   }

   // one EVENT on the record topic: the retained snapshot or a change (data in kwargs only)
   receive(retained, args, kwargs) {
      try {
         if (args !== undefined && args !== null && (!Array.isArray(args) || args.length !== 0)) {
            throw new Error(`${this.name}: event args are not empty: ${JSON.stringify(args)}`);
         }
         if (kwargs === null || typeof kwargs !== 'object') {
            throw new Error(`${this.name}: event without kwargs: ${JSON.stringify(kwargs)}`);
         }
         if (retained) this.snapshot(kwargs);
         else this.change(kwargs);
      } catch (e) {
         this.errors.push(e.message);
      }
   }

   snapshot(s) {
      if (typeof s.v !== 'number') throw new Error(`${this.name}: snapshot without v: ${JSON.stringify(s)}`);
      if (s.epoch !== this.epoch || s.v > this.v) {
         this.log.push(`snapshot@${s.v}`);
         this.v = s.v;
         this.epoch = s.epoch;
         this.value = s.value === undefined ? null : clone(s.value);
         this.deleted = !!s.deleted;
      } else {
         this.log.push(`dup@${s.v}`);
      }
      this._notify();
   }

   change(p) {
      if (typeof p.v !== 'number') throw new Error(`${this.name}: change without v: ${JSON.stringify(p)}`);
      if (p.v <= this.v) {
         this.log.push(`dup@${p.v}`);
         return;
      }
      if (p.v !== this.v + 1) {
         this.gaps.push(`at v${this.v}, got v${p.v}`);
         this.log.push(`gap@${p.v}`);
         return;
      }
      const kinds = ['ops', 'value', 'deleted'].filter((k) => k in p);
      if (kinds.length !== 1) {
         throw new Error(`${this.name}: change v${p.v} has ${kinds.join('+') || 'none'} of ops/value/deleted: ${JSON.stringify(p)}`);
      }
      if (p.deleted) {
         if (p.deleted !== true) throw new Error(`${this.name}: deleted is not true: ${JSON.stringify(p)}`);
         this.value = null;
         this.deleted = true;
      } else if ('ops' in p) {
         for (const op of p.ops) {
            if (!['add', 'remove', 'replace', 'move', 'copy'].includes(op.op)) {
               throw new Error(`${this.name}: change v${p.v} carries a non-plain op ${JSON.stringify(op)}`);
            }
            if (op.path.split('/').includes('-')) {
               throw new Error(`${this.name}: change v${p.v} carries a "-" path ${JSON.stringify(op)}`);
            }
         }
         this.value = applyPatch(this.value, p.ops);
         this.deleted = false;
      } else {
         this.value = clone(p.value);
         this.deleted = false;
      }
      this.v = p.v;
      this.changes.push(p);
      this.log.push(`change@${p.v}`);
      this._notify();
   }

   // a sync.get result: {v, epoch, patches} (a delta) or {v, epoch, value} (the state)
   resync(got) {
      if (Array.isArray(got.patches)) {
         for (const p of got.patches) this.change(p);
      } else {
         this.snapshot(got);
      }
   }

   waitFor(v, timeoutMs = 5000) {
      if (this.v >= v) return Promise.resolve();
      return new Promise((resolve, reject) => {
         const w = {
            v,
            resolve,
            timer: setTimeout(() => {
               this._waiters = this._waiters.filter((x) => x !== w);
               reject(new Error(`${this.name}: still at v${this.v} after ${timeoutMs} ms, waiting for v${v}` +
                  ` (log ${this.log.join(' ')})`));
            }, timeoutMs),
         };
         this._waiters.push(w);
      });
   }

   _notify() {
      for (const w of this._waiters.slice()) {
         if (this.v >= w.v) {
            clearTimeout(w.timer);
            this._waiters = this._waiters.filter((x) => x !== w);
            w.resolve();
         }
      }
   }

   // throws unless this replica holds exactly what sync.get returned
   assertMatches(got, what) {
      const problems = [];
      if (got.v !== this.v) problems.push(`v ${this.v} != ${got.v}`);
      if (got.epoch !== this.epoch) problems.push(`epoch ${this.epoch} != ${got.epoch}`);
      if (!deepEqual(got.value === undefined ? null : got.value, this.value)) {
         problems.push(`value ${canonical(this.value)} != ${canonical(got.value)}`);
      }
      if (!!got.deleted !== this.deleted) problems.push(`deleted ${this.deleted} != ${!!got.deleted}`);
      if (this.gaps.length) problems.push(`gaps: ${this.gaps.join(', ')}`);
      if (this.errors.length) problems.push(`errors in the event handler: ${this.errors.join('; ')}`);
      if (problems.length) {
         throw new Error(`${this.name} differs from ${what || 'sync.get'}: ${problems.join('; ')}`);
      }
   }
}

module.exports = { applyPatch, PatchError, Replica, canonical, deepEqual, clone };
