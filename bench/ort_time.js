#!/usr/bin/env node
// ONNX Runtime's side of bench/engine_vs_ort.sh: times one model in this (fresh) process, or runs it
// once and saves its outputs. Needs onnxruntime-node on NODE_PATH (the script installs it in bench/ort/).
//
//   ort_time.js MODEL.onnx --input NAME=FILE.npy [...] [--threads N] [--iterations K] [--warmup W]
//   ort_time.js MODEL.onnx --input NAME=FILE.npy [...] [--threads N] --output-dir DIR
//
// The session is created as a user tuned for latency would: intraOpNumThreads N, one inter-op
// thread, every graph optimization, sequential execution. Timing mode runs W warm-up and K timed
// `await session.run(feeds)` calls on the same feeds and prints one JSON line: load_ms (session
// creation), median/p90/min/mean of the per-call times in ms, times_ms (every call), and
// peak_rss_mb (process.resourceUsage().maxRSS: the whole node process, its own ~40 MB included).
// Output mode writes DIR/<output name>.npy for every output (celer run's layout). Inputs are .npy
// files (little-endian, C order; float32/64, int8/32/64, uint8, bool).
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

function fail(msg) {
  process.stderr.write(`ort_time.js: ${msg}\n`);
  process.exit(1);
}

// .npy descr <-> ONNX Runtime tensor type and typed array
const DTYPES = [
  { descr: '<f4', type: 'float32', array: Float32Array },
  { descr: '<f8', type: 'float64', array: Float64Array },
  { descr: '<i8', type: 'int64', array: BigInt64Array },
  { descr: '<i4', type: 'int32', array: Int32Array },
  { descr: '|i1', type: 'int8', array: Int8Array },
  { descr: '|u1', type: 'uint8', array: Uint8Array },
  { descr: '|b1', type: 'bool', array: Uint8Array },
];

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') fail(`${file}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const header = buf.toString('latin1', major === 1 ? 10 : 12, start);
  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !shape) fail(`${file}: unreadable header ${header.trim()}`);
  if (/'fortran_order':\s*True/.test(header)) fail(`${file}: Fortran order is not supported; save it in C order`);
  const dt = DTYPES.find((d) => d.descr === descr[1]);
  if (!dt) fail(`${file}: dtype ${descr[1]} is not supported (have: ${DTYPES.map((d) => d.descr).join(', ')})`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const bytes = count * dt.array.BYTES_PER_ELEMENT;
  if (buf.length - start !== bytes) fail(`${file}: ${buf.length - start} data bytes for shape (${dims}), expected ${bytes}`);
  // a copy: the typed array needs its own aligned buffer
  const data = new dt.array(buf.buffer.slice(buf.byteOffset + start, buf.byteOffset + start + bytes));
  return new ort.Tensor(dt.type, dt.type === 'bool' ? Uint8Array.from(data) : data, dims);
}

function writeNpy(file, tensor) {
  const dt = DTYPES.find((d) => d.type === tensor.type);
  if (!dt) fail(`output of type ${tensor.type} cannot be saved as .npy here`);
  const shape = tensor.dims.length === 1 ? `(${tensor.dims[0]},)` : `(${tensor.dims.join(', ')})`;
  let header = `{'descr': '${dt.descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n'; // data 64-byte aligned, as numpy does
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const data = tensor.data;
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'),
    Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

function parseArgs(argv) {
  const a = { model: null, inputs: [], threads: 1, iterations: 20, warmup: 3, outputDir: null };
  const count = (flag, v, min) => {
    if (!/^[0-9]+$/.test(v || '') || Number(v) < min) fail(`${flag} needs an integer >= ${min}, got '${v}'`);
    return Number(v);
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    if (f === '--input') {
      const v = argv[++i] || '';
      const eq = v.indexOf('=');
      if (eq <= 0) fail(`--input needs NAME=FILE.npy, got '${v}'`);
      a.inputs.push([v.slice(0, eq), v.slice(eq + 1)]);
    } else if (f === '--threads') a.threads = count(f, argv[++i], 1);
    else if (f === '--iterations') a.iterations = count(f, argv[++i], 1);
    else if (f === '--warmup') a.warmup = count(f, argv[++i], 0);
    else if (f === '--output-dir') a.outputDir = argv[++i];
    else if (!f.startsWith('--') && !a.model) a.model = f;
    else fail(`unknown argument '${f}'`);
  }
  if (!a.model) fail('usage: ort_time.js MODEL.onnx --input NAME=FILE.npy [...] [--threads N] [--iterations K] ' +
    '[--warmup W] [--output-dir DIR]');
  return a;
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const feeds = {};
  for (const [name, file] of a.inputs) feeds[name] = readNpy(file);
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(a.model, {
    intraOpNumThreads: a.threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential',
  });
  const loadMs = performance.now() - t0;
  const missing = session.inputNames.filter((n) => !(n in feeds));
  if (missing.length) fail(`${a.model}: no --input for ${missing.join(', ')}`);

  if (a.outputDir) {
    const out = await session.run(feeds);
    fs.mkdirSync(a.outputDir, { recursive: true });
    for (const name of session.outputNames) writeNpy(path.join(a.outputDir, `${name}.npy`), out[name]);
    return;
  }
  for (let i = 0; i < a.warmup; i++) await session.run(feeds);
  const times = new Array(a.iterations);
  for (let i = 0; i < a.iterations; i++) {
    const s = performance.now();
    await session.run(feeds);
    times[i] = performance.now() - s;
  }
  // the same order statistics as celer bench: median = sorted[n/2], p90 = sorted[(n-1)*0.9]
  const n = times.length;
  const sorted = times.slice().sort((x, y) => x - y);
  const r4 = (v) => Math.round(v * 1e4) / 1e4;
  const version = require('onnxruntime-node/package.json').version;
  process.stdout.write(JSON.stringify({
    engine: 'ort', ort_version: version, model: a.model, threads: a.threads, iterations: a.iterations,
    warmup: a.warmup, load_ms: r4(loadMs), median_ms: r4(sorted[Math.floor(n / 2)]), p90_ms: r4(sorted[Math.floor((n - 1) * 0.9)]),
    min_ms: r4(sorted[0]), mean_ms: r4(times.reduce((x, y) => x + y, 0) / times.length),
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 102.4) / 10, times_ms: times.map(r4),
  }) + '\n');
}

main().catch((e) => fail(e && e.message ? e.message : String(e)));
