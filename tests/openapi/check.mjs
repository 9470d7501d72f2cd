// The OpenAPI documents of a running `celer serve`, checked with tools nobody here wrote (from npm,
// installed by tests/e2e/test_openapi.py into a cache folder outside the repository):
//  - every document (/v2/openapi.json, each model's and each version's, the models taken from
//    POST /v2/repository/index) passes @apidevtools/swagger-parser's validate();
//  - each holds the paths it should and no other, and its per-model schemas are closed;
//  - round trip: every infer operation's example fits its request schema (ajv 8, the document's
//    components resolved), the server answers it 200, and the answer fits the 200 schema;
//  - a wrong datatype (a model) or a field of the wrong JSON type (a pipeline's business object)
//    fails the schema, and the server refuses it with 400;
//  - a client generated from mlp's document works: openapi-typescript writes its types,
//    tests/openapi/client.ts is compiled against them by tsc --strict and run; the same program with
//    a wrong datatype literal, or a shape the model does not take, does not compile.
//
// usage: node check.mjs BASE_URL NODE_MODULES TMP_DIR [--validate-only MODEL]
//   BASE_URL      http://127.0.0.1:PORT of the server
//   NODE_MODULES  the node_modules folder holding the packages above
//   TMP_DIR       a folder of its own for the generated types and the compiled client
//   --validate-only MODEL: only /v2/openapi.json and MODEL's document, validated (a --docs server)
// Prints one JSON line per check, {"name", "ok", "detail"}, then {"done": true}; exits 0 unless it
// could not run at all (a failed check is not an exit code: test_openapi.py counts the lines).
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const [BASE, NODE_MODULES, TMP, ...rest] = process.argv.slice(2);
const VALIDATE_ONLY = rest[0] === "--validate-only" ? rest[1] : null;
const require = createRequire(path.join(NODE_MODULES, "celer-openapi-check.js"));
const SwaggerParser = require("@apidevtools/swagger-parser");
const Ajv = require("ajv").default;
const addFormats = require("ajv-formats").default;

function report(name, ok, detail = "") {
  const d = typeof detail === "string" ? detail : JSON.stringify(detail);
  console.log(JSON.stringify({ name, ok: !!ok, detail: ok ? "" : d.slice(0, 3000) }));
  return !!ok;
}

async function request(method, urlPath, body) {
  const init = { method, signal: AbortSignal.timeout(60000), headers: {} };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers["content-type"] = "application/json";
  }
  let r;
  try {
    r = await fetch(BASE + urlPath, init);
  } catch (e) {
    // a kept-alive connection the server closed while this process was busy: tsc runs synchronously
    // and holds the event loop past the server's --header-timeout-secs (10 s) on a loaded machine,
    // so the pool still hands out the closed socket. Once more, on a new connection.
    if (!(e instanceof TypeError) || !e.cause) throw e;
    r = await fetch(BASE + urlPath, { ...init, signal: AbortSignal.timeout(60000) });
  }
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, text, json, headers: r.headers };
}

const clip = (v, n = 400) => {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return s === undefined ? String(v) : s.length > n ? s.slice(0, n) + "..." : s;
};
const seg = (name) => encodeURIComponent(name); // as the server writes a path segment (for these names)

// ---- ajv on OpenAPI 3.0 schema objects ----

// One Ajv per document: the whole document is a schema of its own ("openapi.json"), so that a
// schema anywhere in it is compiled by a $ref to its JSON pointer and its own $refs
// (#/components/...) resolve against the document. OpenAPI's own keywords: `nullable` is Ajv's,
// `example`, `xml`, `externalDocs`, `discriminator`... are ignored (strict: false); the formats
// (int32, int64, float, double, byte, ...) are ajv-formats'.
function docValidator(doc) {
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema(doc, "openapi.json");
  const cache = new Map();
  return (segments) => {
    const ptr = segments.map((s) => "/" + encodeURIComponent(String(s).replace(/~/g, "~0").replace(/\//g, "~1"))).join("");
    if (!cache.has(ptr)) cache.set(ptr, ajv.compile({ $ref: "openapi.json#" + ptr }));
    const v = cache.get(ptr);
    return (data) => (v(data) ? null : ajv.errorsText(v.errors, { separator: "; " }).slice(0, 1500));
  };
}

// ---- structure ----

const MODEL_SCHEMA = /\.(InferRequest|InferResponse|Object|ObjectResponse|PredictRequest)$/;

// The JSON paths of object schemas in s that are open (additionalProperties not false).
function openObjects(s, where, out) {
  if (Array.isArray(s)) s.forEach((x, i) => openObjects(x, `${where}[${i}]`, out));
  if (!s || typeof s !== "object" || Array.isArray(s) || s.$ref) return out;
  if ((s.type === "object" || s.properties) && s.additionalProperties !== false) out.push(where);
  for (const [n, x] of Object.entries(s.properties || {})) openObjects(x, `${where}.properties.${n}`, out);
  for (const k of ["items", "not", "additionalProperties"]) if (s[k] && typeof s[k] === "object") openObjects(s[k], `${where}.${k}`, out);
  for (const k of ["allOf", "anyOf", "oneOf"]) if (Array.isArray(s[k])) openObjects(s[k], `${where}.${k}`, out);
  return out;
}

// A copy of a value with its first leaf (depth-first) replaced by f(leaf); null when it has none.
function replaceLeaf(v, f) {
  let done = false;
  const walk = (x) => {
    if (done) return x;
    if (Array.isArray(x)) return x.map(walk);
    if (x !== null && typeof x === "object") return Object.fromEntries(Object.entries(x).map(([k, y]) => [k, walk(y)]));
    done = true;
    return f(x);
  };
  const out = walk(v);
  return done ? out : null;
}
const wrongType = (x) => (typeof x === "string" ? 12345 : typeof x === "number" ? "12345" : typeof x === "boolean" ? "true" : 0);

// ---- the checks ----

async function fetchDoc(label, urlPath) {
  let r;
  try {
    r = await request("GET", urlPath);
  } catch (e) {
    report(`${label}: GET ${urlPath}`, false, String(e));
    return null;
  }
  if (!report(`${label}: GET ${urlPath} answers 200 with JSON`, r.status === 200 && r.json && typeof r.json === "object",
              `${r.status} ${clip(r.text)}`))
    return null;
  const doc = r.json;
  let err = null;
  try {
    await SwaggerParser.validate(structuredClone(doc));
  } catch (e) {
    err = e.message || String(e);
    if (e.details) err += " " + clip(e.details, 2500);
  }
  report(`${label}: swagger-parser validate() accepts the document (OpenAPI ${doc.openapi})`, err === null, err);
  report(`${label}: openapi is 3.0.3`, doc.openapi === "3.0.3", doc.openapi);
  const open = [];
  for (const [name, s] of Object.entries(doc.components?.schemas || {}))
    if (MODEL_SCHEMA.test(name)) openObjects(s, `#/components/schemas/${name}`, open);
  report(`${label}: every model's component schema is closed (additionalProperties: false at each object)`,
         open.length === 0, `open: ${open.slice(0, 10).join(", ")}`);
  return doc;
}

function inferOps(doc) {
  return Object.entries(doc.paths || {})
    .filter(([p, item]) => p.endsWith("/infer") && item.post)
    .map(([p, item]) => ({ path: p, op: item.post }));
}

const answers = new Map(); // POST path + body -> the answer (the same example in several documents)
async function postOnce(p, body) {
  const k = p + "\n" + JSON.stringify(body);
  if (!answers.has(k)) answers.set(k, await request("POST", p, body));
  return answers.get(k);
}

// The example of every infer operation of doc: fits the request schema, answered 200, the answer
// fits the 200 schema.
async function roundTrip(label, doc) {
  const schemaOf = docValidator(doc);
  for (const { path: p, op } of inferOps(doc)) {
    const media = op.requestBody?.content?.["application/json"];
    const ok200 = op.responses?.["200"]?.content?.["application/json"]?.schema;
    if (!report(`${label}: POST ${p} has a JSON request schema, an example and a 200 schema`,
                media?.schema && media.example !== undefined && ok200, clip(op, 600)))
      continue;
    const reqErr = schemaOf(["paths", p, "post", "requestBody", "content", "application/json", "schema"])(media.example);
    report(`${label}: POST ${p}: the example fits the request schema`, reqErr === null,
           `${reqErr} in ${clip(media.example)}`);
    const r = await postOnce(p, media.example);
    if (!report(`${label}: POST ${p}: the example is answered 200`, r.status === 200, `${r.status} ${clip(r.text)}`))
      continue;
    const resErr = schemaOf(["paths", p, "post", "responses", "200", "content", "application/json", "schema"])(r.json);
    report(`${label}: POST ${p}: the answer fits the 200 schema`, resErr === null, `${resErr} in ${clip(r.text, 600)}`);
  }
}

// Requests of the wrong type: refused by the schema and by the server.
async function wrongTypes(name, doc, pipeline) {
  const schemaOf = docValidator(doc);
  const p = `/v2/models/${seg(name)}/infer`;
  const op = doc.paths?.[p]?.post;
  const media = op?.requestBody?.content?.["application/json"];
  if (!report(`${name}: the model's document has POST ${p} with an example`, media?.example !== undefined, Object.keys(doc.paths || {})))
    return;
  const validate = schemaOf(["paths", p, "post", "requestBody", "content", "application/json", "schema"]);
  const cases = [];
  if (pipeline) {
    for (const field of Object.keys(media.example)) {
      const bad = structuredClone(media.example);
      const leaf = replaceLeaf(bad[field], wrongType);
      bad[field] = leaf === null ? [{}] : leaf; // an empty list: an element no tensor holds
      cases.push([`business object field ${field} of the wrong JSON type`, bad]);
    }
  } else {
    media.example.inputs.forEach((t, i) => {
      const bad = structuredClone(media.example);
      bad.inputs[i].datatype = t.datatype === "FP32" ? "INT64" : "FP32";
      cases.push([`input ${t.name} with datatype ${bad.inputs[i].datatype} instead of ${t.datatype}`, bad]);
    });
  }
  report(`${name}: a request of the wrong type can be made from the example`, cases.length > 0, clip(media.example));
  for (const [what, bad] of cases) {
    const err = validate(bad);
    report(`${name}: ${what}: refused by the request schema`, err !== null, `the schema accepts ${clip(bad)}`);
    const r = await request("POST", p, bad);
    report(`${name}: ${what}: refused by the server with 400`, r.status === 400 && typeof r.json?.error === "string",
           `${r.status} ${clip(r.text)}`);
  }
  if (pipeline) { // the list form: several business objects in one request
    const body = [media.example, media.example];
    const err = validate(body);
    report(`${name}: a list of two example objects fits the request schema`, err === null, err);
    const r = await request("POST", p, body);
    const resErr = r.status === 200 ? schemaOf(["paths", p, "post", "responses", "200", "content", "application/json", "schema"])(r.json) : null;
    report(`${name}: a list of two objects is answered 200 with a list of two that fits the 200 schema`,
           r.status === 200 && Array.isArray(r.json) && r.json.length === 2 && resErr === null,
           `${r.status} ${resErr ?? ""} ${clip(r.text)}`);
  }
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 120000, ...opts });
  return { code: r.status, stdout: r.stdout || "", out: (r.stdout || "") + (r.stderr || "") + (r.error ? String(r.error) : "") };
}

// openapi-typescript on mlp's document, client.ts compiled against it with tsc --strict and run.
async function typedClient(model) {
  const dir = path.join(TMP, "client");
  fs.mkdirSync(dir, { recursive: true });
  const docUrl = `${BASE}/v2/models/${seg(model)}/openapi.json`;
  const gen = run(process.execPath, [path.join(NODE_MODULES, "openapi-typescript", "bin", "cli.js"), docUrl,
                                     "--output", path.join(dir, "api.d.ts")]);
  if (!report(`typed client: openapi-typescript generates types from ${model}'s document`,
              gen.code === 0 && fs.existsSync(path.join(dir, "api.d.ts")), gen.out.slice(-2000)))
    return;
  const tsc = path.join(NODE_MODULES, "typescript", "bin", "tsc");
  const compile = (d) => {
    fs.writeFileSync(path.join(d, "package.json"), '{"type": "module"}\n');
    fs.writeFileSync(path.join(d, "tsconfig.json"), JSON.stringify({
      compilerOptions: { strict: true, target: "es2022", module: "nodenext", moduleResolution: "nodenext",
                         lib: ["es2022", "dom"], types: [], noEmitOnError: true, outDir: "out" },
      files: ["client.ts"] }));
    return run(process.execPath, [tsc, "-p", d]);
  };
  const source = fs.readFileSync(path.join(HERE, "client.ts"), "utf8");
  fs.writeFileSync(path.join(dir, "client.ts"), source);
  const built = compile(dir);
  if (!report("typed client: client.ts compiles with tsc --strict against the generated types", built.code === 0, built.out.slice(-3000)))
    return;
  const ran = run(process.execPath, [path.join(dir, "out", "client.js"), BASE]);
  let got = null;
  try {
    got = JSON.parse(ran.stdout.trim().split("\n").pop());
  } catch {
    got = null;
  }
  if (!report("typed client: the compiled client runs and prints its request and the answer", ran.code === 0 && got?.request && got?.response,
              ran.out.slice(-2000)))
    return;
  // the same request sent here: the same answer, and the answer fits the document
  const doc = (await request("GET", `/v2/models/${seg(model)}/openapi.json`)).json;
  const p = `/v2/models/${seg(model)}/infer`;
  const resErr = docValidator(doc)(["paths", p, "post", "responses", "200", "content", "application/json", "schema"])(got.response);
  const direct = await request("POST", p, got.request);
  report("typed client: its answer fits the 200 schema, is the one a plain POST gets, and has the request's rows",
         resErr === null && direct.status === 200 && JSON.stringify(direct.json) === JSON.stringify(got.response)
         && got.response.outputs?.[0]?.shape?.[0] === got.request.inputs?.[0]?.shape?.[0],
         `${resErr ?? ""} client: ${clip(got.response)} plain: ${direct.status} ${clip(direct.text)}`);
  // a wrong datatype literal, a shape mlp does not take: tsc refuses the program, naming the mistake
  const mistakes = [
    ["datatype \"INT64\"", /"FP32"(,\s*\/\/ celer-check: datatype)/, '"INT64"$1', '"INT64"'],
    ["shape [rows, 15]", /\[rows, 16\](,\s*\/\/ celer-check: shape)/, "[rows, 15]$1", "'15'"],
  ];
  for (const [what, marker, replacement, named] of mistakes) {
    if (!report(`typed client: client.ts marks the line of its ${what.split(" ")[0]}`, marker.test(source), String(marker)))
      continue;
    const badDir = path.join(TMP, `client-${what.split(" ")[0]}`);
    fs.mkdirSync(badDir, { recursive: true });
    fs.writeFileSync(path.join(badDir, "client.ts"), source.replace(marker, replacement));
    fs.copyFileSync(path.join(dir, "api.d.ts"), path.join(badDir, "api.d.ts"));
    const bad = compile(badDir);
    report(`typed client: the same program with ${what} does not compile (tsc names ${named})`,
           bad.code !== 0 && /error TS\d+/.test(bad.out) && bad.out.includes(named), `tsc exit ${bad.code}: ${bad.out.slice(-1500)}`);
  }
}

// swagger-parser refuses a document broken on purpose (a schema of a type OpenAPI does not have,
// a keyword it does not know): its verdict on the served ones means something.
async function validatorControl(doc) {
  const name = Object.keys(doc.components?.schemas || {}).find((n) => MODEL_SCHEMA.test(n));
  const broken = [["type", "tensor"], ["const", 1]].map(([k, v]) => {
    const d = structuredClone(doc);
    d.components.schemas[name][k] = v;
    return [k, d];
  });
  for (const [k, d] of broken) {
    let refused = false;
    try {
      await SwaggerParser.validate(d);
    } catch {
      refused = true;
    }
    report(`swagger-parser validate() refuses the document with ${name} given a bad ${k} (control)`, refused, "accepted");
  }
}

async function main() {
  const server = await fetchDoc("/v2/openapi.json", "/v2/openapi.json");
  if (server && !VALIDATE_ONLY) await validatorControl(server);
  if (VALIDATE_ONLY) {
    await fetchDoc(`${VALIDATE_ONLY}'s document`, `/v2/models/${seg(VALIDATE_ONLY)}/openapi.json`);
    return;
  }
  const idx = await request("POST", "/v2/repository/index", {});
  if (!report("POST /v2/repository/index answers a list", idx.status === 200 && Array.isArray(idx.json), `${idx.status} ${clip(idx.text)}`))
    return;
  report("every model of the index is READY", idx.json.every((e) => e.state === "READY"), clip(idx.json, 1500));
  const models = new Map(); // name -> {versions, pipeline}
  for (const e of idx.json) {
    if (e.state !== "READY") continue;
    if (!models.has(e.name)) models.set(e.name, { versions: new Set() });
    if (e.version) models.get(e.name).versions.add(e.version);
  }
  for (const [name, m] of models) { // versions and kind from the metadata too (an index entry may carry no version)
    const meta = await request("GET", `/v2/models/${seg(name)}`);
    for (const v of meta.json?.versions || []) m.versions.add(v);
    m.pipeline = meta.json?.platform === "celer_pipeline";
  }
  report("the index lists models and pipelines", [...models.values()].some((m) => m.pipeline) && [...models.values()].some((m) => !m.pipeline),
         clip([...models].map(([n, m]) => [n, [...m.versions], m.pipeline])));

  if (server) {
    const want = [];
    for (const [name, m] of models) {
      want.push(`/v2/models/${seg(name)}/infer`);
      for (const v of m.versions) want.push(`/v2/models/${seg(name)}/versions/${seg(v)}/infer`);
    }
    const missing = want.filter((p) => !server.paths?.[p]?.post);
    report("/v2/openapi.json: an infer operation for every model, pipeline and version of the index", missing.length === 0,
           `missing: ${missing.join(", ")}`);
    await roundTrip("/v2/openapi.json", server);
  }
  for (const [name, m] of models) {
    const prefix = `/v2/models/${seg(name)}`;
    const doc = await fetchDoc(`${name}'s document`, `${prefix}/openapi.json`);
    if (doc) {
      const paths = Object.keys(doc.paths || {});
      const foreign = paths.filter((p) => !(p === prefix || p.startsWith(prefix + "/") || p === `/v1/models/${seg(name)}:predict`
                                            || p.startsWith(`/v2/repository/models/${seg(name)}/`)));
      const want = [`${prefix}/infer`, ...[...m.versions].map((v) => `${prefix}/versions/${seg(v)}/infer`)];
      const missing = want.filter((p) => !doc.paths?.[p]?.post);
      report(`${name}'s document: ${name}'s paths only, its infer paths all there`, foreign.length === 0 && missing.length === 0,
             `foreign: ${foreign.join(", ")}; missing: ${missing.join(", ")}`);
      await roundTrip(`${name}'s document`, doc);
      await wrongTypes(name, doc, m.pipeline);
    }
    for (const v of m.versions) {
      const vprefix = `${prefix}/versions/${seg(v)}`;
      const vdoc = await fetchDoc(`${name} version ${v}'s document`, `${vprefix}/openapi.json`);
      if (!vdoc) continue;
      const paths = Object.keys(vdoc.paths || {});
      const foreign = paths.filter((p) => !(p === vprefix || p.startsWith(vprefix + "/")));
      report(`${name} version ${v}'s document: that version's paths only, its infer path there`,
             foreign.length === 0 && vdoc.paths?.[`${vprefix}/infer`]?.post, `foreign: ${foreign.join(", ")}; paths: ${paths.join(", ")}`);
      await roundTrip(`${name} version ${v}'s document`, vdoc);
    }
  }
  if (models.has("mlp")) await typedClient("mlp");
  else report("typed client: mlp is served", false, [...models.keys()].join(", "));
}

try {
  await main();
  console.log(JSON.stringify({ done: true }));
} catch (e) {
  console.error(e?.stack || String(e));
  process.exit(2);
}
