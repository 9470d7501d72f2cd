// A gRPC client nobody here wrote (@grpc/grpc-js with @grpc/proto-loader), on Triton's unmodified
// protos, driven by tests/e2e/test_grpc.py: it reads a JSON list of calls on stdin and prints one
// JSON list of their outcomes on stdout.
//
// usage: NODE_PATH=<folder with node_modules> node client.js HOST:PORT PROTO_DIR < calls.json
//   a call:    {"service": "inference" | "health", "method": "ServerLive", "request": {...},
//               "deadline_ms": 5 (optional), "cancel_after_ms": 5 (optional)}
//   an outcome: {"code": 0, "details": "...", "response": {...} | null}
// a streaming call (ModelStreamInfer): {"service": "inference", "method": "ModelStreamInfer",
//   "stream": [request, ...], "deadline_ms": .., "cancel_after": N (cancel once N responses came),
//   "write_after_each": true (write a request only after the previous one's response),
//   "write_delay_ms": N (with write_after_each: wait N ms before writing each next one)} ->
//   {"code": 0, "details": "...", "responses": [...]}
// or a raw HTTP/2 request, through Node's own http2 (for what grpc-js would never send):
//   {"raw": true, "path": "/...", "headers": {...}, "body_hex": "00000000.."} ->
//   {"status": 200, "headers": {...}, "trailers": {...}, "data_hex": "...", "error": "..."}
'use strict';
const http2 = require('http2');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');

const [target, protoDir] = process.argv.slice(2);
const options = {keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [protoDir]};
const inference = grpc.loadPackageDefinition(loader.loadSync(path.join(protoDir, 'grpc_service.proto'), options));
const health = grpc.loadPackageDefinition(loader.loadSync(path.join(protoDir, 'health.proto'), options));
const channel = {'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1};
const clients = {
  inference: new inference.inference.GRPCInferenceService(target, grpc.credentials.createInsecure(), channel),
  health: new health.grpc.health.v1.Health(target, grpc.credentials.createInsecure(), channel),
};

function raw(call) {
  return new Promise((resolve) => {
    const session = http2.connect('http://' + target);
    const out = {status: 0, headers: {}, trailers: {}, data_hex: '', error: ''};
    const chunks = [];
    const finish = () => {
      out.data_hex = Buffer.concat(chunks).toString('hex');
      session.close();
      resolve(out);
    };
    session.on('error', (e) => { out.error = String(e); });
    const req = session.request(Object.assign({':method': 'POST', ':path': call.path}, call.headers || {}));
    req.on('response', (h) => { out.status = h[':status']; Object.assign(out.headers, h); });
    req.on('trailers', (t) => { Object.assign(out.trailers, t); });
    req.on('data', (d) => chunks.push(d));
    req.on('error', (e) => { out.error = String(e); });
    req.on('close', finish);
    req.end(Buffer.from(call.body_hex || '', 'hex'));
  });
}

function stream(call) {
  return new Promise((resolve) => {
    const opts = call.deadline_ms !== undefined ? {deadline: new Date(Date.now() + call.deadline_ms)} : {};
    const c = clients[call.service][call.method](opts);
    const responses = [];
    let next = 0;
    const writeNext = () => {
      if (next < call.stream.length) c.write(call.stream[next++]);
      if (next === call.stream.length) { next++; c.end(); }
    };
    c.on('data', (r) => {
      responses.push(r);
      if (call.cancel_after !== undefined && responses.length === call.cancel_after) c.cancel();
      if (call.write_after_each) setTimeout(writeNext, call.write_delay_ms || 0);
    });
    c.on('error', () => {}); // the status below says it
    c.on('status', (st) => resolve({code: st.code, details: st.details, responses}));
    if (call.write_after_each) writeNext();
    else while (next <= call.stream.length) writeNext();
  });
}

function run(call) {
  if (call.raw) return raw(call);
  if (call.stream) return stream(call);
  return new Promise((resolve) => {
    const client = clients[call.service];
    const opts = call.deadline_ms !== undefined ? {deadline: new Date(Date.now() + call.deadline_ms)} : {};
    const c = client[call.method](call.request || {}, opts, (err, response) => {
      if (err) resolve({code: err.code, details: err.details, response: null});
      else resolve({code: 0, details: '', response});
    });
    if (call.cancel_after_ms !== undefined) setTimeout(() => c.cancel(), call.cancel_after_ms);
  });
}

async function main() {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const out = [];
  for (const call of JSON.parse(input)) out.push(await run(call));
  process.stdout.write(JSON.stringify(out) + '\n');
  for (const c of Object.values(clients)) c.close();
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(2);
});
