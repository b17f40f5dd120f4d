#!/usr/bin/env node
// Decodes OTLP/HTTP protobuf trace bodies with OpenTelemetry's own generated decoder
// (@opentelemetry/otlp-transformer) and prints each as one JSON line in the OTLP/JSON
// shape: lowerCamelCase names, ids as lowercase hex, 64-bit integers as decimal strings,
// enums as integers, default values omitted.
//
//   node decode.js body.bin [more.bin ...]
//   -> {"request": {...}, "reencodedEqual": true}
//
// "reencodedEqual" says whether encoding the decoded message again gives back exactly the
// input bytes: true for an encoder that writes fields in field-number order and omits
// defaults, as Vigil's does. A body that does not decode exits with status 1.
'use strict';

const fs = require('fs');
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root');

const Request = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
const ID_FIELDS = new Set(['traceId', 'spanId', 'parentSpanId']);

// toObject() gives bytes as base64; OTLP/JSON writes trace and span ids as hex.
function idsToHex(value, key) {
  if (Array.isArray(value)) return value.map((v) => idsToHex(v, undefined));
  if (value !== null && typeof value === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = idsToHex(v, k);
    return out;
  }
  if (ID_FIELDS.has(key) && typeof value === 'string') {
    return Buffer.from(value, 'base64').toString('hex');
  }
  if (typeof value === 'number' && !Number.isFinite(value)) {
    return Number.isNaN(value) ? 'NaN' : value > 0 ? 'Infinity' : '-Infinity';
  }
  return value;
}

let failed = false;
for (const path of process.argv.slice(2)) {
  try {
    const input = fs.readFileSync(path);
    const message = Request.decode(input);
    const problem = Request.verify(message);
    if (problem) throw new Error(`verify: ${problem}`);
    const object = Request.toObject(message, {
      longs: String,
      enums: Number,
      bytes: String,
      defaults: false,
      arrays: false,
    });
    const reencoded = Buffer.from(Request.encode(message).finish());
    process.stdout.write(
      JSON.stringify({ request: idsToHex(object, undefined), reencodedEqual: reencoded.equals(input) }) +
        '\n',
    );
  } catch (e) {
    process.stderr.write(`${path}: ${e.message}\n`);
    failed = true;
  }
}
// exitCode, not exit(): exit() would cut off output still queued for a pipe (>64 KiB).
process.exitCode = failed ? 1 : 0;
