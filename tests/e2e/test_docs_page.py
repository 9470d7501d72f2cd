#!/usr/bin/python3
"""End-to-end: the /docs page of `celer serve --docs` in a real browser. Headless Chromium
(Debian's chromium, which scripts/deps.sh --test installs) loads /docs of a server started with
--docs-assets on npm's swagger-ui-dist (installed into a cache folder outside the repository when
missing; the server serves its two files under /docs/assets/) and dumps the DOM Swagger UI
rendered: every operation of /v2/openapi.json is on the page, the infer operation of every model,
pipeline and version of the index among them, and no error box; /v2/models/mlp/docs renders mlp's
operations and no other model's; an operation deep-linked (#/mlp/infer_mlp) opens with its schema.
All of it under the Content-Security-Policy the server sends (checked to be there and strict):
Chromium's console must report no violation of it (the test first proves that a violation would be
reported). Screenshots of both pages are written to $TMPDIR/celer-e2e-docs-page/ (kept, overwritten
by the next run). Without Chromium the test fails, saying to run scripts/deps.sh --test.

usage: test_docs_page.py CELER_BIN EXAMPLE_REPOSITORY
environment: CELER_NODE_CACHE, the folder holding node_modules (default ~/.cache/celer-test/node);
CELER_CHROMIUM, the browser's executable (default Debian's)"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from node_cache import NODE_CACHE, node_modules  # noqa: E402
from test_server import Server, check, check_stopped, summary  # noqa: E402

CELER, REPO_SRC = sys.argv[1], sys.argv[2]
SWAGGER_UI = "swagger-ui-dist@5.35.0"
SHOTS = os.path.join(tempfile.gettempdir(), "celer-e2e-docs-page")
# Headless, no sandbox (the tests may run as root), nothing fetched or reported in the background.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--metrics-recording-only",
         "--disable-default-apps", "--disable-extensions", "--disable-breakpad", "--disable-domain-reliability",
         "--disable-client-side-phishing-detection", "--no-default-browser-check", "--no-pings", "--mute-audio",
         "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]
CONSOLE = re.compile(r"^\[[^\]]*:CONSOLE[^\]]*\] (.*)$", re.M)


def chromium_bin():
    """Debian's browser itself: /usr/bin/chromium is a wrapper that adds flags of its own (remote
    extensions, a dev-shm probe); the flags here are the whole command line."""
    for c in (os.environ.get("CELER_CHROMIUM"), "/usr/lib/chromium/chromium", shutil.which("chromium")):
        if c and os.access(c, os.X_OK):
            return c
    return None


class Browser:
    def __init__(self, exe, tmp):
        self.exe, self.profile = exe, os.path.join(tmp, "profile")
        self.console = []  # every console line of every run: (url, line)

    def run(self, url, *args, timeout=180):
        """One headless run on url; returns (exit code, stdout). The browser and its children are
        killed as a group when it overruns."""
        p = subprocess.Popen([self.exe] + FLAGS + [f"--user-data-dir={self.profile}"] + list(args) + [url],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            err += f"\n(killed after {timeout} s)"
        self.console += [(url, m) for m in CONSOLE.findall(err)]
        self.last_err = err
        return p.returncode, out

    def dom(self, url):
        # virtual time runs only while the page is idle: the document's fetch and Swagger UI's
        # rendering finish before the DOM is dumped, however slow the machine. The window is tall:
        # past about 140 operations (the shared memory endpoints took the example server's document
        # there) the headless page renders only the sections its window shows (800x600: 7
        # operations; 1280x20000: all 144)
        return self.run(url, "--virtual-time-budget=15000", "--window-size=1280,20000", "--dump-dom")

    def screenshot(self, url, path, height):
        if os.path.exists(path):
            os.remove(path)
        code, _ = self.run(url, "--virtual-time-budget=15000", f"--window-size=1280,{height}", f"--screenshot={path}")
        return code


def operations(dom):
    """{(method, path)} of the operations Swagger UI rendered: each .opblock names its method in its
    class and its path in the data-path of its .opblock-summary-path."""
    return {(m.upper(), p) for m, p in
            re.findall(r'class="opblock opblock-(\w+)[^"]*".*?class="opblock-summary-path"[^>]*data-path="([^"]*)"', dom, re.S)}


def is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def doc_operations(doc):
    return {(m.upper(), p) for p, item in doc.get("paths", {}).items() for m in item
            if m in ("get", "put", "post", "delete", "options", "head", "patch", "trace")}


def main():
    exe = chromium_bin()
    check("Chromium is installed", exe is not None,
          "no chromium: run scripts/deps.sh --test (it installs Debian's chromium), or set CELER_CHROMIUM")
    have = node_modules([SWAGGER_UI])
    check("swagger-ui-dist is installed (npm)", have is not None, f"npm could not install {SWAGGER_UI} into {NODE_CACHE}")
    if exe is None or have is None:
        return summary()
    assets = os.path.join(NODE_CACHE, "node_modules", "swagger-ui-dist")
    tmp = tempfile.mkdtemp(prefix="celer-e2e-docs-")
    os.makedirs(SHOTS, exist_ok=True)
    browser = Browser(exe, tmp)
    try:
        # a page breaking its own policy: proves that a violation reaches the console lines read here
        probe = ("data:text/html," + urllib.parse.quote(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"script-src 'none'\"><script>1</script>"))
        browser.dom(probe)
        check("a CSP violation shows in Chromium's console log (the detector works)",
              any("Content Security Policy" in line for _, line in browser.console), browser.last_err[-2000:])
        browser.console.clear()

        srv = Server(REPO_SRC, "--docs", "--docs-assets", assets)
        base = f"http://127.0.0.1:{srv.port}"
        status, page, headers = srv.request("GET", "/docs")
        page = page.decode(errors="replace")
        csp = headers.get("Content-Security-Policy", "")
        check("GET /docs: 200, text/html", status == 200 and headers.get("Content-Type", "").startswith("text/html"),
              (status, headers))
        script_src = re.search(r"script-src ([^;]*)", csp)
        check("/docs sends a strict Content-Security-Policy (default-src 'none', scripts from itself only)",
              "default-src 'none'" in csp and script_src and "'unsafe-inline'" not in script_src.group(1)
              and "'unsafe-eval'" not in script_src.group(1) and "<script>" not in page, (csp, page[:600]))
        check("/docs loads Swagger UI from /docs/assets/ (a local --docs-assets)",
              'src="/docs/assets/swagger-ui-bundle.js"' in page and 'href="/docs/assets/swagger-ui.css"' in page, page)
        with open(os.path.join(assets, "swagger-ui-bundle.js"), "rb") as f:
            bundle = f.read()
        status, body, headers = srv.request("GET", "/docs/assets/swagger-ui-bundle.js")
        check("/docs/assets/swagger-ui-bundle.js: the file, as JavaScript",
              status == 200 and body == bundle and "javascript" in headers.get("Content-Type", ""),
              (status, len(body), len(bundle), headers))
        codes = [srv.request("GET", "/docs/assets/" + f)[0] for f in ("index.html", "package.json", "..%2Fpackage.json")]
        check("/docs/assets/ serves those two files only", codes == [404, 404, 404], codes)

        _, doc, _ = srv.json("GET", "/v2/openapi.json")
        _, index, _ = srv.json("POST", "/v2/repository/index", {})
        infer = set()
        for e in index:
            infer.add(("POST", f"/v2/models/{e['name']}/infer"))
            if e.get("version"):
                infer.add(("POST", f"/v2/models/{e['name']}/versions/{e['version']}/infer"))

        code, dom = browser.dom(base + "/docs")
        ops = operations(dom)
        check("/docs renders in Chromium (exit 0, operations on the page)", code == 0 and ops,
              f"exit {code}: {dom[:500]} {browser.last_err[-1500:]}")
        check("/docs: the infer operation of every model, pipeline and version of the index is on the page",
              infer and infer <= ops, f"missing: {sorted(infer - ops)}")
        want = doc_operations(doc)
        check("/docs: every operation of /v2/openapi.json is on the page, and no other",
              ops == want, f"missing: {sorted(want - ops)[:20]}; extra: {sorted(ops - want)[:20]}")
        check("/docs: Swagger UI shows no error", "errors-wrapper" not in dom and "Failed to load API definition" not in dom,
              re.findall(r'errors-wrapper.{0,800}', dom, re.S)[:1])

        code, dom = browser.dom(base + "/v2/models/mlp/docs")
        ops = operations(dom)
        _, mlp_doc, _ = srv.json("GET", "/v2/models/mlp/openapi.json")
        foreign = {p for _, p in ops if not (p.startswith("/v2/models/mlp/") or p == "/v2/models/mlp"
                                            or p == "/v1/models/mlp:predict" or p.startswith("/v2/repository/models/mlp/"))}
        check("/v2/models/mlp/docs: mlp's operations only, all of its document's",
              code == 0 and ("POST", "/v2/models/mlp/infer") in ops and not foreign and ops == doc_operations(mlp_doc),
              f"exit {code}; not mlp's: {sorted(foreign)}; want {sorted(doc_operations(mlp_doc) - ops)} too; got {sorted(ops)}")

        # deep link: the operation opens with its request body and schema rendered
        code, dom = browser.dom(base + "/v2/models/mlp/docs#/mlp/infer_mlp")
        check("/v2/models/mlp/docs#/mlp/infer_mlp: the infer operation opens with its request body",
              code == 0 and "opblock-body" in dom and "features" in dom and "FP32" in dom,
              f"exit {code}: {len(dom)} bytes of DOM")

        shots = []
        for url, name, height in ((base + "/docs", "docs.png", 4000),
                                  (base + "/v2/models/mlp/docs#/mlp/infer_mlp", "mlp-docs.png", 3000)):
            path = os.path.join(SHOTS, name)
            code = browser.screenshot(url, path, height)
            size = os.path.getsize(path) if os.path.exists(path) else 0
            check(f"screenshot of {url[len(base):]}: {path}", code == 0 and size > 20000 and is_png(path),
                  f"exit {code}, {size} bytes {browser.last_err[-800:]}")
            shots.append(path)
        print("screenshots: " + " ".join(shots), flush=True)

        for url, line in browser.console:
            print(f"console ({url[len(base):]}): {line}", flush=True)
        violations = [f"{url[len(base):]}: {line}" for url, line in browser.console if "Content Security Policy" in line]
        check("no Content-Security-Policy violation in Chromium's console on the /docs pages", not violations,
              "\n".join(violations))
        check_stopped(srv)

        # the default --docs-assets, a URL (not loaded here: the test needs no network): the page
        # takes Swagger UI from it, and the policy lets that origin give scripts and styles, not data
        srv = Server(REPO_SRC, "--docs")
        status, page, headers = srv.request("GET", "/docs")
        page, csp = page.decode(errors="replace"), headers.get("Content-Security-Policy", "")
        urls = re.findall(r'(?:src|href)="(https://[^"]+)"', page)
        origins = {re.match(r"https://[^/]+", u).group(0) for u in urls}

        def directive(name):
            m = re.search(r"(?:^|;)\s*" + name + r" ([^;]*)", csp)
            return m.group(1).split() if m else []
        check("--docs alone: Swagger UI's two files from a URL, whose origin the policy allows for scripts and styles, "
              "not for connections", status == 200 and len(urls) == 2 and origins and all(
                  o in directive("script-src") and o in directive("style-src") and o not in directive("connect-src")
                  for o in origins), (status, urls, csp))
        check("SIGTERM exits 0 (default assets)", srv.stop() == 0, srv.output()[-2000:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
