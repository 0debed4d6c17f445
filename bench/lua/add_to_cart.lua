-- POST /api/store/cart/lines. Arguments: a file of pricing ids, and optionally a file of Cookie
-- header values. Without cookies every request is a new shopper (wrk keeps no cookies, so the
-- gateway issues a new anonymous identity each time); with them, returning shoppers add to
-- their existing carts, rotating through a few pricings so carts stay a few lines long.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local pricings, cookies, i

function init(args)
   pricings = common.lines(args[1])
   cookies = common.lines(args[2])
   i = (thread_index or 0) * 7919
end

function request()
   i = i + 1
   local headers = { ["Content-Type"] = "application/json" }
   if #cookies > 0 then
      headers["Cookie"] = cookies[(i % #cookies) + 1]
   end
   local pricing = pricings[(math.floor(i / math.max(#cookies, 1)) % #pricings) + 1]
   local body = '{"pricing_id":"' .. pricing .. '","quantity":1}'
   return wrk.format("POST", "/api/store/cart/lines", headers, body)
end
