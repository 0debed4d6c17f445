// The product list and a product's page.
import { api, newIdempotencyKey } from "../api.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { errorBox, flash, imageUrl, priceLabel, problemText, setCartCount } from "../ui.js";

async function addToCart(price, quantity, button) {
  button.disabled = true;
  const idempotencyKey = newIdempotencyKey(); // one key per press; api() retries reuse it
  try {
    const cart = await api("POST", "/api/store/cart/lines", {
      body: { pricing_id: price.id, quantity },
      idempotencyKey,
    });
    setCartCount(cart);
    flash(t("added"));
  } catch (error) {
    flash(problemText(error), "error");
  } finally {
    button.disabled = false;
  }
}

// How many are left, when the product counts its stock: null when it does not.
function left(product) {
  const stock = product.stock || {};
  return stock.tracked && stock.available !== null && stock.available !== undefined ? stock.available : null;
}

/** "Sold out" or "Only 3 left" (at 5 or fewer), else nothing. */
function stockNote(product) {
  const n = left(product);
  if (n === null || n > 5) return null;
  return h("p", { class: n === 0 ? "stock sold-out" : "stock low", "data-stock": n },
    n === 0 ? t("sold_out") : t("only_left", { n }));
}

function priceForm(product, price, { withQuantity }) {
  const id = `qty-${price.id}`;
  const n = left(product);
  const soldOut = n === 0;
  const quantity = h("input", { id, name: "quantity", type: "number", min: 1, max: n === null ? 99 : Math.max(1, Math.min(99, n)), value: 1, inputmode: "numeric", disabled: soldOut || null });
  const label = soldOut ? t("sold_out") : price.interval ? t("subscribe") : t("add_to_cart");
  const button = h("button", { type: "submit", class: "primary", disabled: soldOut || null, "aria-label": `${label}: ${product.name}, ${priceLabel(price.unit_amount, price.currency, price.interval, price.interval_count)}` },
    label);
  return h("form", {
    class: "price",
    "data-pricing": price.id,
    onsubmit: (event) => {
      event.preventDefault();
      addToCart(price, withQuantity ? Number(quantity.value) || 1 : 1, button);
    },
  },
    h("span", { class: "amount" }, priceLabel(price.unit_amount, price.currency, price.interval, price.interval_count)),
    withQuantity ? h("span", { class: "qty" }, h("label", { for: id }, t("quantity")), quantity) : null,
    button,
  );
}

function productCard(product) {
  const image = product.images[0];
  const link = `#/product/${encodeURIComponent(product.key)}`;
  return h("li", { class: "card", "data-product": product.key },
    h("a", { href: link, class: "thumb", tabindex: -1, "aria-hidden": "true" },
      image ? h("img", { src: imageUrl(image, 256), alt: "", width: 256, height: 256, loading: "lazy" }) : h("span", { class: "noimg" }, t("no_image"))),
    h("h2", {}, h("a", { href: link }, product.name)),
    stockNote(product),
    h("div", { class: "prices" }, product.prices.map((price) => priceForm(product, price, { withQuantity: false }))),
  );
}

const SEARCH_DELAY_MS = 250; // results as you type, one request per pause

/** The query string of what the controls ask for; "" when they ask for nothing. */
function searchParams({ q, ships, sort, currency }) {
  const params = new URLSearchParams();
  if (q) params.set("q", q);
  if (ships) params.set("shippable", "true");
  if (sort) params.set("sort", sort);
  if (sort === "price_asc" || sort === "price_desc") params.set("currency", currency);
  return params.toString();
}

function productList(items) {
  return items.length
    ? h("ul", { class: "grid", id: "products" }, items.map(productCard))
    : h("p", { class: "none" }, t("no_results"));
}

export async function productsView() {
  const page = await api("GET", "/api/store/products?limit=100");
  if (!page.items.length) return [h("h1", {}, t("products")), h("p", {}, t("no_products"))];
  // The shop's currency: the one its first product is priced in (what price sorts use).
  const currency = page.items[0].prices[0]?.currency || "EUR";
  const results = h("div", { id: "results", "aria-live": "polite" }, productList(page.items));
  const q = h("input", { id: "search", type: "search", name: "q", maxlength: 200, autocomplete: "off", placeholder: t("search_placeholder") });
  const ships = h("input", { id: "ships", type: "checkbox", name: "shippable" });
  const sort = h("select", { id: "sort", name: "sort" },
    ["", "newest", "price_asc", "price_desc"].map((value) => h("option", { value }, t(`sort_by.${value || "default"}`))));
  let timer = null;
  let latest = 0; // answers to older keystrokes that arrive late are dropped
  async function refresh() {
    const asked = ++latest;
    const query = searchParams({ q: q.value.trim(), ships: ships.checked, sort: sort.value, currency });
    try {
      const found = query ? await api("GET", `/api/store/products?limit=100&${query}`) : page;
      if (asked === latest) results.replaceChildren(productList(found.items));
    } catch (error) {
      if (asked === latest) results.replaceChildren(errorBox(error));
    }
  }
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, SEARCH_DELAY_MS);
  };
  q.addEventListener("input", soon);
  ships.addEventListener("change", refresh);
  sort.addEventListener("change", refresh);
  return [
    h("h1", {}, t("products")),
    h("form", { role: "search", class: "search", onsubmit: (event) => { event.preventDefault(); clearTimeout(timer); refresh(); } },
      h("label", { for: "search", class: "sr-only" }, t("search")),
      q,
      h("label", { class: "check" }, ships, t("ships_only")),
      h("label", { for: "sort" }, t("sort")),
      sort,
    ),
    results,
  ];
}

export async function productView(key) {
  let product;
  try {
    product = await api("GET", `/api/store/products/${encodeURIComponent(key)}`);
  } catch (error) {
    return [errorBox(error), h("p", {}, h("a", { href: "#/" }, t("back_to_products")))];
  }
  const image = product.images[0];
  return [
    h("p", { class: "crumb" }, h("a", { href: "#/" }, `← ${t("back_to_products")}`)),
    h("article", { class: "product" },
      image ? h("img", { src: imageUrl(image, 512), alt: product.name, class: "hero" }) : null,
      h("div", {},
        h("h1", {}, product.name),
        h("p", {}, product.description),
        stockNote(product),
        product.prices.map((price) => priceForm(product, price, { withQuantity: true })),
      ),
    ),
  ];
}
