"""npm packages for the end-to-end tests, installed into a cache folder outside the repository
(nothing from npm is ever copied into it): the folder holding node_modules is CELER_NODE_CACHE,
~/.cache/celer-test/node by default. Packages are pinned (name@version); one missing or at another
version is installed with npm, the others are used as they are, offline. Tests running at once
install one after the other (a lock file in the cache), so two npm processes never write the same
node_modules."""
import fcntl
import json
import os
import subprocess

NODE_CACHE = os.environ.get("CELER_NODE_CACHE") or os.path.expanduser("~/.cache/celer-test/node")


def _installed(spec):
    name, _, version = spec.rpartition("@")
    if not name:  # no version given: any will do
        name, version = spec, None
    try:
        with open(os.path.join(NODE_CACHE, "node_modules", name, "package.json")) as f:
            have = json.load(f).get("version")
    except (OSError, ValueError):
        return False
    return version is None or have == version


def node_modules(packages, timeout=600):
    """NODE_CACHE once every package of `packages` (["name@version", ...]) is in its node_modules;
    installs the missing ones. None (the reason printed) when npm cannot install them. Install
    scripts do not run (none of the packages needs one; swagger-ui-dist's would send analytics)."""
    if all(_installed(p) for p in packages):
        return NODE_CACHE
    os.makedirs(NODE_CACHE, exist_ok=True)
    with open(os.path.join(NODE_CACHE, ".install.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test may be installing into the same folder
        missing = [p for p in packages if not _installed(p)]
        if not missing:
            return NODE_CACHE
        print(f"npm install {' '.join(missing)} into {NODE_CACHE}", flush=True)
        try:
            r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", "--save-exact",
                                "--prefix", NODE_CACHE] + missing, capture_output=True, text=True, timeout=timeout,
                               env=dict(os.environ, SCARF_ANALYTICS="false"))
        except (OSError, subprocess.TimeoutExpired) as e:
            print(f"npm install failed: {e}", flush=True)
            return None
        if r.returncode != 0 or not all(_installed(p) for p in packages):
            print(f"npm install failed ({r.returncode}): {r.stderr[-2000:]}", flush=True)
            return None
    return NODE_CACHE


def run_checks(argv, check, timeout=300):
    """Runs a node script (argv) that prints a JSON line per check ({"name", "ok", "detail"}) and
    {"done": true} at its end: each becomes check(name, ok, detail), other lines are printed.
    False when the script did not run to its end."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        check(f"{os.path.basename(argv[1])} finishes within {timeout} s", False, (e.stdout or b"")[-2000:])
        return False
    done = False
    for line in r.stdout.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            print(line, flush=True)
            continue
        if doc.get("done"):
            done = True
        else:
            check(doc["name"], doc["ok"], doc.get("detail", ""))
    if r.stderr:
        print(r.stderr[-3000:], flush=True)
    check(f"{os.path.basename(argv[1])} ran to its end", r.returncode == 0 and done, f"exit {r.returncode}: {r.stderr[-3000:]}")
    return done
