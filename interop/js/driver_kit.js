'use strict';
// What the data-sync drivers (js/datasync.js for autobahn-js, wampy/datasync.js for
// wampy.js) share: the command line, logging, checks and the scenario loop. No
// dependencies beyond sync_replica.js.

const { canonical, deepEqual } = require('./sync_replica.js');

const SERIALIZER_NAMES = ['json', 'msgpack', 'cbor'];

function show(v, max = 400) {
   let s;
   try {
      s = JSON.stringify(v);
   } catch (e) {
      s = String(v);
   }
   if (s === undefined) s = String(v);
   return s.length > max ? `${s.slice(0, max)}...` : s;
}

function makeLog(prefix) {
   return (...parts) => process.stderr.write(`${prefix}: ${parts.join(' ')}\n`);
}

function usage(prefix, problem) {
   const text = 'usage: node datasync.js --url ws://HOST:PORT/PATH [--serializer json|msgpack|cbor]\n' +
      '       [--scenarios NAME,...] [--timeout SECONDS] [--tag TAG] [--list]\n';
   if (problem) {
      process.stderr.write(`${prefix}: ${problem}\n${text}`);
      process.exit(2);
   }
   process.stdout.write(text);
   process.exit(0);
}

function parseArgs(argv, prefix) {
   const fail = (problem) => usage(prefix, problem);
   const opts = { url: null, serializer: 'json', scenarios: null, timeout: 15, tag: null, list: false };
   for (let i = 0; i < argv.length; i++) {
      const a = argv[i];
      const val = () => {
         if (i + 1 >= argv.length) fail(`${a} needs a value`);
         return argv[++i];
      };
      switch (a) {
         case '--url': opts.url = val(); break;
         case '--serializer': opts.serializer = val(); break;
         case '--scenarios': opts.scenarios = val().split(',').filter(Boolean); break;
         case '--timeout': opts.timeout = Number(val()); break;
         case '--tag': opts.tag = val(); break;
         case '--list': opts.list = true; break;
         case '-h': case '--help': fail(null); break;
         default: fail(`unknown argument ${a}`);
      }
   }
   if (!SERIALIZER_NAMES.includes(opts.serializer)) fail(`unknown serializer ${opts.serializer}`);
   if (!opts.list && !opts.url) fail('--url is required');
   if (!(opts.timeout > 0)) fail('--timeout must be a positive number of seconds');
   if (opts.tag !== null && !/^[a-z0-9_]+$/.test(opts.tag)) fail('--tag: lower-case letters, digits and _ only');
   if (!opts.tag) opts.tag = `t${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
   return opts;
}

function withTimeout(promise, ms, what) {
   let timer;
   const t = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
   });
   return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

class Check extends Error {}

function expect(cond, message) {
   if (!cond) throw new Check(message);
}

function expectEqual(what, actual, expected) {
   if (!deepEqual(actual, expected)) {
      throw new Check(`${what}: expected ${canonical(expected)}, got ${canonical(actual)}`);
   }
}

// Run the scenarios the command line names (or list them); runScenario(opts, name)
// prints one JSON line and returns 'PASS', 'FAIL' or 'SKIP'. Exits 1 on any FAIL.
function runMain(prefix, scenarios, runScenario) {
   const log = makeLog(prefix);
   const main = async () => {
      const opts = parseArgs(process.argv.slice(2), prefix);
      if (opts.list) {
         process.stdout.write(`${Object.keys(scenarios).join('\n')}\n`);
         return 0;
      }
      const names = opts.scenarios || Object.keys(scenarios);
      for (const n of names) if (!scenarios[n]) usage(prefix, `unknown scenario ${n}`);
      let failed = false;
      for (const n of names) {
         if (await runScenario(opts, n) === 'FAIL') failed = true;
      }
      return failed ? 1 : 0;
   };
   main().then((code) => process.exit(code), (e) => {
      log('crashed:', e && (e.stack || show(e)));
      process.exit(1);
   });
}

module.exports = { Check, expect, expectEqual, makeLog, runMain, show, withTimeout };
