-- wrk script: POST a sequence of AdmissionReview bodies over kept-alive connections and report JSON.
--
-- Usage: wrk -s bench/admission.lua URL -- PATH BODYFILE [BODYFILE ...]
-- Requests are formatted once in init() and cycled in order (each connection advances one shared per-thread
-- counter), so the per-request cost in wrk is one table lookup. done() prints one line that starts with
-- "WRK_JSON " followed by the summary as JSON (latencies in microseconds); bench/loadgen.py parses it.
-- wrk counts HTTP status > 399 in errors.status; anything else that is not 200 is caught by response().

local requests = {}
local count = 0
local index = 0
non200 = 0  -- global: done() reads it from every thread with thread:get()
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

function init(args)
  local path = args[1]
  local headers = { ["Content-Type"] = "application/json" }
  for i = 2, #args do
    count = count + 1
    requests[count] = wrk.format("POST", path, headers, read_file(args[i]))
  end
  assert(count > 0, "no body files given")
end

function request()
  index = index % count + 1
  return requests[index]
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
  end
end

function done(summary, latency, requests_)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + (thread:get("non200") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"non200":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"stdev":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout, bad,
    latency.min, latency.mean, latency.max, latency.stdev,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
