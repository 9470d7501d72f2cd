// gRPC over TLS with a stack nobody here wrote: @grpc/grpc-js's credentials.createSsl on Triton's
// unmodified protos, driven by tests/e2e/test_tls.py. Calls ServerReady, then ModelInfer on the
// example model mlp (16 FP32 features of 0.5), and prints one JSON object:
//   {"ready": {"code", "details", "response"}, "infer": {"code", "details", "scores": [8 floats] | null}}
//
// usage: NODE_PATH=<folder with node_modules> node tls_client.js HOST:PORT PROTO_DIR CA|- [KEY CERT]
//   CA "-": a plaintext (insecure) channel, to see a TLS port refuse it
'use strict';
const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');

const [target, protoDir, ca, key, cert] = process.argv.slice(2);
const options = {keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [protoDir]};
const pkg = grpc.loadPackageDefinition(loader.loadSync(path.join(protoDir, 'grpc_service.proto'), options));
const creds = ca === '-' ? grpc.credentials.createInsecure()
  : grpc.credentials.createSsl(fs.readFileSync(ca), key ? fs.readFileSync(key) : null,
                               cert ? fs.readFileSync(cert) : null);
const client = new pkg.inference.GRPCInferenceService(target, creds);
const deadline = () => ({deadline: new Date(Date.now() + 10000)});

function unary(method, request) {
  return new Promise((resolve) => {
    client[method](request, deadline(), (err, response) => {
      resolve(err ? {code: err.code, details: err.details, response: null} : {code: 0, details: '', response});
    });
  });
}

(async () => {
  const ready = await unary('ServerReady', {});
  const features = Buffer.from(new Float32Array(16).fill(0.5).buffer);
  const r = await unary('ModelInfer', {model_name: 'mlp', inputs: [{name: 'features', datatype: 'FP32', shape: [1, 16]}],
                                       raw_input_contents: [features]});
  const infer = {code: r.code, details: r.details, scores: null};
  if (r.response) {
    const b = r.response.raw_output_contents[0];
    infer.scores = Array.from(new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)));
  }
  process.stdout.write(JSON.stringify({ready, infer}) + '\n');
  client.close();
})();
