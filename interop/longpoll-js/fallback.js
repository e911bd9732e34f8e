// autobahn-js configured with [websocket, longpoll] where no WebSocket is
// available (as in an environment that blocks it): autobahn-js falls back to
// long-poll, which must work the same: join, subscribe, publish, register, call,
// also with a WebSocket peer on the same router port.
// (autobahn-js falls back when it cannot create a WebSocket transport; when the
// server refuses the upgrade it retries the WebSocket instead.)
// usage: node fallback.js HOST:PORT
'use strict';
const Module = require('module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request === 'ws') throw new Error('WebSocket blocked in this environment');
  return resolve.call(this, request, ...rest);
};
global.XMLHttpRequest = require('xhr2'); // autobahn-js long-poll uses XMLHttpRequest
const autobahn = require('autobahn');

const hostport = process.argv[2];
const deadline = setTimeout(() => { console.log('FAIL timeout'); process.exit(1); }, 20000);

const connection = new autobahn.Connection({
  realm: 'realm1',
  transports: [
    {type: 'websocket', url: `ws://${hostport}/ws`},
    {type: 'longpoll', url: `http://${hostport}/lp`},
  ],
  max_retries: 0,
});

connection.onopen = async (session, details) => {
  try {
    const transport = connection.transport.info.type;
    if (transport !== 'longpoll') throw new Error(`expected longpoll, got ${transport}`);
    const got = new Promise((resolve) => {
      session.subscribe('com.example.lp', (args) => resolve(args[0]));
    });
    await new Promise((r) => setTimeout(r, 200));
    await session.register('com.example.lp.add', (args) => args[0] + args[1]);
    const sum = await session.call('com.example.lp.add', [20, 22]);
    if (sum !== 42) throw new Error(`call returned ${sum}`);
    const other = await session.call('com.example.peer.echo', ['via longpoll']);
    if (other !== 'via longpoll') throw new Error(`peer echo returned ${other}`);
    await session.publish('com.example.lp', ['hello'], {}, {exclude_me: false, acknowledge: true});
    const event = await got;
    if (event !== 'hello') throw new Error(`event ${event}`);
    console.log(`PASS transport=${transport} session=${session.id}`);
    clearTimeout(deadline);
    connection.close();
    process.exit(0);
  } catch (err) {
    console.log(`FAIL ${err && err.stack || err}`);
    process.exit(1);
  }
};
connection.onclose = (reason, details) => {
  if (reason !== 'closed') {
    console.log(`FAIL connection ${reason} ${JSON.stringify(details)}`);
    process.exit(1);
  }
};
connection.open();
