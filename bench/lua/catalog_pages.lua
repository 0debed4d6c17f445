-- Browse the product list page by page: each response's next_cursor is the next request's
-- cursor, so the run walks deep into the catalog, not just its first page. Argument: the
-- query string of the first page (e.g. "locale=de&limit=20"). Each request carries a
-- parameter of its own that the store ignores, so none is answered from the gateway's page
-- cache: this workload measures what a page costs the catalog as the catalog grows.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local query
local cursors = {}
local sent = 0

function init(args)
   query = args[1] or "limit=20"
end

function request()
   sent = sent + 1
   local path = "/api/store/products?" .. query .. "&uncached=" .. sent
   local cursor = table.remove(cursors)
   if cursor ~= nil then
      path = path .. "&cursor=" .. cursor
   end
   return wrk.format("GET", path)
end

local function urlencode(text)
   return (text:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

function response(status, headers, body)
   if status == 200 then
      local cursor = body:match('"next_cursor"%s*:%s*"([^"]+)"')
      if cursor ~= nil then
         cursors[#cursors + 1] = urlencode(cursor)
      end
   end
end
