// Pieces every page uses: messages, prices, the cart badge, an order's summary.
import { api, Problem } from "./api.js";
import { h, show } from "./dom.js";
import { t } from "./i18n.js";
import { formatMoney } from "./money.js";

/** A short message at the top: status (polite) or error (announced at once). */
export function flash(text, kind = "info") {
  const box = document.getElementById("flash");
  show(box, text ? h("p", { class: `msg ${kind}`, role: kind === "error" ? "alert" : null }, text) : null);
}

/** What the shopper reads for a failed call: the API's own words for the problem. */
export function problemText(error) {
  if (error instanceof Problem) return error.detail || error.title || t("unreachable");
  return t("unreachable");
}

export function priceLabel(unitAmount, currency, interval, intervalCount = 1) {
  const money = formatMoney(unitAmount, currency);
  if (!interval) return money;
  return `${money} ${intervalCount > 1 ? t(`every.${interval}`, { n: intervalCount }) : t(`per.${interval}`)}`;
}

/** The image URL closest to `size` pixels (a thumbnail when there is one). */
export function imageUrl(image, size) {
  const sizes = Object.keys(image.thumbnails || {}).map(Number).sort((a, b) => a - b);
  const fit = sizes.find((s) => s >= size) ?? sizes[sizes.length - 1];
  return fit === undefined ? image.url : image.thumbnails[String(fit)];
}

export function setCartCount(cart) {
  const count = cart ? cart.item_count : 0;
  document.getElementById("cart-count").textContent = String(count);
}

export async function refreshCartCount() {
  try {
    setCartCount(await api("GET", "/api/store/cart"));
  } catch {
    setCartCount(null);
  }
}

export function loading() {
  return h("p", { class: "muted", role: "status" }, t("loading"));
}

export function errorBox(error) {
  return h("div", { class: "msg error", role: "alert" }, problemText(error));
}

/** Lines, taxes and totals of an order as it was bought. */
export function orderSummary(order) {
  const details = order.details || {};
  const currency = order.currency;
  const rows = (details.lines || []).map((line) =>
    h("tr", {},
      h("td", {}, line.name, h("span", { class: "muted small" }, ` × ${line.quantity}`)),
      h("td", { class: "num" }, priceLabel(line.total ?? line.subtotal, currency, line.interval, line.interval_count)),
    ),
  );
  const taxes = (details.tax_lines || []).map((tax) =>
    h("tr", { class: "tax" },
      h("th", { scope: "row" }, t(tax.inclusive ? "tax_included" : "tax_added", { name: tax.display_name })),
      h("td", { class: "num" }, formatMoney(tax.amount, currency)),
    ),
  );
  const billing = details.billing;
  const shipping = details.shipping;
  const shippingRow = shipping
    ? h("tr", { class: "shipping" },
      h("td", {}, shipping.method.name, shipping.free ? h("span", { class: "muted small" }, ` · ${t("free")}`) : null),
      h("td", { class: "num", id: "order-shipping" }, formatMoney(shipping.total, currency)),
    )
    : null;
  return h("div", { class: "summary" },
    h("table", { class: "lines" },
      h("caption", { class: "sr-only" }, t("order", { number: order.number })),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("product")), h("th", { scope: "col", class: "num" }, t("amount")))),
      h("tbody", {}, rows, shippingRow),
      h("tfoot", {},
        taxes,
        h("tr", { class: "total" }, h("th", { scope: "row" }, t("total")), h("td", { class: "num", id: "order-total" }, formatMoney(order.total, currency))),
        order.refunded_amount > 0
          ? h("tr", { class: "refunded" }, h("th", { scope: "row" }, t("refunded")), h("td", { class: "num", id: "order-refunded" }, formatMoney(order.refunded_amount, currency)))
          : null,
      ),
    ),
    billing
      ? h("p", { class: "muted small" }, `${t("billed_to")}: ${billing.name}, ${billing.address.city}, ${billing.address.country}`)
      : null,
    shipping
      ? h("p", { class: "muted small", id: "shipped-to" }, `${t("ship_to")}: ${shipping.address.name}, ${shipping.address.line1}, ${shipping.address.postal_code} ${shipping.address.city}, ${shipping.address.country}`)
      : null,
  );
}

/** "Refunded €x.xx" where money went back to the shopper, else nothing. */
/** The order's shipments with their tracking links (nothing when nothing ships). */
export function shipments(order) {
  if (!order.fulfillment_status) return null;
  const items = (order.fulfillments || []).map((shipment) =>
    h("li", { class: "shipment", "data-fulfillment": shipment.id },
      h("span", {}, t("shipped_with", { carrier: shipment.carrier, number: shipment.tracking_number })),
      h("span", { class: "muted small" }, ` (${shipment.lines.map((line) => `${line.name} × ${line.quantity}`).join(", ")})`),
      // Only an https link is ever followed (the API refuses others; this is a second guard).
      shipment.tracking_url && shipment.tracking_url.startsWith("https://")
        ? [" ", h("a", { href: shipment.tracking_url, class: "track", rel: "noopener noreferrer", target: "_blank" }, t("track"))]
        : null,
    ));
  return h("section", { class: "shipments", "aria-labelledby": "shipments-title" },
    h("h2", { id: "shipments-title" }, t("shipments"), " ",
      h("span", { class: `status ${order.fulfillment_status}` }, t(`fulfillment.${order.fulfillment_status}`))),
    items.length ? h("ul", {}, ...items) : null,
  );
}

export function refundedNote(order) {
  return order.refunded_amount > 0
    ? h("span", { class: "refunded small" }, `${t("refunded")} ${formatMoney(order.refunded_amount, order.currency)}`)
    : null;
}

/** A delayed payment (SEPA Debit, bank transfer) is on its way: nothing to pay again. */
export function isProcessing(order) {
  return !order.paid && order.payment?.status === "processing";
}

export function statusBadge(order) {
  if (order.status === "canceled") return h("span", { class: "status canceled" }, t("canceled_badge"));
  if (order.paid) return h("span", { class: "status paid" }, t("paid"));
  if (isProcessing(order)) return h("span", { class: "status processing" }, t("processing_badge"));
  return h("span", { class: "status unpaid" }, t("unpaid"));
}

export function processingNote() {
  return h("p", { class: "msg processing", role: "status" }, t("processing"));
}
