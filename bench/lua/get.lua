-- GET one path (the URL's) or, with a file of paths as the first argument, rotate through them;
-- an optional second argument is a file of Cookie header values (one shopper per line).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local paths, cookies, i

function init(args)
   paths = common.lines(args[1])
   cookies = common.lines(args[2])
   i = (thread_index or 0) * 7919
end

function request()
   i = i + 1
   local headers = {}
   if #cookies > 0 then
      headers["Cookie"] = cookies[(i % #cookies) + 1]
   end
   local path = nil
   if #paths > 0 then
      path = paths[(i % #paths) + 1]
   end
   return wrk.format("GET", path, headers)
end
