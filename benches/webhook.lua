-- wrk script for benches/webhook.sh: posts Alertmanager v4 payloads, each
-- alert with a fresh fingerprint (so nothing is a duplicate), and waits
-- `delay_ms` after each response on each connection (rate limit).
-- Args: alerts_per_request delay_ms token
local threadid = 0
function setup(thread)
  thread:set("tid", threadid)
  threadid = threadid + 1
end

function init(args)
  per = tonumber(args[1]) or 1
  delay_ms = tonumber(args[2]) or 20
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. (args[3] or "")
  n = 0
end

function request()
  local parts = {}
  for i = 1, per do
    n = n + 1
    local fp = string.format("%02x%02x%012x", per, tid, n) -- unique across the runs of one bench
    parts[i] = '{"status":"firing","labels":{"alertname":"BenchAlert","severity":"critical","instance":"bench-host:9947",' ..
      '"unit":"bench-' .. per .. '-' .. tid .. '-' .. n .. '.service"},"annotations":{"summary":"load test"},"startsAt":"2026-01-01T00:00:00Z","endsAt":"0001-01-01T00:00:00Z",' ..
      '"generatorURL":"http://prometheus/graph","fingerprint":"' .. fp .. '"}'
  end
  local body = '{"receiver":"hostmedic","status":"firing","alerts":[' .. table.concat(parts, ",") ..
    '],"groupLabels":{"alertname":"BenchAlert"},"commonLabels":{},"commonAnnotations":{},' ..
    '"externalURL":"http://alertmanager","version":"4","groupKey":"bench","truncatedAlerts":0}'
  return wrk.format("POST", nil, nil, body)
end

function delay()
  return delay_ms
end
