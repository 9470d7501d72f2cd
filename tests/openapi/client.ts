// A client of mlp typed by nothing but its OpenAPI document: tests/openapi/check.mjs writes ./api.d.ts
// with openapi-typescript from GET /v2/models/mlp/openapi.json next to a copy of this file, compiles
// both with tsc --strict and runs the result. It builds a request of the generated type, POSTs it
// with fetch, reads the answer as the generated 200 type and prints {request, response} as JSON.
// check.mjs also compiles copies with a marked line made wrong (datatype "INT64", a shape of 15
// features), which must not compile.
//
// usage: node out/client.js BASE_URL
import type { paths } from "./api.js";

declare const process: { argv: string[]; exitCode?: number }; // Node's, without @types/node

type Infer = paths["/v2/models/mlp/infer"]["post"];
type InferRequest = NonNullable<Infer["requestBody"]>["content"]["application/json"];
type InferResponse = Infer["responses"][200]["content"]["application/json"];

const rows = 2;
const request: InferRequest = {
  id: "typed-client",
  inputs: [
    {
      name: "features",
      shape: [rows, 16], // celer-check: shape
      datatype: "FP32", // celer-check: datatype
      data: Array.from({ length: rows * 16 }, (_, i) => ((i * 7) % 13) / 13 - 0.5),
    },
  ],
  outputs: [{ name: "scores" }],
};

const base = process.argv[2];
const r = await fetch(`${base}/v2/models/mlp/infer`, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(request),
});
if (r.status !== 200) {
  console.error(`HTTP ${r.status}: ${await r.text()}`);
  process.exitCode = 1;
} else {
  const response = (await r.json()) as InferResponse;
  const scores = response.outputs.find((o) => o.name === "scores");
  const shape: number[] = scores ? scores.shape : [];
  console.error(`model ${response.model_name} version ${response.model_version}: scores of shape ${shape.join("x")}`);
  console.log(JSON.stringify({ request, response }));
}
