-- The refresh grant. Each refresh token works once, so thread n reads
-- the tokens password.lua saved for its client and follows the chains:
-- the token a response brings is used by a later request.
-- wrk -s refresh.lua <url> -- <outdir> <Basic credentials of client 1> ...
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

function init(args)
  local clients = {}
  for i = 2, #args do clients[#clients + 1] = args[i] end
  basic = "Basic " .. clients[((id - 1) % #clients) + 1]
  queue, head, tail = {}, 1, 0
  for rt in io.lines(args[1] .. "/rt-" .. id .. ".txt") do
    tail = tail + 1
    queue[tail] = rt
  end
end

function request()
  local rt = ""
  if head <= tail then
    rt = queue[head]
    queue[head] = nil
    head = head + 1
  end
  local headers = {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = basic,
  }
  return wrk.format("POST", nil, headers, "grant_type=refresh_token&refresh_token=" .. rt)
end

function response(status, headers, body)
  if status == 200 then
    local rt = string.match(body, '"refresh_token":"([^"]+)"')
    if rt then
      tail = tail + 1
      queue[tail] = rt
    end
  end
end
