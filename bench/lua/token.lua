-- POST token with a seeded code, a different phone each request: args = phones file, first line,
-- code, thread count (the slicing of patch.lua).
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
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"},
    '{"phone":"' .. phone .. '","confirmation_code":"' .. code .. '"}')
end
