-- POST signup with a phone never seen before: args = prefix (e.g. +7991), first number.
local i = 0
local prefix, first
init = function(args)
  prefix, first = args[1], tonumber(args[2]) + tid * 100000
end
request = function()
  i = i + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"},
    string.format('{"phone":"%s%07d"}', prefix, first + i))
end
