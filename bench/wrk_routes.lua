-- wrk request generator: the app's three routes in turn, like app.traffic does.
local paths = {"/", "/api/apm", "/api/trace"}
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
