-- POST token with a seeded code, a different phone each request: args = phones file, first line,
-- code, thread count (the slicing of patch.lua). Each request comes from its own client address,
-- as nginx forwards it (X-Forwarded-For): a login takes its address's lock (accounts.services).
local phones = {}
local i = 0
local code
init = function(args)
  local first, stride = tonumber(args[2]), tonumber(args[4])
  local n = 0
  for line in io.lines(args[1]) do
    if n >= first and (n - first) % stride == tid then phones[#phones + 1] = line end
    n = n + 1
  end
  code = args[3]
end
request = function()
  i = i + 1
  local phone = phones[i] or phones[#phones]
  local n = tid * 1000000 + i
  local client = string.format("10.%d.%d.%d", 128 + math.floor(n / 65536) % 128, math.floor(n / 256) % 256, n % 256)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["X-Forwarded-For"] = client},
    '{"phone":"' .. phone .. '","confirmation_code":"' .. code .. '"}')
end
