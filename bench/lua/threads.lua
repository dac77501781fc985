-- Each wrk thread gets its own number (tid), so threads draw disjoint slices of fresh input.
local made = 0
setup = function(thread)
  thread:set("tid", made)
  made = made + 1
end
