// The storefront's own words in each locale; product texts come translated from the API.
const WORDS = {
  en: {
    shop: "Store", products: "Products", cart: "Cart", orders: "Orders", language: "Language",
    loading: "Loading…", unreachable: "The store cannot be reached. Try again in a moment.",
    add_to_cart: "Add to cart", subscribe: "Subscribe", quantity: "Quantity", sold_out: "Sold out", only_left: "Only {n} left",
    added: "Added to your cart.", one_off: "One-off", per: { day: "per day", week: "per week", month: "per month", year: "per year" },
    every: { day: "every {n} days", week: "every {n} weeks", month: "every {n} months", year: "every {n} years" },
    search: "Search products", search_placeholder: "Search…", ships_only: "Ships", sort: "Sort",
    sort_by: { default: "Best match", newest: "Newest", price_asc: "Price: low to high", price_desc: "Price: high to low" },
    no_results: "No products match.",
    no_products: "No products yet.", back_to_products: "All products", no_image: "No image",
    cart_empty: "Your cart is empty.", product: "Product", price: "Price", amount: "Amount",
    update: "Update", remove: "Remove", subtotal: "Subtotal", total: "Total", items: "{n} items",
    unavailable: "No longer available: remove it to check out.", checkout: "Check out",
    continue_shopping: "Continue shopping", cart_updated: "Cart updated.",
    billing: "Billing details", name: "Full name", email: "Email", line1: "Address",
    line2: "Address, line 2 (optional)", city: "City", postal_code: "Postal code",
    state: "State or region (optional)", country: "Country", vat_id: "VAT number (optional)",
    saved_customers: "Pay as", new_billing: "New billing details", review_order: "Review order",
    fix_errors: "Please correct the marked fields.",
    review: "Review and pay", order: "Order {number}", tax: "Tax", tax_included: "{name} (included)",
    tax_added: "{name}", pay: "Pay {total}", to_payment: "You will be taken to the payment page.",
    waiting: "Waiting for the payment to be confirmed…", paid: "Paid", unpaid: "Not paid",
    thanks: "Thank you! Your order is paid.", not_yet: "The payment is not confirmed yet. Check your orders in a moment.",
    cancelled: "The payment did not go through.", pay_again: "Pay again",
    processing: "Payment processing — we will e-mail you", processing_badge: "Processing", no_order: "No order to show.",
    no_orders: "No orders yet.", date: "Date", status: "Status", view: "View",
    login_as: "Log in as", user_id: "User id", log_in: "Log in", log_out: "Log out",
    token: "Token", signed_in: "Signed in as {user}", merged: "Your cart from this visit moved into your account ({n} items in the cart now).",
    merged_none: "Signed in. Nothing to move from this visit.", dropped: "{n} items could not move: {reasons}.",
    logged_out: "Logged out.", session_expired: "Your session expired; please log in again.",
    dev_hint: "Development login: any user id signs in.", token_hint: "Paste a user token (Authorization: Bearer).",
    more: "More orders", refunded: "Refunded", canceled_badge: "Canceled", cancel_order: "Cancel order", order_canceled: "Order {number} is canceled.", shipments: "Shipments", shipped_with: "{carrier}, tracking number {number}", track: "Track the parcel", fulfillment: { unfulfilled: "Not shipped yet", partially_fulfilled: "Partly shipped", fulfilled: "Shipped" },
    subscriptions: "Subscriptions", manage_billing: "Manage billing", sub_active: "Active", sub_past_due: "Payment due", sub_canceled: "Ended", sub_other: "{status}", renews_on: "Renews on {date}", ends_on: "Ends on {date}", past_due_note: "The last renewal could not be charged: pay it or change your card in Manage billing.",
    shipping: "Shipping", recipient: "Recipient", ship_to: "Ships to", same_as_billing: "Ship to the billing address", shipping_method: "Shipping method", phone: "Phone (optional)", free: "free", days: "{min}–{max} days", no_shipping: "No shipping method delivers there.",
    main_nav: "Main", skip: "Skip to content", billed_to: "Billed to", starts_subscription: "This order starts a subscription.",
  },
  de: {
    shop: "Store", products: "Produkte", cart: "Warenkorb", orders: "Bestellungen", language: "Sprache",
    loading: "Wird geladen…", unreachable: "Der Shop ist nicht erreichbar. Bitte gleich noch einmal versuchen.",
    add_to_cart: "In den Warenkorb", subscribe: "Abonnieren", quantity: "Menge", sold_out: "Ausverkauft", only_left: "Nur noch {n} verfügbar",
    added: "Zum Warenkorb hinzugefügt.", one_off: "Einmalig", per: { day: "pro Tag", week: "pro Woche", month: "pro Monat", year: "pro Jahr" },
    every: { day: "alle {n} Tage", week: "alle {n} Wochen", month: "alle {n} Monate", year: "alle {n} Jahre" },
    search: "Produkte suchen", search_placeholder: "Suchen…", ships_only: "Versandfähig", sort: "Sortieren",
    sort_by: { default: "Beste Treffer", newest: "Neueste", price_asc: "Preis aufsteigend", price_desc: "Preis absteigend" },
    no_results: "Keine passenden Produkte.",
    no_products: "Noch keine Produkte.", back_to_products: "Alle Produkte", no_image: "Kein Bild",
    cart_empty: "Ihr Warenkorb ist leer.", product: "Produkt", price: "Preis", amount: "Betrag",
    update: "Ändern", remove: "Entfernen", subtotal: "Zwischensumme", total: "Gesamt", items: "{n} Artikel",
    unavailable: "Nicht mehr erhältlich: zum Bezahlen bitte entfernen.", checkout: "Zur Kasse",
    continue_shopping: "Weiter einkaufen", cart_updated: "Warenkorb aktualisiert.",
    billing: "Rechnungsdaten", name: "Vollständiger Name", email: "E-Mail", line1: "Adresse",
    line2: "Adresszusatz (optional)", city: "Ort", postal_code: "Postleitzahl",
    state: "Bundesland oder Region (optional)", country: "Land", vat_id: "USt-IdNr. (optional)",
    saved_customers: "Bezahlen als", new_billing: "Neue Rechnungsdaten", review_order: "Bestellung prüfen",
    fix_errors: "Bitte die markierten Felder korrigieren.",
    review: "Prüfen und bezahlen", order: "Bestellung {number}", tax: "Steuer", tax_included: "{name} (enthalten)",
    tax_added: "{name}", pay: "{total} bezahlen", to_payment: "Sie werden zur Zahlungsseite weitergeleitet.",
    waiting: "Warte auf die Bestätigung der Zahlung…", paid: "Bezahlt", unpaid: "Nicht bezahlt",
    thanks: "Vielen Dank! Ihre Bestellung ist bezahlt.", not_yet: "Die Zahlung ist noch nicht bestätigt. Sehen Sie gleich in Ihren Bestellungen nach.",
    cancelled: "Die Zahlung ist nicht erfolgt.", pay_again: "Erneut bezahlen",
    processing: "Zahlung in Bearbeitung — wir schreiben Ihnen eine E-Mail", processing_badge: "In Bearbeitung", no_order: "Keine Bestellung.",
    no_orders: "Noch keine Bestellungen.", date: "Datum", status: "Status", view: "Ansehen",
    login_as: "Anmelden als", user_id: "Benutzer-ID", log_in: "Anmelden", log_out: "Abmelden",
    token: "Token", signed_in: "Angemeldet als {user}", merged: "Ihr Warenkorb aus diesem Besuch ist jetzt in Ihrem Konto ({n} Artikel im Warenkorb).",
    merged_none: "Angemeldet. Aus diesem Besuch gab es nichts zu übernehmen.", dropped: "{n} Artikel konnten nicht übernommen werden: {reasons}.",
    logged_out: "Abgemeldet.", session_expired: "Ihre Sitzung ist abgelaufen; bitte erneut anmelden.",
    dev_hint: "Entwicklungs-Anmeldung: jede Benutzer-ID meldet an.", token_hint: "Ein Benutzer-Token einfügen (Authorization: Bearer).",
    more: "Weitere Bestellungen", refunded: "Erstattet", canceled_badge: "Storniert", cancel_order: "Bestellung stornieren", order_canceled: "Bestellung {number} ist storniert.", shipments: "Sendungen", shipped_with: "{carrier}, Sendungsnummer {number}", track: "Sendung verfolgen", fulfillment: { unfulfilled: "Noch nicht versandt", partially_fulfilled: "Teilweise versandt", fulfilled: "Versandt" },
    subscriptions: "Abonnements", manage_billing: "Zahlung verwalten", sub_active: "Aktiv", sub_past_due: "Zahlung offen", sub_canceled: "Beendet", sub_other: "{status}", renews_on: "Verlängert sich am {date}", ends_on: "Endet am {date}", past_due_note: "Die letzte Verlängerung konnte nicht abgebucht werden: Bezahlen Sie sie oder ändern Sie Ihre Karte unter „Zahlung verwalten“.",
    shipping: "Versand", recipient: "Empfänger", ship_to: "Lieferung an", same_as_billing: "An die Rechnungsadresse liefern", shipping_method: "Versandart", phone: "Telefon (optional)", free: "kostenlos", days: "{min}–{max} Tage", no_shipping: "Dorthin liefert keine Versandart.",
    main_nav: "Hauptmenü", skip: "Zum Inhalt springen", billed_to: "Rechnung an", starts_subscription: "Mit dieser Bestellung beginnt ein Abonnement.",
  },
  fr: {
    shop: "Store", products: "Produits", cart: "Panier", orders: "Commandes", language: "Langue",
    loading: "Chargement…", unreachable: "La boutique est injoignable. Réessayez dans un instant.",
    add_to_cart: "Ajouter au panier", subscribe: "S’abonner", quantity: "Quantité", sold_out: "Épuisé", only_left: "Plus que {n} en stock",
    added: "Ajouté au panier.", one_off: "À l’unité", per: { day: "par jour", week: "par semaine", month: "par mois", year: "par an" },
    every: { day: "tous les {n} jours", week: "toutes les {n} semaines", month: "tous les {n} mois", year: "tous les {n} ans" },
    search: "Rechercher des produits", search_placeholder: "Rechercher…", ships_only: "Livrable", sort: "Trier",
    sort_by: { default: "Pertinence", newest: "Nouveautés", price_asc: "Prix croissant", price_desc: "Prix décroissant" },
    no_results: "Aucun produit ne correspond.",
    no_products: "Aucun produit pour l’instant.", back_to_products: "Tous les produits", no_image: "Pas d’image",
    cart_empty: "Votre panier est vide.", product: "Produit", price: "Prix", amount: "Montant",
    update: "Modifier", remove: "Retirer", subtotal: "Sous-total", total: "Total", items: "{n} articles",
    unavailable: "Plus disponible : retirez-le pour commander.", checkout: "Commander",
    continue_shopping: "Continuer mes achats", cart_updated: "Panier mis à jour.",
    billing: "Facturation", name: "Nom complet", email: "E-mail", line1: "Adresse",
    line2: "Complément d’adresse (facultatif)", city: "Ville", postal_code: "Code postal",
    state: "Région (facultatif)", country: "Pays", vat_id: "Numéro de TVA (facultatif)",
    saved_customers: "Payer en tant que", new_billing: "Nouvelles coordonnées", review_order: "Vérifier la commande",
    fix_errors: "Veuillez corriger les champs signalés.",
    review: "Vérifier et payer", order: "Commande {number}", tax: "Taxe", tax_included: "{name} (incluse)",
    tax_added: "{name}", pay: "Payer {total}", to_payment: "Vous serez dirigé vers la page de paiement.",
    waiting: "En attente de la confirmation du paiement…", paid: "Payée", unpaid: "Non payée",
    thanks: "Merci ! Votre commande est payée.", not_yet: "Le paiement n’est pas encore confirmé. Consultez vos commandes dans un instant.",
    cancelled: "Le paiement n’a pas abouti.", pay_again: "Payer à nouveau",
    processing: "Paiement en cours — nous vous enverrons un e-mail", processing_badge: "En cours", no_order: "Aucune commande à afficher.",
    no_orders: "Aucune commande pour l’instant.", date: "Date", status: "Statut", view: "Voir",
    login_as: "Se connecter en tant que", user_id: "Identifiant", log_in: "Se connecter", log_out: "Se déconnecter",
    token: "Jeton", signed_in: "Connecté en tant que {user}", merged: "Le panier de cette visite est passé dans votre compte ({n} articles dans le panier).",
    merged_none: "Connecté. Rien à reprendre de cette visite.", dropped: "{n} articles n’ont pas pu être repris : {reasons}.",
    logged_out: "Déconnecté.", session_expired: "Votre session a expiré ; veuillez vous reconnecter.",
    dev_hint: "Connexion de développement : tout identifiant est accepté.", token_hint: "Collez un jeton utilisateur (Authorization: Bearer).",
    more: "Plus de commandes", refunded: "Remboursé", canceled_badge: "Annulée", cancel_order: "Annuler la commande", order_canceled: "La commande {number} est annulée.", shipments: "Envois", shipped_with: "{carrier}, numéro de suivi {number}", track: "Suivre le colis", fulfillment: { unfulfilled: "Pas encore expédiée", partially_fulfilled: "Expédiée en partie", fulfilled: "Expédiée" },
    subscriptions: "Abonnements", manage_billing: "Gérer le paiement", sub_active: "Actif", sub_past_due: "Paiement dû", sub_canceled: "Terminé", sub_other: "{status}", renews_on: "Renouvelé le {date}", ends_on: "Se termine le {date}", past_due_note: "Le dernier renouvellement n’a pas pu être prélevé : payez-le ou changez de carte dans « Gérer le paiement ».",
    shipping: "Livraison", recipient: "Destinataire", ship_to: "Livré à", same_as_billing: "Livrer à l’adresse de facturation", shipping_method: "Mode de livraison", phone: "Téléphone (facultatif)", free: "gratuit", days: "{min} à {max} jours", no_shipping: "Aucun mode de livraison ne dessert cette adresse.",
    main_nav: "Menu principal", skip: "Aller au contenu", billed_to: "Facturé à", starts_subscription: "Cette commande démarre un abonnement.",
  },
};

export const LOCALES = Object.keys(WORDS);
export const LANGUAGE_NAMES = { en: "English", de: "Deutsch", fr: "Français" };

const KEY = "store.locale";

function initialLocale() {
  const asked = new URLSearchParams(location.search).get("locale");
  if (asked && LOCALES.includes(asked)) {
    localStorage.setItem(KEY, asked);
    return asked;
  }
  const saved = localStorage.getItem(KEY);
  if (saved && LOCALES.includes(saved)) return saved;
  const browser = (navigator.language || "en").slice(0, 2);
  return LOCALES.includes(browser) ? browser : "en";
}

let current = initialLocale();

export function locale() {
  return current;
}

export function setLocale(value) {
  if (!LOCALES.includes(value)) return;
  current = value;
  localStorage.setItem(KEY, value);
}

/** A UI text: `t("items", {n: 3})`, or a nested one: `t("per.month")`. */
export function t(key, values = {}) {
  const find = (words) => key.split(".").reduce((node, part) => (node ? node[part] : undefined), words);
  const text = find(WORDS[current]) ?? find(WORDS.en) ?? key;
  return String(text).replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}
