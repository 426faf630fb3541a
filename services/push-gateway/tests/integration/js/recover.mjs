// Drives the official centrifuge JS SDK under Node for the gateway tests.
// Prints one JSON event per line; reads "disconnect" / "connect" / "exit" lines on stdin.
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';
import readline from 'node:readline';

const [url, userToken, channel, grant] = process.argv.slice(2);
const out = (event) => process.stdout.write(JSON.stringify(event) + '\n');

const client = new Centrifuge(url, { websocket: WebSocket, token: userToken, minReconnectDelay: 100 });
client.on('connected', (ctx) => out({ event: 'connected', client: ctx.client }));
client.on('disconnected', (ctx) => out({ event: 'disconnected', code: ctx.code }));
const sub = client.newSubscription(channel, { token: grant });
sub.on('subscribed', (ctx) => out({ event: 'subscribed', recovered: ctx.recovered, wasRecovering: ctx.wasRecovering,
  offset: ctx.streamPosition ? ctx.streamPosition.offset : null }));
sub.on('publication', (ctx) => out({ event: 'pub', offset: ctx.offset, data: ctx.data }));
sub.on('error', (ctx) => out({ event: 'sub_error', error: ctx.error }));
sub.subscribe();
client.connect();

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'disconnect') client.disconnect();
  if (line === 'connect') client.connect();
  if (line === 'exit') { client.disconnect(); process.exit(0); }
});
