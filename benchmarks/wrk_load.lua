-- wrk script shared by the serving benchmark: random customers from a file, a bounded number of requests,
-- a request cap per thread (WRK_MAX; wrk still ends the run at -d), and a JSON summary (latency percentiles in microseconds, error counts) on the last line of output.
-- Environment: WRK_IDS (file of customer ids, one per line), WRK_KIND (predict | feast),
-- WRK_BATCH (customers per request), WRK_MAX (requests per thread, then the thread stops).
local ids = {}
for line in io.lines(os.getenv("WRK_IDS")) do ids[#ids + 1] = line end
local kind = os.getenv("WRK_KIND") or "predict"
local batch = tonumber(os.getenv("WRK_BATCH") or "1")
local max_requests = tonumber(os.getenv("WRK_MAX") or "1000")
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(1000 + tid)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

local function pick()
  if batch == 1 then return ids[math.random(#ids)] end
  local chosen = {}
  for i = 1, batch do chosen[i] = ids[math.random(#ids)] end
  return table.concat(chosen, ",")
end

function request()
  local body, path
  if kind == "feast" then
    path = "/get-online-features"
    body = '{"feature_service":"churn_prediction","entities":{"customer_id":[' .. pick() .. ']}}'
  elseif batch == 1 then
    path = "/predict"
    body = '{"customer_id":' .. pick() .. '}'
  else
    path = "/predict/batch"
    body = '{"customer_ids":[' .. pick() .. ']}'
  end
  return wrk.format(nil, path, nil, body)
end

function response(status, headers, body)
  counter = counter + 1
  if counter >= max_requests then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"errors_connect":%d,"errors_read":%d,"errors_write":%d,' ..
    '"errors_status":%d,"errors_timeout":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean))
end
