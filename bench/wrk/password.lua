-- The password grant from a pool of clients and users: thread n is
-- client n of the pool (wrk's responses cannot be matched to requests
-- across a thread's connections, and refresh.lua needs each token's
-- client), each thread cycles through 1000 users.
-- wrk -s password.lua <url> -- <outdir> <Basic credentials of client 1> ...
-- Each thread writes the refresh tokens it gets to <outdir>/rt-<n>.txt,
-- and the access tokens to <outdir>/at-<n>.txt.
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

function init(args)
  local clients = {}
  for i = 2, #args do clients[#clients + 1] = args[i] end
  basic = "Basic " .. clients[((id - 1) % #clients) + 1]
  out = io.open(args[1] .. "/rt-" .. id .. ".txt", "w")
  access = io.open(args[1] .. "/at-" .. id .. ".txt", "w")
  n = 0
end

function request()
  n = n + 1
  local user = n % 1000
  local headers = {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = basic,
  }
  return wrk.format("POST", nil, headers, "grant_type=password&username=user" .. user .. "&password=pw" .. user)
end

function response(status, headers, body)
  if status == 200 then
    local rt = string.match(body, '"refresh_token":"([^"]+)"')
    if rt then out:write(rt, "\n") end
    local at = string.match(body, '"access_token":"([^"]+)"')
    if at then access:write(at, "\n") end
  end
end
