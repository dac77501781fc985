-- PATCH my_profile, a different user each request: args = tokens file, first line, inviter code,
-- thread count. Thread `tid` takes lines first+tid, first+tid+threads, ... (pre-minted JWTs).
local tokens = {}
local i = 0
local body
init = function(args)
  local first, stride = tonumber(args[2]), tonumber(args[4])
  local n = 0
  for line in io.lines(args[1]) do
    if n >= first and (n - first) % stride == tid then tokens[#tokens + 1] = line end
    n = n + 1
  end
  body = '{"my_inviter":"' .. args[3] .. '"}'
end
request = function()
  i = i + 1
  -- Past the end the last user repeats: wrk then counts 400s, and bench/run.py reports them.
  local token = tokens[i] or tokens[#tokens]
  return wrk.format("PATCH", nil,
    {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}, body)
end
