#!/usr/bin/python3
"""End-to-end: the OpenAPI documents `celer serve` publishes, checked by tools nobody here wrote.
@apidevtools/swagger-parser, ajv 8 with ajv-formats, openapi-typescript and typescript (installed
with npm into a cache folder outside the repository when missing) run in tests/openapi/check.mjs
against the live server on the example repository: /v2/openapi.json and every model's, pipeline's
and version's document (the models taken from POST /v2/repository/index) pass swagger-parser's
validate(); each infer operation's example fits its request schema, is answered 200 by the server,
and the answer fits the 200 schema; a wrong datatype or a business-object field of the wrong JSON
type fails the schema and is refused with 400; a TypeScript client (tests/openapi/client.ts) typed
by openapi-typescript from mlp's document compiles with tsc --strict and gets its answer, and the
same client with a wrong datatype literal or a shape mlp does not take does not compile (the
generated types are that precise: literal names and datatypes, shapes as tuples). With --docs the
documents list the /docs pages and still validate; without, /docs is 404. SIGTERM exits 0. If the
npm packages cannot be installed the test fails: it never passes without having run.

usage: test_openapi.py CELER_BIN EXAMPLE_REPOSITORY
environment: CELER_NODE_CACHE, the folder holding node_modules (default ~/.cache/celer-test/node)"""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from node_cache import NODE_CACHE, node_modules, run_checks  # noqa: E402
from test_server import Server, check, check_stopped, summary  # noqa: E402

CELER, REPO_SRC = sys.argv[1], sys.argv[2]
CHECK_JS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "openapi", "check.mjs")
IDLE = ("--request-timeout-secs", "600")
NODE_PACKAGES = ["@apidevtools/swagger-parser@12.1.0",  # 13 wants Node >= 22.19
                 "ajv@8.20.0", "ajv-formats@3.0.1",
                 "openapi-typescript@7.13.0", "typescript@5.9.3"]  # openapi-typescript 7 wants typescript 5


def run_check(srv, tmp, *extra):
    """Runs check.mjs against srv; its JSON lines become checks here. False when it did not finish."""
    return run_checks(["node", CHECK_JS, f"http://127.0.0.1:{srv.port}", os.path.join(NODE_CACHE, "node_modules"), tmp]
                      + list(extra), check)


def main():
    have = node_modules(NODE_PACKAGES)
    check("swagger-parser, ajv, ajv-formats, openapi-typescript and typescript are installed (npm)", have is not None,
          f"npm could not install {NODE_PACKAGES} into {NODE_CACHE}")
    if have is None:
        return summary()
    tmp = tempfile.mkdtemp(prefix="celer-e2e-openapi-")
    try:
        # node's fetch keeps connections open while tsc compiles (tens of seconds on a busy
        # machine): the server must not close them as idle meanwhile
        srv = Server(REPO_SRC, *IDLE)
        status, doc, headers = srv.json("GET", "/v2/openapi.json")
        check("GET /v2/openapi.json: 200, application/json", status == 200 and isinstance(doc, dict)
              and headers.get("Content-Type", "").startswith("application/json"), (status, headers))
        check("without --docs: the document lists no /docs page", isinstance(doc, dict) and not any(
            p == "/docs" or p.endswith("/docs") for p in doc.get("paths", {})), list(doc.get("paths", {}))[:20])
        status, body, _ = srv.json("GET", "/docs")
        check("without --docs: GET /docs is 404 naming --docs", status == 404 and "--docs" in body.get("error", ""),
              (status, body))
        status, body, _ = srv.json("GET", "/v2/models/no_such_model/openapi.json")
        check("the document of an unknown model: 404 naming it", status == 404 and "no_such_model" in str(body),
              (status, body))
        status, body, _ = srv.json("GET", "/v2/models/mlp/versions/9/openapi.json")
        check("the document of an unknown version: 404", status == 404, (status, body))
        run_check(srv, tmp)
        check_stopped(srv)

        # with --docs (assets from a URL, the default): the pages are listed, the documents still valid
        srv = Server(REPO_SRC, "--docs", *IDLE)
        _, doc, _ = srv.json("GET", "/v2/openapi.json")
        paths = doc.get("paths", {}) if isinstance(doc, dict) else {}
        check("with --docs: /v2/openapi.json lists GET /docs and GET /v2/models/mlp/docs",
              "get" in paths.get("/docs", {}) and "get" in paths.get("/v2/models/mlp/docs", {}),
              [p for p in paths if "docs" in p])
        run_check(srv, os.path.join(tmp, "docs"), "--validate-only", "mlp")
        check("SIGTERM exits 0 (--docs)", srv.stop() == 0, srv.output()[-2000:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
