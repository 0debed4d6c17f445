// Review and pay, the return from the payment page, and the order history.
import { api } from "../api.js";
import { h, show } from "../dom.js";
import { t } from "../i18n.js";
import { formatDate, formatMoney } from "../money.js";
import { clearPending, goPay, pending } from "../flow.js";
import { errorBox, flash, isProcessing, orderSummary, problemText, processingNote, refreshCartCount, refundedNote, shipments, statusBadge } from "../ui.js";

const POLL_MS = 1000;
const POLL_TIMES = 60;

function payButton(order, label) {
  const button = h("button", { type: "button", class: "primary pay", "data-order": order.id, onclick: async () => {
    button.disabled = true;
    try {
      await goPay(order.id);
    } catch (error) {
      if (error.code === "payment_processing") {
        // A delayed payment is on its way (seen only now, e.g. from the order list).
        button.replaceWith(processingNote());
        return;
      }
      flash(problemText(error), "error");
      button.disabled = false;
    }
  } }, label);
  return button;
}

/** Cancel an unpaid order (the API refuses once paid, canceled or while a payment is on its way). */
function cancelButton(order) {
  const button = h("button", { type: "button", class: "cancel-order", "data-order": order.id, onclick: async () => {
    button.disabled = true;
    try {
      const canceled = await api("POST", `/api/store/orders/${encodeURIComponent(order.id)}/cancel`);
      document.querySelector("h1 .status")?.replaceWith(statusBadge(canceled));
      button.closest(".actions").replaceWith(h("p", { class: "msg ok", role: "status" }, t("order_canceled", { number: canceled.number })));
    } catch (error) {
      flash(problemText(error), "error");
      button.disabled = false;
    }
  } }, t("cancel_order"));
  return button;
}

/** Pay again or cancel an unpaid order; nothing once paid or canceled; a note while a payment is processing. */
function payAgain(order) {
  if (order.paid || order.status === "canceled") return null;
  if (isProcessing(order)) return processingNote();
  return h("p", { class: "actions" }, payButton(order, t("pay_again")), " ", cancelButton(order));
}

async function loadOrder(id) {
  return api("GET", `/api/store/orders/${encodeURIComponent(id)}`);
}

export async function reviewView(id) {
  const order = await loadOrder(id);
  if (order.paid || order.status === "canceled" || isProcessing(order)) return orderView(id);
  return [
    h("h1", {}, t("review")),
    h("h2", {}, t("order", { number: order.number })),
    orderSummary(order),
    h("p", { class: "muted" }, t("to_payment")),
    h("p", { class: "actions" }, payButton(order, t("pay", { total: formatMoney(order.total, order.currency) }))),
  ];
}

function pendingOrderId() {
  const open = pending();
  return open ? open.order_id : null;
}

/** Back from paying: wait (a bounded while) until the order is marked paid. */
export async function thanksView() {
  const id = pendingOrderId();
  if (!id) return [h("h1", {}, t("orders")), h("p", {}, t("no_order")), h("p", {}, h("a", { href: "#/orders" }, t("orders")))];
  const status = h("p", { id: "payment-status", role: "status", class: "muted" }, t("waiting"));
  const body = h("div", {});
  const heading = h("h1", {}, t("waiting"));
  poll(id, status, (order) => {
    clearPending();
    refreshCartCount();
    show(heading, order.paid ? t("thanks") : t("processing"));
    show(status, statusBadge(order), " ", t("order", { number: order.number }));
    show(body, orderSummary(order));
  }, () => show(status, t("not_yet")));
  return [heading, status, body];
}

async function poll(id, status, onPaid, onGiveUp) {
  for (let attempt = 0; attempt < POLL_TIMES; attempt++) {
    if (attempt > 0 && !status.isConnected) return; // the shopper moved on
    try {
      const order = await loadOrder(id);
      if (order.paid || isProcessing(order)) return onPaid(order);
    } catch {
      // keep waiting; a brief outage is not an answer
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  onGiveUp();
}

export async function cancelledView() {
  const id = pendingOrderId();
  if (!id) return ordersView();
  const order = await loadOrder(id);
  return [
    h("h1", {}, t("cancelled")),
    h("h2", {}, t("order", { number: order.number }), " ", statusBadge(order)),
    orderSummary(order),
    payAgain(order),
  ];
}

export async function orderView(id) {
  let order;
  try {
    order = await loadOrder(id);
  } catch (error) {
    return [errorBox(error)];
  }
  return [
    h("p", { class: "crumb" }, h("a", { href: "#/orders" }, `← ${t("orders")}`)),
    h("h1", {}, t("order", { number: order.number }), " ", statusBadge(order)),
    h("p", { class: "muted" }, formatDate(order.created_at)),
    orderSummary(order),
    shipments(order),
    payAgain(order),
  ];
}

function orderRow(order) {
  return h("li", { class: "order", "data-order": order.id },
    h("a", { href: `#/orders/${encodeURIComponent(order.id)}`, class: "number" }, t("order", { number: order.number })),
    h("span", { class: "muted small" }, formatDate(order.created_at)),
    h("span", { class: "num" }, formatMoney(order.total, order.currency), refundedNote(order)),
    statusBadge(order),
    order.paid || order.status === "canceled" ? h("span", {}) : payButton(order, t("pay_again")),
  );
}

const SUBSCRIPTION_STATUS = { active: "sub_active", trialing: "sub_active", past_due: "sub_past_due", unpaid: "sub_past_due", canceled: "sub_canceled" };

/** Open the provider's billing portal for one subscription (back to this page afterwards). */
function manageButton(subscription) {
  const button = h("button", { type: "button", class: "manage", onclick: async () => {
    button.disabled = true;
    try {
      const portal = await api("POST", `/api/store/subscriptions/${encodeURIComponent(subscription.id)}/portal`, { body: { return_url: location.href } });
      location.assign(portal.url);
    } catch (error) {
      flash(problemText(error), "error");
      button.disabled = false;
    }
  } }, t("manage_billing"));
  return button;
}

function subscriptionRow(subscription) {
  const pastDue = ["past_due", "unpaid"].includes(subscription.status);
  const label = SUBSCRIPTION_STATUS[subscription.status] || "sub_other";
  const until = subscription.current_period_end ? formatDate(subscription.current_period_end) : null;
  const when = until && subscription.status !== "canceled"
    ? t(subscription.cancel_at_period_end ? "ends_on" : "renews_on", { date: until })
    : "";
  return h("li", { class: `subscription${pastDue ? " past-due" : ""}`, "data-subscription": subscription.id },
    h("span", { class: `status ${pastDue ? "unpaid" : subscription.status === "canceled" ? "" : "paid"}` }, t(label, { status: subscription.status })),
    subscription.amount != null ? h("span", { class: "num" }, formatMoney(subscription.amount, subscription.currency)) : null,
    h("span", { class: "muted small" }, when),
    subscription.status === "canceled" ? null : manageButton(subscription),
    pastDue ? h("p", { class: "msg error past-due-note", role: "status" }, t("past_due_note")) : null,
  );
}

async function subscriptionsSection() {
  const subscriptions = await api("GET", "/api/store/subscriptions").catch(() => []);
  if (!subscriptions.length) return null;
  return h("section", { id: "subscriptions" },
    h("h2", {}, t("subscriptions")),
    h("ul", { class: "orders subscriptions" }, ...subscriptions.map(subscriptionRow)),
  );
}

export async function ordersView() {
  const list = h("ul", { class: "orders", id: "orders" });
  const more = h("p", {});
  const load = async (cursor) => {
    const query = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
    const page = await api("GET", `/api/store/orders?limit=20${query}`);
    list.append(...page.items.map(orderRow));
    show(more, page.next_cursor
      ? h("button", { type: "button", onclick: () => load(page.next_cursor).catch((e) => flash(problemText(e), "error")) }, t("more"))
      : null);
    return page;
  };
  const [first, subscriptions] = await Promise.all([load(null), subscriptionsSection()]);
  return [h("h1", {}, t("orders")), subscriptions, first.items.length ? list : h("p", {}, t("no_orders")), more];
}
