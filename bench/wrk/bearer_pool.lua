-- The bearer gate with many tokens: cycles through the access tokens in
-- the files given, so the gate's cache is filled as in real use.
-- wrk -s bearer_pool.lua <url> -- <token file>...
function init(args)
  tokens = {}
  for i = 1, #args do
    for t in io.lines(args[i]) do tokens[#tokens + 1] = t end
  end
  n = 0
end

function request()
  n = n + 1
  return wrk.format("GET", nil, {["Authorization"] = "Bearer " .. tokens[(n % #tokens) + 1]})
end
