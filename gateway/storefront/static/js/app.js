// The storefront shell: header, language, "log in as", and a hash router over the pages.
import { api, logIn, logOut, session } from "./api.js";
import { h, show } from "./dom.js";
import { LANGUAGE_NAMES, LOCALES, locale, setLocale, t } from "./i18n.js";
import { setExponents } from "./money.js";
import { errorBox, flash, loading, problemText, refreshCartCount, setCartCount } from "./ui.js";
import { productView, productsView } from "./views/catalog.js";
import { cartView, checkoutView } from "./views/cart.js";
import { cancelledView, orderView, ordersView, reviewView, thanksView } from "./views/orders.js";

const main = document.getElementById("main");
let config = { dev_login: false };

const ROUTES = [
  [/^#?\/?$/, "products", () => productsView()],
  [/^#\/product\/(.+)$/, "products", (key) => productView(decodeURIComponent(key))],
  [/^#\/cart$/, "cart", () => cartView()],
  [/^#\/checkout$/, "cart", () => checkoutView()],
  [/^#\/review\/(.+)$/, "cart", (id) => reviewView(decodeURIComponent(id))],
  [/^#\/thanks$/, "orders", () => thanksView()],
  [/^#\/cancelled$/, "orders", () => cancelledView()],
  [/^#\/orders$/, "orders", () => ordersView()],
  [/^#\/orders\/(.+)$/, "orders", (id) => orderView(decodeURIComponent(id))],
];

function route(hash) {
  for (const [pattern, section, view] of ROUTES) {
    const match = hash.match(pattern);
    if (match) return { section, view, args: match.slice(1) };
  }
  return { section: "products", view: ROUTES[0][2], args: [] };
}

async function render({ focus = false } = {}) {
  const hash = location.hash || "#/";
  const { section, view, args } = route(hash);
  document.querySelectorAll("#nav a").forEach((a) => {
    if (a.dataset.route === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  show(main, loading());
  try {
    show(main, await view(...args));
  } catch (error) {
    show(main, errorBox(error));
  }
  const heading = main.querySelector("h1");
  document.title = heading ? `${heading.textContent} · ${t("shop")}` : t("shop");
  if (focus) main.focus();
}

function chrome() {
  document.documentElement.lang = locale();
  document.getElementById("skip-link").textContent = t("skip");
  document.getElementById("nav").setAttribute("aria-label", t("main_nav"));
  document.getElementById("nav-products").firstChild.textContent = t("products");
  document.getElementById("nav-cart").firstChild.textContent = `${t("cart")} `;
  document.getElementById("nav-orders").firstChild.textContent = t("orders");
  document.getElementById("language-label").textContent = t("language");
  const select = document.getElementById("language");
  show(select, LOCALES.map((code) => h("option", { value: code, selected: code === locale() }, LANGUAGE_NAMES[code])));
  accountBox();
}

function accountBox() {
  const box = document.getElementById("account");
  const current = session();
  if (current) {
    show(box, h("p", { id: "signed-in" }, t("signed_in", { user: current.user }), " ",
      h("button", { type: "button", class: "link", id: "log-out", onclick: onLogOut }, t("log_out"))));
    return;
  }
  const dev = config.dev_login;
  const input = h("input", dev
    ? { id: "login-user", name: "user", autocomplete: "username", required: true, maxlength: 200, pattern: "[A-Za-z0-9._@\\-]+", size: 12 }
    : { id: "login-user", name: "token", autocomplete: "off", required: true, size: 16 });
  show(box, h("form", { id: "login", class: "login", onsubmit: (event) => { event.preventDefault(); onLogIn(input.value.trim()); } },
    h("label", { for: "login-user" }, dev ? t("login_as") : t("token")),
    input,
    h("button", { type: "submit" }, t("log_in")),
    h("p", { class: "muted small dev-hint" }, dev ? t("dev_hint") : t("token_hint")),
  ));
}

/** The user id a pasted token names (the gateway verifies the token itself). */
function tokenSubject(token) {
  try {
    return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub || "?";
  } catch {
    return "?";
  }
}

async function onLogIn(value) {
  if (!value) return;
  try {
    let token = value;
    let user = value;
    if (config.dev_login) {
      token = (await api("POST", "/api/dev/token", { body: { user_id: value } })).token;
    } else {
      user = tokenSubject(value);
    }
    logIn(token, user);
    // The first call with both the token and the anonymous cookie merges this visit's cart.
    const merge = await api("POST", "/api/store/session/merge");
    setCartCount(merge.cart);
    const dropped = (merge.dropped || []).reduce((n, line) => n + line.quantity, 0);
    const reasons = [...new Set((merge.dropped || []).map((line) => line.reason))].join(", ");
    flash([
      merge.merged && merge.cart.item_count ? t("merged", { n: merge.cart.item_count }) : t("merged_none"),
      dropped ? ` ${t("dropped", { n: dropped, reasons })}` : "",
    ].join(""));
  } catch (error) {
    logOut();
    flash(problemText(error), "error");
  }
  accountBox();
  render();
}

function onLogOut() {
  logOut();
  flash(t("logged_out"));
  accountBox();
  refreshCartCount();
  render();
}

async function start() {
  try {
    config = await api("GET", "/shop/config.json");
    setExponents(config.currency_exponents);
  } catch (error) {
    flash(problemText(error), "error");
  }
  chrome();
  document.getElementById("language").addEventListener("change", (event) => {
    setLocale(event.target.value);
    chrome();
    refreshCartCount();
    render();
  });
  document.getElementById("skip-link").addEventListener("click", (event) => {
    event.preventDefault();
    main.focus();
  });
  document.addEventListener("store:session-expired", () => {
    flash(t("session_expired"), "error");
    accountBox();
  });
  window.addEventListener("hashchange", () => {
    flash("");
    render({ focus: true });
  });
  refreshCartCount();
  await render();
}

start();
