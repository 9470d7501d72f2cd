// Validates deploy/'s manifests without a cluster (tests/e2e/test_manifests.py runs it):
//  - every kustomization.yaml under deploy/ is read, and the files it lists are the manifests
//    (so kubectl is never needed); a YAML file under deploy/ that no kustomization lists fails;
//  - Kubernetes objects: kubernetes-models' validators (types, required fields, enums, formats)
//    and tsc --noEmit on each object as a kubernetes-types typed literal (unknown fields at any
//    depth through TypeScript's excess-property check; quantities must be quoted);
//  - KServe objects: their CRD's openAPIV3Schema (tests/deploy/kserve-crds) made strict, with ajv,
//    and their metadata as a typed ObjectMeta;
//  - a broken copy of each manifest, made here, fails (unknown field, bad type, missing field...);
//  - cross-checks against celer: the flags in `args` and CELER_* variables exist (FLAGS_JSON, from
//    `celer serve --help`), probes on celer's health routes and the HTTP port, named ports equal
//    the flags' ports, terminationGracePeriodSeconds > drain delay + shutdown timeout, no preStop,
//    the security context, the worker count from the CPU request, the Service / HPA / PDB /
//    NetworkPolicy / InferenceService pointing at what exists, the ConfigMap's models equal to
//    examples/repository's.
// Prints one JSON line per check ({name, ok, detail}) and {"done": true} at the end; writes
// OUT_DIR/celer-containers.json (every celer container with its pod's ConfigMaps) for the Python
// side, which starts celer with them.
// usage: node check.mjs NODE_MODULES REPO_ROOT OUT_DIR FLAGS_JSON
import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const [NM, ROOT, OUT, FLAGS_JSON] = process.argv.slice(2);
const require = createRequire(path.join(NM, "noop.js"));
const yaml = require("js-yaml");
const Ajv = require("ajv").default;
const addFormats = require("ajv-formats").default;
const FLAGS = JSON.parse(fs.readFileSync(FLAGS_JSON, "utf8")); // {name: {env, default}}

const check = (name, ok, detail = "") =>
  console.log(JSON.stringify({ name, ok: !!ok, detail: typeof detail === "string" ? detail : JSON.stringify(detail) }));

// ---- the manifests, as the kustomizations list them ----
function walk(dir, out = []) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (/\.ya?ml$/.test(e.name)) out.push(p);
  }
  return out.sort();
}
const deployDir = path.join(ROOT, "deploy");
const yamlFiles = walk(deployDir);
const kustomizations = yamlFiles.filter((f) => path.basename(f) === "kustomization.yaml");
const listed = new Set();
const docs = []; // {file, index, doc, text}
for (const k of kustomizations) {
  const kz = yaml.load(fs.readFileSync(k, "utf8"));
  check(`${path.relative(ROOT, k)}: a Kustomization listing resources`, kz?.kind === "Kustomization" &&
        kz.apiVersion === "kustomize.config.k8s.io/v1beta1" && Array.isArray(kz.resources) && kz.resources.length, kz);
  for (const r of kz?.resources ?? []) {
    const f = path.resolve(path.dirname(k), r);
    const inside = path.relative(path.dirname(k), f).split(path.sep)[0] !== "..";
    check(`${path.relative(ROOT, k)}: ${r} is a file in or below its folder (kustomize's load restriction)`,
          inside && fs.existsSync(f) && fs.statSync(f).isFile());
    if (!inside || !fs.existsSync(f) || listed.has(f)) continue;
    listed.add(f);
    const text = fs.readFileSync(f, "utf8");
    yaml.loadAll(text, (doc) => { if (doc) docs.push({ file: path.relative(ROOT, f), index: docs.length, doc, text }); });
  }
}
for (const f of yamlFiles)
  if (path.basename(f) !== "kustomization.yaml")
    check(`${path.relative(ROOT, f)} is listed by a kustomization.yaml`, listed.has(f));
check("the manifests were found (deploy/kubernetes, redis, s3, kserve)", docs.length >= 10, docs.map((d) => d.file));

// YAML 1.1 (what Kubernetes' parser follows) reads an unquoted yes/no/on/off as a boolean, where
// js-yaml (YAML 1.2) sees a string: such a value must be quoted to mean the same to both.
for (const f of listed) {
  const bad = fs.readFileSync(f, "utf8").split("\n").map((l, i) => [i + 1, l.replace(/\s+#.*$/, "")])
    .filter(([, l]) => !/^\s*#/.test(l) && /(:|^\s*-)\s+(y|Y|n|N|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF)\s*$/.test(l));
  check(`${path.relative(ROOT, f)}: no unquoted yes/no/on/off (YAML 1.1 booleans)`, !bad.length, bad);
}

// ---- validators ----
const CORE = { // apiVersion -> [kubernetes-types module, kubernetes-models folder]
  "v1": ["core/v1", "v1"], "apps/v1": ["apps/v1", "apps/v1"], "autoscaling/v2": ["autoscaling/v2", "autoscaling/v2"],
  "policy/v1": ["policy/v1", "policy/v1"], "networking.k8s.io/v1": ["networking/v1", "networking.k8s.io/v1"],
};
const modelClasses = {};
async function modelsError(doc) { // kubernetes-models: null when valid
  const [, folder] = CORE[doc.apiVersion];
  const key = `${folder}/${doc.kind}`;
  if (!modelClasses[key]) {
    const mod = await import(pathToFileURL(path.join(NM, "kubernetes-models", folder, `${doc.kind}.js`)).href);
    modelClasses[key] = mod[doc.kind];
  }
  try {
    new modelClasses[key](structuredClone(doc)).validate();
    return null;
  } catch (e) {
    return e.message.slice(0, 600);
  }
}

// A CRD schema made strict as kubeconform -strict does: no field beyond those listed, wherever
// the schema lists them and does not keep unknown fields on purpose.
function strict(s) {
  if (Array.isArray(s)) return s.map(strict);
  if (!s || typeof s !== "object") return s;
  const out = {};
  for (const [k, v] of Object.entries(s)) out[k] = k === "properties" ?
    Object.fromEntries(Object.entries(v).map(([pk, pv]) => [pk, strict(pv)])) : strict(v);
  if (out.properties && !out["x-kubernetes-preserve-unknown-fields"] && out.additionalProperties === undefined)
    out.additionalProperties = false;
  return out;
}
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
for (const f of ["int32", "int64", "double", "float", "byte", "quantity"]) ajv.addFormat(f, true);
const crdValidators = {};
for (const f of fs.readdirSync(path.join(ROOT, "tests/deploy/kserve-crds")).filter((n) => n.endsWith(".json.gz"))) {
  const crd = JSON.parse(require("node:zlib").gunzipSync(fs.readFileSync(path.join(ROOT, "tests/deploy/kserve-crds", f))));
  for (const [v, schema] of Object.entries(crd.versions))
    crdValidators[`${crd.group}/${v} ${crd.kind}`] = ajv.compile(strict(schema));
}
function crdError(doc) {
  const v = crdValidators[`${doc.apiVersion} ${doc.kind}`];
  if (!v(doc)) return ajv.errorsText(v.errors, { dataVar: doc.kind }).slice(0, 600);
  return null;
}

// tsc over many objects at once: each one a file; errors come back by file.
const tsDir = path.join(OUT, "ts");
fs.rmSync(tsDir, { recursive: true, force: true });
fs.mkdirSync(tsDir, { recursive: true });
const tsFiles = [];
function tsWrite(id, doc) {
  const types = path.join(NM, "kubernetes-types");
  let src;
  if (CORE[doc.apiVersion]) {
    src = `import type { ${doc.kind} } from ${JSON.stringify(path.join(types, CORE[doc.apiVersion][0]))};\n` +
          `export const o: ${doc.kind} = ${JSON.stringify(doc, null, 1)};\n`;
  } else { // a KServe object: its metadata (the CRD schema leaves it to the API server)
    src = `import type { ObjectMeta } from ${JSON.stringify(path.join(types, "meta/v1"))};\n` +
          `export const m: ObjectMeta = ${JSON.stringify(doc.metadata ?? {}, null, 1)};\n`;
  }
  const f = path.join(tsDir, `${id}.ts`);
  fs.writeFileSync(f, src);
  tsFiles.push(f);
  return f;
}
function tscErrors() { // file -> [messages]
  fs.writeFileSync(path.join(tsDir, "tsconfig.json"), JSON.stringify({
    compilerOptions: { noEmit: true, strict: true, skipLibCheck: true, types: [], target: "es2020", module: "esnext",
                       moduleResolution: "node", isolatedModules: false },
    files: tsFiles }));
  let out = "";
  try {
    execFileSync(process.execPath, [path.join(NM, "typescript/bin/tsc"), "-p", tsDir, "--pretty", "false"],
                 { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    out = (e.stdout || "") + (e.stderr || "");
  }
  const byFile = {};
  let last = null;
  for (const line of out.split("\n")) {
    const m = /^(.*?\.ts)\(\d+,\d+\): (error .*)$/.exec(line);
    if (m) (byFile[last = path.resolve(m[1])] ??= []).push(m[2]);
    else if (last && line.startsWith(" ")) byFile[last].push(line.trim());
    else if (line.trim()) (byFile["?"] ??= []).push(line);
  }
  return byFile;
}

// ---- broken copies ----
const FREE_MAPS = new Set(["labels", "annotations", "data", "binaryData", "stringData", "matchLabels", "nodeSelector",
                           "limits", "requests"]);
function get(o, p) { return p.reduce((a, k) => a?.[k], o); }
function deepestObject(doc) { // the deepest object that only takes known fields
  let best = { depth: -1, path: [] };
  const visit = (o, p) => {
    if (Array.isArray(o)) { o.forEach((v, i) => visit(v, [...p, i])); return; }
    if (!o || typeof o !== "object") return;
    if (FREE_MAPS.has(p[p.length - 1])) return;
    if (p.length > best.depth && Object.keys(o).length) best = { depth: p.length, path: p };
    for (const [k, v] of Object.entries(o)) visit(v, [...p, k]);
  };
  visit(doc, []);
  return best.path;
}
const INT_OR_STRING = new Set(["port", "targetPort", "minAvailable", "maxUnavailable", "maxSurge"]);
function firstLeaf(doc, want) { // path of the first leaf of JSON type `want` outside free-form maps
  let found = null;
  const visit = (o, p) => {
    if (found) return;
    if (typeof o === want && p.length > 1 && !FREE_MAPS.has(p[p.length - 2]) && !INT_OR_STRING.has(p.at(-1))) {
      found = p;
      return;
    }
    if (o && typeof o === "object") for (const [k, v] of Object.entries(o)) if (!["apiVersion", "kind"].includes(k)) visit(v, [...p, k]);
  };
  visit(doc, []);
  return found;
}
function containerPath(doc) {
  if (doc.kind === "Deployment") return ["spec", "template", "spec", "containers", 0];
  if (doc.kind === "ClusterServingRuntime") return ["spec", "containers", 0];
  return null;
}
function mutations(doc) { // [[description, mutate(copy)]]
  const out = [];
  const deep = deepestObject(doc);
  const obj = get(doc, deep);
  const key = Object.keys(obj).find((k) => k.length > 3) ?? Object.keys(obj)[0];
  const typo = key.length > 3 ? key.slice(0, -2) + key.slice(-1) : key + "x";
  if (!(typo in obj))
    out.push([`unknown field '${typo}' beside '${key}' at ${deep.join(".")}`, (d) => { get(d, deep)[typo] = get(d, deep)[key]; }]);
  const c = containerPath(doc);
  if (c && get(doc, c).readinessProbe)
    out.push(["'readinessProbe' misspelt 'readinesProbe'", (d) => {
      const ct = get(d, c); ct.readinesProbe = ct.readinessProbe; delete ct.readinessProbe; }]);
  const n = firstLeaf(doc, "number");
  if (n) out.push([`${n.join(".")} as a string`, (d) => { const p = get(d, n.slice(0, -1)); p[n.at(-1)] = String(p[n.at(-1)]); }]);
  if (doc.kind === "ConfigMap" || doc.kind === "Secret")
    out.push([`a value of ${doc.kind === "Secret" ? "stringData" : "binaryData"} as a number`, (d) => {
      const m = doc.kind === "Secret" ? d.stringData : d.binaryData; m[Object.keys(m)[0]] = 7; }]);
  const specific = {
    Deployment: [["spec.selector missing (required)", (d) => { delete d.spec.selector; }],
                 ["strategy.type 'Rolling' (not in the enum)", (d) => { d.spec.strategy = { type: "Rolling" }; }],
                 ["an unquoted quantity cpu: 2 (quote quantities)", (d) => {
                   get(d, [...containerPath(d), "resources", "requests"]).cpu = 2; }]],
    Service: [["spec.ports[0].port missing (required)", (d) => { delete d.spec.ports[0].port; }],
              ["ports[0].protocol 'TCPX' (not in the enum)", (d) => { d.spec.ports[0].protocol = "TCPX"; }]],
    HorizontalPodAutoscaler: [["spec.scaleTargetRef missing (required)", (d) => { delete d.spec.scaleTargetRef; }],
                              ["spec.maxReplicas missing (required)", (d) => { delete d.spec.maxReplicas; }]],
    PodDisruptionBudget: [["minAvailable: true (int or string)", (d) => { d.spec.minAvailable = true; }]],
    NetworkPolicy: [["policyTypes 'Ingres' (not in the enum)", (d) => { d.spec.policyTypes = ["Ingres"]; }],
                    ["ports[0].port: [6379] (int or string)", (d) => { d.spec.ingress[0].ports[0].port = [6379]; }]],
    ClusterServingRuntime: [
      ["spec.containers missing (required)", (d) => { delete d.spec.containers; }],
      ["'supportedModelFormats' misspelt 'supportedModelFormat'", (d) => {
        d.spec.supportedModelFormat = d.spec.supportedModelFormats; delete d.spec.supportedModelFormats; }],
      ["priority 0 (minimum 1)", (d) => { d.spec.supportedModelFormats[0].priority = 0; }],
      ["metadata.labels value as a number", (d) => { d.metadata.labels = { a: 1 }; }]],
    InferenceService: [
      ["'storageUri' misspelt 'storageURI'", (d) => {
        d.spec.predictor.model.storageURI = d.spec.predictor.model.storageUri; delete d.spec.predictor.model.storageUri; }],
      ["spec.predictor missing (required)", (d) => { delete d.spec.predictor; }],
      ["minReplicas as a string", (d) => { d.spec.predictor.minReplicas = "1"; }],
      ["metadata.annotations misspelt 'anotations'", (d) => { d.metadata.anotations = d.metadata.annotations; delete d.metadata.annotations; }]],
  };
  return out.concat(specific[doc.kind] ?? []);
}

// ---- run the validators on every document and every broken copy ----
const cases = []; // {label, doc, broken, tsFile}
docs.forEach((d, i) => {
  const label = `${d.file}: ${d.doc.kind} ${d.doc.metadata?.name}`;
  const known = CORE[d.doc.apiVersion] || crdValidators[`${d.doc.apiVersion} ${d.doc.kind}`];
  check(`${label}: a kind the checks know (${d.doc.apiVersion})`, known);
  if (!known) return;
  cases.push({ label, doc: d.doc, broken: null, tsFile: tsWrite(`doc${i}`, d.doc) });
  mutations(d.doc).forEach(([what, mutate], j) => {
    const copy = structuredClone(d.doc);
    mutate(copy);
    cases.push({ label, doc: copy, broken: what, tsFile: tsWrite(`doc${i}_broken${j}`, copy) });
  });
});
const t0 = Date.now();
const tsErr = tscErrors();
const tscMs = Date.now() - t0;
check("tsc ran on the typed literals (no error outside them)", !tsErr["?"], tsErr["?"]);
let t1 = Date.now();
for (const c of cases) {
  const errors = {};
  if (CORE[c.doc.apiVersion]) errors["kubernetes-models"] = await modelsError(c.doc);
  else errors["KServe CRD schema (strict)"] = crdError(c.doc);
  const ts = tsErr[c.tsFile];
  errors["tsc + kubernetes-types"] = ts ? ts.join(" ").slice(0, 600) : null;
  if (!c.broken) {
    for (const [by, e] of Object.entries(errors)) check(`${c.label}: valid (${by})`, !e, e ?? "");
  } else {
    const caught = Object.entries(errors).filter(([, e]) => e);
    check(`${c.label}, broken (${c.broken}): refused`, caught.length,
          caught.length ? caught.map(([by, e]) => `${by}: ${e}`).join(" | ") : "no validator refused it");
    for (const [by, e] of caught) console.log(`    refused by ${by}: ${e.slice(0, 240)}`);
  }
}
console.error(`tsc ${tscMs} ms for ${tsFiles.length} objects; ajv/kubernetes-models ${Date.now() - t1} ms`);

// ---- cross-checks against celer ----
const byKind = (k) => docs.filter((d) => d.doc.kind === k);
const containers = []; // {label, pod, c, file, graceDefault}
for (const { file, doc } of docs) {
  if (doc.kind === "Deployment") {
    for (const c of doc.spec.template.spec.containers)
      containers.push({ label: `${file}: ${c.name}`, file, doc, pod: doc.spec.template.spec, c,
                        annotations: doc.spec.template.metadata?.annotations ?? {} });
  } else if (doc.kind === "ClusterServingRuntime") {
    for (const c of doc.spec.containers)
      containers.push({ label: `${file}: ${c.name}`, file, doc, pod: { volumes: doc.spec.volumes }, c, kserve: true,
                        annotations: doc.spec.annotations ?? {} });
  }
}
const celerContainers = containers.filter(({ c }) => /celer/.test(c.image) && c.args?.[0] === "serve");
check("celer runs in deploy/kubernetes, its S3 variant and the KServe runtime", celerContainers.length === 3,
      celerContainers.map((x) => x.label));
// The checks of one celer container x, reported through check (the real one, or a collector for
// the broken copies below); returns the drain figures.
function celerChecks(x, check) {
  const { c, label } = x;
  const flags = {}; // name -> value, from args then CELER_* env
  const args = c.args.slice(1);
  for (let i = 0; i < args.length; i++) {
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(args[i]);
    check(`${label}: '${args[i]}' is a celer serve flag`, m && FLAGS[m[1]], args[i]);
    if (!m) continue;
    flags[m[1]] = m[2] ?? args[++i];
  }
  const envNames = Object.fromEntries(Object.entries(FLAGS).map(([n, f]) => [f.env, n]));
  for (const e of c.env ?? [])
    if (e.name.startsWith("CELER_")) check(`${label}: ${e.name} is a celer serve variable`, envNames[e.name], e.name);
  const flag = (n) => Number(flags[n] ?? FLAGS[n].default);
  const httpPort = flag("http-port"), grpcPort = flag("grpc-port"), metricsPort = flag("metrics-port");
  const ports = Object.fromEntries((c.ports ?? []).map((p) => [p.name, p.containerPort]));
  if (!x.kserve) {
    check(`${label}: named ports http/grpc/metrics are celer's --http-port/--grpc-port/--metrics-port`,
          ports.http === httpPort && ports.grpc === grpcPort && ports.metrics === metricsPort, { ports, httpPort, grpcPort, metricsPort });
    check(`${label}: prometheus.io annotations scrape /metrics on the metrics port`,
          x.annotations["prometheus.io/scrape"] === "true" && x.annotations["prometheus.io/path"] === "/metrics" &&
          Number(x.annotations["prometheus.io/port"]) === metricsPort, x.annotations);
  } else {
    check(`${label}: HTTP on 8080, KServe's port`, httpPort === 8080, httpPort);
    check(`${label}: prometheus.kserve.io annotations on the metrics port`,
          Number(x.annotations["prometheus.kserve.io/port"]) === metricsPort &&
          x.annotations["prometheus.kserve.io/path"] === "/metrics", x.annotations);
  }
  for (const [probe, route] of [["startupProbe", "/v2/health/live"], ["livenessProbe", "/v2/health/live"],
                                ["readinessProbe", "/v2/health/ready"]]) {
    const p = c[probe]?.httpGet;
    const port = typeof p?.port === "string" ? ports[p.port] : p?.port;
    check(`${label}: ${probe} GET ${route} on the HTTP port${x.kserve ? "" : " (named)"}`, p && p.path === route &&
          port === httpPort && (x.kserve || p.port === "http"), c[probe]);
  }
  check(`${label}: no preStop hook (celer drains itself)`, !c.lifecycle?.preStop, c.lifecycle);
  const grace = x.pod.terminationGracePeriodSeconds ?? 30;
  const drain = flag("drain-delay-secs"), timeout = flag("shutdown-timeout-secs");
  check(`${label}: terminationGracePeriodSeconds ${grace} > --drain-delay-secs ${drain} + --shutdown-timeout-secs ${timeout}`,
        grace > drain + timeout);
  const w = (c.env ?? []).find((e) => e.name === "CELER_WORKERS");
  check(`${label}: CELER_WORKERS from the CPU request (downward API, divisor 1)`,
        w?.valueFrom?.resourceFieldRef?.resource === "requests.cpu" && w.valueFrom.resourceFieldRef.divisor === "1" &&
        (!w.valueFrom.resourceFieldRef.containerName || w.valueFrom.resourceFieldRef.containerName === c.name) &&
        typeof c.resources?.requests?.cpu === "string", w);
  const sc = { ...(x.pod.securityContext ?? {}), ...(c.securityContext ?? {}) };
  check(`${label}: non-root 65532, read-only root, no privilege escalation, ALL capabilities dropped, seccomp RuntimeDefault`,
        sc.runAsNonRoot === true && sc.runAsUser === 65532 && sc.readOnlyRootFilesystem === true &&
        sc.allowPrivilegeEscalation === false && sc.capabilities?.drop?.includes("ALL") &&
        sc.seccompProfile?.type === "RuntimeDefault", sc);
  const mounts = Object.fromEntries((c.volumeMounts ?? []).map((m) => [m.mountPath, m.name]));
  check(`${label}: /tmp is a writable emptyDir (read-only root)`,
        (x.pod.volumes ?? []).some((v) => v.name === mounts["/tmp"] && v.emptyDir), mounts);
  return { grace, drain, timeout };
}
const exported = [];
for (const x of celerContainers) {
  const { c, label } = x;
  const { grace, drain, timeout } = celerChecks(x, check);
  // the ConfigMaps its volumes take files from, for the Python side
  const configMaps = {};
  for (const v of x.pod.volumes ?? []) if (v.configMap) {
    const cm = byKind("ConfigMap").find((d) => d.doc.metadata.name === v.configMap.name)?.doc;
    check(`${label}: volume ${v.name}'s ConfigMap ${v.configMap.name} is in the manifests with every key it maps`, cm &&
          v.configMap.items.every((it) => it.key in (cm.data ?? {}) || it.key in (cm.binaryData ?? {})));
    if (cm) configMaps[v.name] = { items: v.configMap.items, data: cm.data ?? {}, binaryData: cm.binaryData ?? {} };
  }
  // the Secrets its envFrom takes variables from: their keys, for the Python side
  const secrets = {};
  for (const ef of c.envFrom ?? []) if (ef.secretRef) {
    const sec = byKind("Secret").find((d) => d.doc.metadata.name === ef.secretRef.name)?.doc;
    check(`${label}: envFrom's Secret ${ef.secretRef.name} is in the manifests`, sec);
    if (sec) secrets[ef.secretRef.name] = Object.keys({ ...(sec.data ?? {}), ...(sec.stringData ?? {}) });
  }
  exported.push({ label, file: x.file, kserve: !!x.kserve, args: c.args, env: c.env ?? [], volumeMounts: c.volumeMounts ?? [],
                  envFrom: c.envFrom ?? [], secrets, configMaps, resources: c.resources, grace, drain, timeout,
                  commentedEnv: commentedEnv(fs.readFileSync(path.join(ROOT, x.file), "utf8")) });
}

// The cross-checks catch what they are there for: each broken copy of deployment.yaml's celer
// container fails the check named.
const baseX = celerContainers.find((x) => x.file === "deploy/kubernetes/deployment.yaml" && !x.kserve);
const crossBroken = [
  ["a misspelt flag --drain-delay-sec", "is a celer serve flag", (x) => { x.c.args[x.c.args.findIndex((a) => a.startsWith("--drain-delay-secs"))] = "--drain-delay-sec=5"; }],
  ["a variable CELER_WORKER", "is a celer serve variable", (x) => { x.c.env.push({ name: "CELER_WORKER", value: "2" }); }],
  ["readiness on /v2/health/readyy", "readinessProbe GET", (x) => { x.c.readinessProbe.httpGet.path = "/v2/health/readyy"; }],
  ["readiness on the grpc port", "readinessProbe GET", (x) => { x.c.readinessProbe.httpGet.port = "grpc"; }],
  ["--metrics-port=9102 beside a metrics port 8002", "named ports", (x) => { x.c.args.push("--metrics-port=9102"); }],
  ["terminationGracePeriodSeconds 35 (= 5 + 30)", "terminationGracePeriodSeconds", (x) => { x.pod.terminationGracePeriodSeconds = 35; }],
  ["a preStop sleep", "no preStop", (x) => { x.c.lifecycle = { preStop: { sleep: { seconds: 5 } } }; }],
  ["CELER_WORKERS from limits.cpu", "CELER_WORKERS from the CPU request", (x) => {
    x.c.env.find((e) => e.name === "CELER_WORKERS").valueFrom.resourceFieldRef.resource = "limits.cpu"; }],
  ["runAsUser 0", "non-root 65532", (x) => { x.c.securityContext.runAsUser = 0; }],
  ["no emptyDir on /tmp", "/tmp is a writable emptyDir", (x) => { x.c.volumeMounts = x.c.volumeMounts.filter((m) => m.mountPath !== "/tmp"); }],
];
for (const [what, expect, mutate] of crossBroken) {
  if (!baseX) break;
  const doc = structuredClone(baseX.doc);
  const x = { ...baseX, doc, pod: doc.spec.template.spec, c: doc.spec.template.spec.containers[0] };
  mutate(x);
  const failed = [];
  celerChecks(x, (name, ok) => { if (!ok) failed.push(name); });
  check(`deployment.yaml broken for the cross-checks (${what}): fails '${expect}'`,
        failed.some((n) => n.includes(expect)), failed);
}

// the commented-out Redis variables of deployment.yaml: valid once uncommented as the comment says
function commentedEnv(text) {
  const lines = text.split("\n");
  const at = lines.findIndex((l) => /uncomment the two variables below/.test(l));
  if (at < 0) return null;
  const out = [];
  for (let i = at + 1; i < lines.length && /^\s*# /.test(lines[i]); i++)
    if (!/is applied|kustomization/.test(lines[i])) out.push(lines[i].replace(/^(\s*)# /, "$1"));
  return yaml.load(out.map((l) => l.replace(/^ {12}/, "")).join("\n"));
}
const base = exported.find((e) => e.file === "deploy/kubernetes/deployment.yaml");
if (base) {
  const env = base.commentedEnv;
  check("deployment.yaml's commented Redis variables parse and name CELER_CACHE_REDIS with the Secret's password",
        Array.isArray(env) && env.some((e) => e.name === "CELER_CACHE_REDIS" && e.value.includes("$(REDIS_PASSWORD)@celer-redis:6379")) &&
        env.some((e) => e.name === "REDIS_PASSWORD" && e.valueFrom?.secretKeyRef?.name === "celer-redis"), env);
  if (Array.isArray(env)) {
    const d = docs.find((x) => x.file === base.file).doc;
    const withRedis = structuredClone(d);
    withRedis.spec.template.spec.containers[0].env.push(...env);
    const f = tsWrite("uncommented", withRedis);
    const e2 = tscErrors()[f];
    check("deployment.yaml with its Redis variables uncommented: valid (tsc, kubernetes-models)",
          !e2 && !(await modelsError(withRedis)), e2);
  }
}
fs.writeFileSync(path.join(OUT, "celer-containers.json"), JSON.stringify(exported, null, 1));

// objects pointing at one another
const deployments = byKind("Deployment").map((d) => d.doc);
const selects = (sel, labels) => Object.entries(sel ?? {}).every(([k, v]) => labels?.[k] === v) && Object.keys(sel ?? {}).length;
for (const { file, doc } of byKind("Service")) {
  const dep = deployments.find((d) => selects(doc.spec.selector, d.spec.template.metadata.labels));
  const cports = (dep?.spec.template.spec.containers ?? []).flatMap((c) => c.ports ?? []).map((p) => p.name);
  check(`${file}: selects a Deployment's pods and targets its named ports`, dep &&
        doc.spec.ports.every((p) => typeof p.targetPort === "string" && cports.includes(p.targetPort)), { cports, ports: doc.spec.ports });
}
for (const { file, doc } of byKind("HorizontalPodAutoscaler")) {
  const dep = deployments.find((d) => d.metadata.name === doc.spec.scaleTargetRef.name);
  check(`${file}: scales a Deployment of the manifests, on CPU, which sets CPU requests and no replicas`,
        dep && doc.spec.scaleTargetRef.kind === "Deployment" && dep.spec.replicas === undefined &&
        doc.spec.metrics.some((m) => m.resource?.name === "cpu") &&
        dep.spec.template.spec.containers.every((c) => c.resources?.requests?.cpu), doc.spec);
}
for (const { file, doc } of byKind("PodDisruptionBudget"))
  check(`${file}: minAvailable 1 over celer's pods`, doc.spec.minAvailable === 1 &&
        deployments.some((d) => d.metadata.name === "celer" && selects(doc.spec.selector.matchLabels, d.spec.template.metadata.labels)));
for (const { file, doc } of byKind("NetworkPolicy")) {
  const from = doc.spec.ingress[0].from[0].podSelector.matchLabels;
  const to = deployments.find((d) => selects(doc.spec.podSelector.matchLabels, d.spec.template.metadata.labels));
  check(`${file}: lets celer's pods reach Redis's port`, selects(from, { "app.kubernetes.io/name": "celer" }) && to &&
        to.spec.template.spec.containers[0].ports.some((p) => p.containerPort === doc.spec.ingress[0].ports[0].port));
}
const runtimes = byKind("ClusterServingRuntime").map((d) => d.doc);
for (const { file, doc } of byKind("InferenceService")) {
  const m = doc.spec.predictor.model;
  const rt = runtimes.find((r) => r.metadata.name === m.runtime);
  check(`${file}: names the runtime of deploy/kserve, which takes its format and protocol`, rt &&
        rt.spec.supportedModelFormats.some((f) => f.name === m.modelFormat.name) && rt.spec.protocolVersions.includes(m.protocolVersion), m);
  check(`${file}: protocolVersion v2 (KServe's default is v1, which the runtime does not list)`, m.protocolVersion === "v2");
}
for (const rt of runtimes)
  check(`ClusterServingRuntime ${rt.metadata.name}: onnx with autoSelect, protocols v2 and grpc-v2, reading /mnt/models`,
        rt.spec.supportedModelFormats.some((f) => f.name === "onnx" && f.autoSelect === true && f.priority >= 1) &&
        ["v2", "grpc-v2"].every((p) => rt.spec.protocolVersions.includes(p)) &&
        rt.spec.containers[0].args.includes("--model-repository=/mnt/models"), rt.spec.supportedModelFormats);

// the ConfigMap's models are examples/repository's
for (const { file, doc } of byKind("ConfigMap")) {
  const dep = exported.find((e) => Object.values(e.configMaps).length);
  const cm = dep && Object.values(dep.configMaps)[0];
  const same = cm?.items.every((it) => {
    const want = fs.readFileSync(path.join(ROOT, "examples/repository", it.path));
    const have = it.key in cm.data ? Buffer.from(cm.data[it.key]) : Buffer.from(cm.binaryData[it.key], "base64");
    return want.equals(have);
  });
  check(`${file}: every file it maps equals examples/repository's`, same, cm?.items);
}
console.log(JSON.stringify({ done: true }));
