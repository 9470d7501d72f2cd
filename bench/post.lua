-- wrk script: POSTs one JSON body (a file) on every request and prints one machine-readable line.
--   wrk -t2 -c64 -d10s -s post.lua http://127.0.0.1:PORT/path -- BODY.json ["Name: value" ...]
-- (the optional arguments after the body are extra request headers, e.g. Triton's
-- "Inference-Header-Content-Length: N" for a binary-tensor body)
-- Output: "BENCH requests=N seconds=S p50_ms=X p99_ms=Y http_errors=N socket_errors=N"
-- (http_errors: responses with status > 399, as wrk counts them; nothing here answers 3xx)
--
-- The request is set up once in init and defines no request() or response(): wrk then sends
-- the same prebuilt bytes without calling Lua per request. A request() function cost the client
-- about 20% more CPU, taken from the servers it shares the cores with.

function init(args)
  local f = assert(io.open(args[1], "rb"), "cannot open body file " .. tostring(args[1]))
  wrk.body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  for i = 2, #args do
    local name, value = args[i]:match("^([^:]+):%s*(.*)$")
    assert(name, "a header must be 'Name: value', got " .. args[i])
    wrk.headers[name] = value
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d seconds=%.3f p50_ms=%.3f p99_ms=%.3f http_errors=%d socket_errors=%d\n",
    summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    e.status, e.connect + e.read + e.write + e.timeout))
end
