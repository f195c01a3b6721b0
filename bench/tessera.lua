-- wrk script for Tessera's CosyncJWT routes. MODE picks the scenario:
--   login    POST /api/appuser/login cycling over USERS seeded users (form body, as Swift sends)
--   anon     POST /api/appuser/loginAnonymous cycling over ANON seeded anonymous users
--   getuser  GET  /api/appuser/getUser with one access-token (ACCESS)
--   signup   POST /api/appuser/signup with a unique handle per request (flow none)
--   jwks     GET  /apps/APP_ID/.well-known/jwks.json
--   mixed    of every 20 requests: 1 login, 4 loginAnonymous, 9 getUser, 6 JWKS
-- DELAY_MS (optional) makes each connection wait that long between requests, to hold a rate.
-- done() prints one machine-readable "RESULT ..." line.
local mode = os.getenv("MODE") or "jwks"
local app_token = os.getenv("APP_TOKEN") or ""
local app_id = os.getenv("APP_ID") or ""
local access = os.getenv("ACCESS") or ""
local nusers = tonumber(os.getenv("USERS") or "10000")
local nanon = tonumber(os.getenv("ANON") or "1000")
local nonce = os.getenv("NONCE") or tostring(os.time())
local password = "2eb62d171ba8491db496081a8b24738a" -- MD5 of "correct-horse"

local next_tid = 1
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end

local counter = 0
function init(args)
  counter = ((tid or 1) - 1) * 7777
end

local form = { ["Content-Type"] = "application/x-www-form-urlencoded", ["app-token"] = app_token }
local user = { ["access-token"] = access }

local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end

local function pick()
  if mode ~= "mixed" then
    return mode
  end
  local k = counter % 20
  if k == 0 then return "login" elseif k <= 4 then return "anon" elseif k <= 13 then return "getuser" end
  return "jwks"
end

function request()
  counter = counter + 1
  local mode = pick()
  if mode == "login" then
    local body = string.format("handle=user%d%%40bench.local&password=%s", counter % nusers, password)
    return wrk.format("POST", "/api/appuser/login", form, body)
  elseif mode == "anon" then
    return wrk.format("POST", "/api/appuser/loginAnonymous", form,
      string.format("handle=ANON_bench%d", counter % nanon))
  elseif mode == "getuser" then
    return wrk.format("GET", "/api/appuser/getUser", user)
  elseif mode == "signup" then
    local body = string.format("handle=su-%s-%d-%d%%40bench.local&password=%s", nonce, tid or 0, counter, password)
    return wrk.format("POST", "/api/appuser/signup", form, body)
  else
    return wrk.format("GET", "/apps/" .. app_id .. "/.well-known/jwks.json")
  end
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT mode=%s requests=%d duration_s=%.2f rps=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f non2xx=%d err_connect=%d err_read=%d err_write=%d err_timeout=%d\n",
    mode, summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect, e.read, e.write, e.timeout))
end
