// Runs ONNX Runtime (onnxruntime-node, CPU) on generated conformance cases and writes what it
// computes, for tests/conformance/opset/gen.py. Not run by the tests: only to regenerate the
// expected outputs checked in under tests/data/onnx-opset.
//
// usage: NODE_PATH=<folder with node_modules> node ort_outputs.js CASE_DIR...
//   reads CASE_DIR/model.onnx and CASE_DIR/inputs.json ([{name, type, dims, data: base64}]),
//   writes CASE_DIR/outputs.json (the same form, one entry per graph output, in order), or
//   CASE_DIR/error.txt when ONNX Runtime refuses the model or the run.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

const ARRAYS = {
  float32: Float32Array, float64: Float64Array, int8: Int8Array, uint8: Uint8Array, int16: Int16Array,
  uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array,
  bool: Uint8Array, float16: Uint16Array,
};

function toTensor(t) {
  const buf = Buffer.from(t.data, 'base64');
  if (t.type === 'string') return new ort.Tensor('string', JSON.parse(buf.toString('utf8')), t.dims);
  const A = ARRAYS[t.type];
  const copy = new Uint8Array(buf.length);
  copy.set(buf);
  return new ort.Tensor(t.type, new A(copy.buffer, 0, buf.length / A.BYTES_PER_ELEMENT), t.dims);
}

function fromTensor(name, t) {
  let data;
  if (t.type === 'string') data = Buffer.from(JSON.stringify(t.data), 'utf8');
  else data = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return {name, type: t.type, dims: t.dims.map(Number), data: data.toString('base64')};
}

async function runCase(dir) {
  const inputs = JSON.parse(fs.readFileSync(path.join(dir, 'inputs.json'), 'utf8'));
  try {
    const session = await ort.InferenceSession.create(path.join(dir, 'model.onnx'),
                                                      {graphOptimizationLevel: 'disabled', intraOpNumThreads: 1});
    const feeds = {};
    for (const t of inputs) feeds[t.name] = toTensor(t);
    const out = await session.run(feeds);
    const list = session.outputNames.map((n) => fromTensor(n, out[n]));
    fs.writeFileSync(path.join(dir, 'outputs.json'), JSON.stringify(list));
  } catch (e) {
    fs.writeFileSync(path.join(dir, 'error.txt'), String(e && e.message || e));
  }
}

(async () => {
  for (const dir of process.argv.slice(2)) await runCase(dir);
})();
