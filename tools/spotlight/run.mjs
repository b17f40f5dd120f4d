#!/usr/bin/env node
// Spotlight, Sentry's local receiver and viewer of error reports, as `./vigil up` and the
// integration tests start it:
//
//   node tools/spotlight/run.mjs PORT
//
// On 127.0.0.1:PORT it takes Sentry envelopes at /api/<project>/envelope/ (the DSN
// http://spotlight@127.0.0.1:PORT/0), keeps the last 500, streams them as JSON to readers
// of /stream (Server-Sent Events) and serves its UI at /; GET /health answers once it
// listens. It ends at once with status 1 when the port is in use (a Spotlight already
// there included) and when Node.js is older than 20, which this Spotlight needs.
//
// It starts the package's server through its API rather than with its `spotlight`
// command, which listens on every interface (its /contextlines endpoint reads local files
// for whoever asks) and, like its UI, reports its own use and errors to Sentry's service.
// Here the server listens on loopback only, nothing in this process reports anywhere, and
// the UI's Content-Security-Policy no longer lets the browser reach sentry.io.
import { readFileSync } from 'node:fs';
import net from 'node:net';

function fail(message) {
  console.error(`spotlight: ${message}`);
  process.exit(1);
}

const port = Number(process.argv[2]);
if (process.argv.length !== 3 || !Number.isInteger(port) || port < 1 || port > 65535) {
  console.error('usage: node run.mjs PORT');
  process.exit(2);
}
if (Number(process.versions.node.split('.')[0]) < 20) {
  fail(`Spotlight needs Node.js 20 or later, this is ${process.version} (see docs/operations.md)`);
}

// The UI: its page and every file of its build manifest (scripts, styles, fonts).
const uiDir = new URL('node_modules/@spotlightjs/spotlight/dist/ui/', import.meta.url);
const read = (name) => readFileSync(new URL(name, uiDir));
const filesToServe = {};
for (const entry of Object.values(JSON.parse(read('manifest.json')))) {
  for (const file of [entry.file, ...(entry.css ?? [])]) filesToServe[file] = read(file);
}
const sentryOrigin = ' https://*.sentry.io';
const page = read('index.html').toString();
if (!page.includes(`connect-src 'self'`) || !page.includes(sentryOrigin)) {
  fail(`the UI's Content-Security-Policy is not the one run.mjs knows: review run.mjs`);
}
filesToServe['index.html'] = Buffer.from(page.replace(sentryOrigin, ''));

// The server's one listen(port, host, callback): on loopback, and a port in use is final
// (the server would retry it for 15 s).
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function listenOnLoopback(first, ...rest) {
  if (typeof first !== 'number') return listen.call(this, first, ...rest);
  this.once('error', (error) => {
    if (error.code === 'EADDRINUSE') fail(`127.0.0.1:${first} is in use`);
  });
  const onListening = rest.find((arg) => typeof arg === 'function');
  return listen.call(this, { port: first, host: '127.0.0.1' }, onListening);
};

const { setupSpotlight } = await import('@spotlightjs/spotlight');
const options = { port, basePath: process.cwd(), filesToServe, isStandalone: true };
const server = await setupSpotlight(options);
if (!server) fail(`a Spotlight already listens on port ${port}`);
