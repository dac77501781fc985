-- POST signup with a phone never seen before: args = prefix (e.g. +7991), first number.
-- Each request comes from its own client address, as nginx forwards it (X-Forwarded-For).
local i = 0
local prefix, first
init = function(args)
  prefix, first = args[1], tonumber(args[2]) + tid * 100000
end
request = function()
  i = i + 1
  local n = first + i
  local client = string.format("10.%d.%d.%d", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["X-Forwarded-For"] = client},
    string.format('{"phone":"%s%07d"}', prefix, n))
end
