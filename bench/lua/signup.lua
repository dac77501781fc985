-- POST signup with a phone never seen before: args = prefix (e.g. +7991), first number.
-- Each request comes from its own client address, as nginx forwards it (X-Forwarded-For).
-- The numbers are spread as real signups are, not one after another: n times 1,000,003 modulo
-- 10^7 is a different 7-digit number for each n (1,000,003 is prime to 10), and two requests in
-- a row fall in different prefixes, so they do not queue for one prefix's counter row of the
-- fraud guard (accounts.guard), which sequential numbers (10,000 to a prefix) would.
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
    string.format('{"phone":"%s%07d"}', prefix, (n * 1000003) % 10000000))
end
