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

function countryField(prefix = "billing", attrs = {}) {
  const names = new Intl.DisplayNames([locale()], { type: "region" });
  const home = HOME[locale()] || "DE";
  const id = `f-${prefix}-address-country`;
  return h("div", { class: "field" },
    h("label", { for: id }, t("country")),
    h("select", { id, name: `${prefix}.address.country`, autocomplete: prefix === "billing" ? "country" : "shipping country", ...attrs },
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

// --- shipping: a method for the destination, and where to (by default the billing address)

function shippingAddressFields(onCountry) {
  return h("div", { id: "shipping-address", hidden: true },
    field("shipping.address.name", t("recipient"), { autocomplete: "shipping name" }),
    field("shipping.address.phone", t("phone"), { type: "tel", autocomplete: "shipping tel" }),
    field("shipping.address.line1", t("line1"), { autocomplete: "shipping address-line1" }),
    field("shipping.address.line2", t("line2"), { autocomplete: "shipping address-line2" }),
    h("div", { class: "row" },
      field("shipping.address.postal_code", t("postal_code"), { autocomplete: "shipping postal-code" }),
      field("shipping.address.city", t("city"), { autocomplete: "shipping address-level2" }),
    ),
    field("shipping.address.state", t("state"), { autocomplete: "shipping address-level1" }),
    countryField("shipping", { onchange: onCountry }),
  );
}

function methodLabel(method, cart) {
  const free = method.free_over !== null && cart.subtotal >= method.free_over;
  const price = free ? t("free") : formatMoney(method.amount, method.currency);
  return `${method.name} · ${price} · ${t("days", { min: method.delivery_days_min, max: method.delivery_days_max })}`;
}

/** The shipping fieldset: methods are asked for again whenever the destination changes. */
function shippingFieldset(cart, destination) {
  const methods = h("div", { id: "shipping-methods", role: "radiogroup", "aria-label": t("shipping_method") });
  let asked = 0;
  const refresh = async () => {
    const country = same.checked ? destination() : shippingCountry.value;
    const mine = ++asked;
    const chosen = methods.querySelector('input[name="shipping.method"]:checked');
    const previous = chosen ? chosen.value : null;
    try {
      const page = await api("GET", `/api/store/shipping-methods?country=${encodeURIComponent(country)}&currency=${encodeURIComponent(cart.currency)}`);
      if (mine !== asked) return; // a later destination won
      if (!page.items.length) {
        show(methods, h("p", { class: "warn small" }, t("no_shipping")));
        return;
      }
      const keep = page.items.some((m) => m.code === previous);
      show(methods, page.items.map((method, index) =>
        h("div", { class: "choice" },
          h("input", { type: "radio", name: "shipping.method", id: `shipping-${method.code}`, value: method.code, checked: keep ? method.code === previous : index === 0 }),
          h("label", { for: `shipping-${method.code}` }, methodLabel(method, cart)),
        )));
    } catch (error) {
      show(methods, h("p", { class: "warn small" }, problemText(error)));
    }
  };
  const address = shippingAddressFields(() => refresh());
  const same = h("input", { type: "checkbox", id: "ship-same", checked: true, onchange: () => {
    address.hidden = same.checked;
    refresh();
  } });
  const shippingCountry = address.querySelector("select");
  const fieldset = h("fieldset", { id: "shipping" },
    h("legend", {}, t("shipping")),
    h("div", { class: "choice" }, same, h("label", { for: "ship-same" }, t("same_as_billing"))),
    address,
    h("p", { class: "small" }, t("shipping_method")),
    methods,
  );
  return { fieldset, refresh, separate: () => !same.checked };
}

function shippingFromForm(form, separate) {
  const checked = form.querySelector('input[name="shipping.method"]:checked');
  const shipping = { method: checked ? checked.value : "" };
  if (!separate) return shipping;
  const value = (name) => {
    const text = form.elements[name].value.trim();
    return text === "" ? null : text;
  };
  shipping.address = {
    name: value("shipping.address.name") ?? "",
    phone: value("shipping.address.phone"),
    line1: value("shipping.address.line1") ?? "",
    line2: value("shipping.address.line2"),
    city: value("shipping.address.city") ?? "",
    postal_code: value("shipping.address.postal_code") ?? "",
    state: value("shipping.address.state"),
    country: value("shipping.address.country") ?? "",
  };
  return shipping;
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
  // Where the goods go decides the methods: the shipping address, else the billing one
  // (the saved customer's, or the country typed in the billing form).
  const billingCountry = billing.querySelector("select");
  const destination = () => {
    const picked = choice ? choice.querySelector('input[name="customer"]:checked') : null;
    const saved = picked && picked.value ? customers.find((c) => c.id === picked.value) : null;
    return saved ? saved.address.country : billingCountry.value;
  };
  const shipping = cart.requires_shipping ? shippingFieldset(cart, destination) : null;
  if (shipping) {
    billingCountry.addEventListener("change", () => shipping.refresh());
    if (choice) choice.addEventListener("change", () => shipping.refresh());
  }
  const summary = h("div", { id: "form-errors", tabindex: -1 });
  const submit = h("button", { type: "submit", class: "primary", id: "place-order" }, t("review_order"));
  const form = h("form", { id: "checkout", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    show(summary);
    const chosen = form.elements.customer ? form.elements.customer.value : "";
    const body = { ...returnUrls(), ...(chosen ? { customer_id: chosen } : { billing: billingFromForm(form) }) };
    if (shipping) body.shipping = shippingFromForm(form, shipping.separate());
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
    shipping ? shipping.fieldset : null,
    h("p", { class: "muted" }, `${t("total")}: `, h("strong", {}, formatMoney(cart.total, cart.currency))),
    h("p", { class: "actions" }, h("a", { href: "#/cart", class: "button" }, t("cart")), submit),
  );
  if (shipping) shipping.refresh();
  return [h("h1", {}, t("checkout")), form];
}

