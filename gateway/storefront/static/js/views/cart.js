// The cart, and the checkout form that turns it into an order.
import { api, newIdempotencyKey, session } from "../api.js";
import { h, show } from "../dom.js";
import { locale, t } from "../i18n.js";
import { formatMoney } from "../money.js";
import { flash, priceLabel, problemText, setCartCount } from "../ui.js";
import { navigate, returnUrls, setPending } from "../flow.js";

async function changeCart(method, path, body, rerender) {
  try {
    const cart = await api(method, path, { body });
    setCartCount(cart);
    flash(t("cart_updated"));
    rerender(cart);
  } catch (error) {
    flash(problemText(error), "error");
  }
}

function cartLine(line, currency, rerender) {
  const id = `qty-${line.line_id}`;
  const input = h("input", { id, type: "number", min: 1, max: 999, value: line.quantity, inputmode: "numeric", name: "quantity" });
  const path = `/api/store/cart/lines/${encodeURIComponent(line.line_id)}`;
  return h("li", { class: `line${line.available ? "" : " gone"}`, "data-line": line.line_id },
    h("div", { class: "what" },
      h("a", { href: `#/product/${encodeURIComponent(line.product_key)}` }, line.name),
      h("span", { class: "muted small" }, priceLabel(line.unit_amount, currency, line.interval, line.interval_count)),
      line.available ? null : h("span", { class: "warn small" }, t("unavailable")),
    ),
    h("form", {
      class: "qty",
      onsubmit: (event) => {
        event.preventDefault();
        changeCart("PATCH", path, { quantity: Number(input.value) }, rerender);
      },
    },
      h("label", { for: id }, t("quantity")),
      input,
      h("button", { type: "submit" }, t("update")),
    ),
    h("span", { class: "num sub" }, formatMoney(line.subtotal, currency)),
    h("button", {
      type: "button",
      class: "link",
      "aria-label": `${t("remove")}: ${line.name}`,
      onclick: () => changeCart("DELETE", path, undefined, rerender),
    }, t("remove")),
  );
}

function cartBody(cart, rerender) {
  if (!cart.lines.length) {
    return [h("p", {}, t("cart_empty")), h("p", {}, h("a", { href: "#/" }, t("continue_shopping")))];
  }
  return [
    h("ul", { class: "cart", id: "cart-lines" }, cart.lines.map((line) => cartLine(line, cart.currency, rerender))),
    h("dl", { class: "totals" },
      h("dt", {}, t("subtotal")), h("dd", { id: "cart-subtotal" }, formatMoney(cart.subtotal, cart.currency)),
      h("dt", {}, t("total")), h("dd", { id: "cart-total" }, formatMoney(cart.total, cart.currency)),
    ),
    cart.starts_subscription ? h("p", { class: "muted" }, t("starts_subscription")) : null,
    h("p", { class: "actions" },
      h("a", { href: "#/", class: "button" }, t("continue_shopping")),
      h("a", { href: "#/checkout", class: "button primary", id: "to-checkout" }, t("checkout")),
    ),
  ];
}

export async function cartView() {
  const cart = await api("GET", "/api/store/cart");
  setCartCount(cart);
  const body = h("div", {});
  const count = h("span", { class: "muted small" });
  const rerender = (next) => {
    show(count, t("items", { n: next.item_count }));
    show(body, cartBody(next, rerender));
  };
  rerender(cart);
  return [h("h1", {}, t("cart"), " ", count), body];
}

// --- checkout ---------------------------------------------------------------------------

const COUNTRIES = ["DE", "AT", "CH", "FR", "BE", "NL", "IT", "ES", "GB", "IE", "US", "CA"];
const HOME = { de: "DE", fr: "FR", en: "GB" };

function field(name, label, attrs = {}) {
  const id = `f-${name.replace(/\./g, "-")}`;
  return h("div", { class: "field" },
    h("label", { for: id }, label),
    h("input", { id, name, ...attrs }),
  );
}

function countryField() {
  const names = new Intl.DisplayNames([locale()], { type: "region" });
  const home = HOME[locale()] || "DE";
  return h("div", { class: "field" },
    h("label", { for: "f-billing-address-country" }, t("country")),
    h("select", { id: "f-billing-address-country", name: "billing.address.country", autocomplete: "country" },
      COUNTRIES.map((code) => h("option", { value: code, selected: code === home }, names.of(code)))),
  );
}

function billingFieldset() {
  return h("fieldset", { id: "billing" },
    h("legend", {}, t("billing")),
    field("billing.name", t("name"), { autocomplete: "name", required: true }),
    field("billing.email", t("email"), { type: "email", autocomplete: "email", required: true }),
    field("billing.address.line1", t("line1"), { autocomplete: "address-line1", required: true }),
    field("billing.address.line2", t("line2"), { autocomplete: "address-line2" }),
    h("div", { class: "row" },
      field("billing.address.postal_code", t("postal_code"), { autocomplete: "postal-code", required: true }),
      field("billing.address.city", t("city"), { autocomplete: "address-level2", required: true }),
    ),
    field("billing.address.state", t("state"), { autocomplete: "address-level1" }),
    countryField(),
    field("billing.vat_id", t("vat_id")),
  );
}

function customerChoice(customers, billing) {
  if (!customers.length) return null;
  const toggle = () => {
    const fresh = document.getElementById("customer-new").checked;
    billing.hidden = !fresh;
  };
  return h("fieldset", { id: "customers" },
    h("legend", {}, t("saved_customers")),
    customers.map((c, index) =>
      h("div", { class: "choice" },
        h("input", { type: "radio", name: "customer", id: `customer-${index}`, value: c.id, checked: c.is_default, onchange: toggle }),
        h("label", { for: `customer-${index}` }, `${c.name} · ${c.email} · ${c.address.city}, ${c.address.country}`),
      )),
    h("div", { class: "choice" },
      h("input", { type: "radio", name: "customer", id: "customer-new", value: "", checked: !customers.some((c) => c.is_default), onchange: toggle }),
      h("label", { for: "customer-new" }, t("new_billing")),
    ),
  );
}

function billingFromForm(form) {
  const value = (name) => {
    const text = form.elements[name].value.trim();
    return text === "" ? null : text;
  };
  return {
    name: value("billing.name") ?? "",
    email: value("billing.email") ?? "",
    address: {
      line1: value("billing.address.line1") ?? "",
      line2: value("billing.address.line2"),
      city: value("billing.address.city") ?? "",
      postal_code: value("billing.address.postal_code") ?? "",
      state: value("billing.address.state"),
      country: value("billing.address.country") ?? "",
    },
    vat_id: value("billing.vat_id"),
  };
}

function clearFieldErrors(form) {
  form.querySelectorAll(".field-error").forEach((node) => node.remove());
  form.querySelectorAll("[aria-invalid]").forEach((node) => {
    node.removeAttribute("aria-invalid");
    node.removeAttribute("aria-describedby");
  });
}

/** The 422 problem's `errors`, each next to the field it names; the rest in the summary. */
function showFieldErrors(form, error, summary) {
  const unplaced = [];
  let first = null;
  for (const item of error.errors) {
    const input = item.field ? form.elements[item.field] : null;
    if (!input || !input.id) {
      unplaced.push(item.message);
      continue;
    }
    const note = h("p", { class: "field-error", id: `${input.id}-error` }, item.message);
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", note.id);
    input.after(note);
    first = first || input;
  }
  show(summary, h("div", { class: "msg error", role: "alert" },
    first ? t("fix_errors") : problemText(error),
    unplaced.length ? h("ul", {}, unplaced.map((text) => h("li", {}, text))) : null,
  ));
  (first || summary).focus();
}

export async function checkoutView() {
  const cart = await api("GET", "/api/store/cart");
  if (!cart.lines.length) return [h("h1", {}, t("checkout")), h("p", {}, t("cart_empty"))];
  const customers = session() ? await api("GET", "/api/store/customers") : [];
  const billing = billingFieldset();
  const choice = customerChoice(customers, billing);
  billing.hidden = customers.some((c) => c.is_default);
  const summary = h("div", { id: "form-errors", tabindex: -1 });
  const submit = h("button", { type: "submit", class: "primary", id: "place-order" }, t("review_order"));
  const form = h("form", { id: "checkout", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    show(summary);
    const chosen = form.elements.customer ? form.elements.customer.value : "";
    const body = { ...returnUrls(), ...(chosen ? { customer_id: chosen } : { billing: billingFromForm(form) }) };
    submit.disabled = true;
    const idempotencyKey = newIdempotencyKey();
    try {
      const result = await api("POST", "/api/store/checkout", { body, idempotencyKey });
      setCartCount(null);
      setPending({ order_id: result.order.id, checkout_url: result.payment.checkout_url });
      navigate(`#/review/${encodeURIComponent(result.order.id)}`);
    } catch (error) {
      showFieldErrors(form, error, summary);
    } finally {
      submit.disabled = false;
    }
  } },
    summary,
    choice,
    billing,
    h("p", { class: "muted" }, `${t("total")}: `, h("strong", {}, formatMoney(cart.total, cart.currency))),
    h("p", { class: "actions" }, h("a", { href: "#/cart", class: "button" }, t("cart")), submit),
  );
  return [h("h1", {}, t("checkout")), form];
}

