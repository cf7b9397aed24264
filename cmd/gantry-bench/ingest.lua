-- wrk script of `gantry-bench ingest`. The floor and the intake runs get this same script, so
-- both receive the same requests.
--
-- args (after wrk's "--"): webhook token, run nonce (8 hex digits), path of the payload
-- template, in which every "@SHA@" becomes the commit SHA of the request.
--
-- Every request carries a new commit SHA and a new Idempotency-Key: gantry collapses a
-- repeated delivery or a repeated (project, ref, SHA) into one pipeline, and the benchmark
-- measures new events. SHA = nonce (8) .. thread number (4) .. zeros (20) .. counter (8).

local threads = {}

-- setup runs in wrk's main Lua state, before the thread's init: it numbers the threads.
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local parts, prefix, counter = {}, "", 0

function init(args)
  local token, nonce, template = args[1], args[2], args[3]
  local f = assert(io.open(template, "rb"))
  local text = f:read("*a")
  f:close()
  local from = 1
  while true do
    local s, e = string.find(text, "@SHA@", from, true)
    if not s then break end
    table.insert(parts, string.sub(text, from, s - 1))
    from = e + 1
  end
  table.insert(parts, string.sub(text, from))
  prefix = nonce .. string.format("%04x", tid) .. string.rep("0", 20)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-Gitlab-Event"] = "Push Hook"
  wrk.headers["X-Gitlab-Token"] = token
end

function request()
  counter = counter + 1
  local sha = prefix .. string.format("%08x", counter)
  wrk.headers["Idempotency-Key"] = "bench-" .. sha
  return wrk.format(nil, nil, nil, table.concat(parts, sha))
end

-- done prints one machine-readable line; gantry-bench reads it instead of wrk's human report.
-- Latencies are in microseconds. errors_status counts answers above 399.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d bytes=%d errors_connect=%d errors_read=%d errors_write=%d " ..
    "errors_status=%d errors_timeout=%d p50_us=%d p75_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(75), latency:percentile(90), latency:percentile(99), latency.max))
end
