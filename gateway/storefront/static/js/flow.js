// The trip to the payment page and back. The order being paid is remembered for the tab,
// because the payment page returns to fixed URLs that cannot name an order not yet created.
import { api, newIdempotencyKey } from "./api.js";

const PENDING = "store.pending";

export function navigate(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}

export function returnUrls() {
  const shop = `${location.origin}/shop/`;
  return { success_url: `${shop}#/thanks`, cancel_url: `${shop}#/cancelled` };
}

export function setPending(value) {
  sessionStorage.setItem(PENDING, JSON.stringify(value));
}

export function pending() {
  try {
    return JSON.parse(sessionStorage.getItem(PENDING) || "null");
  } catch {
    return null;
  }
}

export function clearPending() {
  sessionStorage.removeItem(PENDING);
}

/** Off to the payment page: the open checkout of a fresh order, or a new attempt. */
export async function goPay(orderId) {
  const open = pending();
  if (open && open.order_id === orderId && open.checkout_url) {
    setPending({ order_id: orderId }); // that checkout is used once; a retry starts a new one
    location.assign(open.checkout_url);
    return;
  }
  const result = await api("POST", `/api/store/orders/${encodeURIComponent(orderId)}/pay`, {
    body: returnUrls(),
    idempotencyKey: newIdempotencyKey(),
  });
  setPending({ order_id: orderId });
  location.assign(result.payment.checkout_url);
}
