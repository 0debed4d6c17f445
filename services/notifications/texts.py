"""The words of every message, per language; the templates place them (`t("key", ...)`).

A key missing in one language falls back to English, so a new key never breaks a message.
"""

from __future__ import annotations

from typing import Final

TEXTS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "label": "{label}: {value}",
        "greeting": "Hello {name},",
        "greeting_anonymous": "Hello,",
        "signature": "Thank you for shopping with {shop}.",
        "order_number": "Order {number}",
        "your_orders": "Your orders",
        "order_paid.subject": "Your order {number} is confirmed",
        "order_paid.intro": "We received your payment. This is what you ordered:",
        "item": "Item",
        "quantity": "Qty",
        "price": "Price",
        "amount": "Amount",
        "subtotal": "Subtotal",
        "shipping": "Shipping ({method})",
        "tax": "Tax",
        "tax_included": "incl. {name}",
        "total": "Total",
        "ship_to": "Shipping to:",
        "order_shipped.subject": "Your order {number} has shipped",
        "order_shipped.intro": "Your order is on its way with {carrier}.",
        "order_shipped.partial": "This is part of your order; the rest follows separately.",
        "tracking_number": "Tracking number: {tracking_number}",
        "track_parcel": "Track your parcel",
        "track_parcel_at": "Track your parcel: {url}",
        "your_orders_at": "Your orders: {url}",
        "in_parcel": "In this parcel:",
        "refund_issued.subject": "Refund for your order {number}",
        "refund_issued.intro": "We refunded {amount} to your original payment method.",
        "refund_issued.delay": "Depending on your bank, it may take a few days to appear.",
        "payment_failed.subject": "The payment for your order {number} did not go through",
        "payment_failed.intro": "We could not take the payment of {amount} for your order. "
        "Your order is saved and nothing was charged.",
        "payment_failed.retry": "You can pay for it again from your orders.",
        "renewal_paid.subject": "Your subscription was renewed",
        "renewal_paid.intro": "We charged {amount} for the next period of your subscription "
        "(order {number}).",
        "renewal_paid.until": "It now runs until {until}.",
        "renewal_failed.subject": "We could not renew your subscription",
        "renewal_failed.payment_failed": "Charging {amount} for the next period of your "
        "subscription (order {number}) failed.",
        "renewal_failed.action_required": "Your bank asks you to confirm the payment of "
        "{amount} for the next period of your subscription (order {number}).",
        "renewal_failed.fix": "Update your card or pay the invoice here:",
        "renewal_failed.fix_link": "Fix the payment",
        "renewal_failed.next_attempt": "We will try again on {next_attempt}.",
    },
    "de": {
        "label": "{label}: {value}",
        "greeting": "Hallo {name},",
        "greeting_anonymous": "Hallo,",
        "signature": "Vielen Dank für Ihren Einkauf bei {shop}.",
        "order_number": "Bestellung {number}",
        "your_orders": "Ihre Bestellungen",
        "order_paid.subject": "Ihre Bestellung {number} ist bestätigt",
        "order_paid.intro": "Wir haben Ihre Zahlung erhalten. Das haben Sie bestellt:",
        "item": "Artikel",
        "quantity": "Menge",
        "price": "Preis",
        "amount": "Betrag",
        "subtotal": "Zwischensumme",
        "shipping": "Versand ({method})",
        "tax": "Steuer",
        "tax_included": "inkl. {name}",
        "total": "Gesamtsumme",
        "ship_to": "Lieferadresse:",
        "order_shipped.subject": "Ihre Bestellung {number} wurde versandt",
        "order_shipped.intro": "Ihre Bestellung ist mit {carrier} unterwegs.",
        "order_shipped.partial": "Dies ist ein Teil Ihrer Bestellung; der Rest folgt separat.",
        "tracking_number": "Sendungsnummer: {tracking_number}",
        "track_parcel": "Sendung verfolgen",
        "track_parcel_at": "Sendung verfolgen: {url}",
        "your_orders_at": "Ihre Bestellungen: {url}",
        "in_parcel": "In diesem Paket:",
        "refund_issued.subject": "Erstattung zu Ihrer Bestellung {number}",
        "refund_issued.intro": "Wir haben Ihnen {amount} auf Ihr ursprüngliches Zahlungsmittel "
        "erstattet.",
        "refund_issued.delay": "Je nach Bank kann es einige Tage dauern, bis der Betrag erscheint.",
        "payment_failed.subject": "Die Zahlung für Ihre Bestellung {number} ist fehlgeschlagen",
        "payment_failed.intro": "Wir konnten die Zahlung über {amount} für Ihre Bestellung "
        "nicht durchführen. Ihre Bestellung ist gespeichert, es wurde nichts abgebucht.",
        "payment_failed.retry": "Sie können sie in Ihren Bestellungen erneut bezahlen.",
        "renewal_paid.subject": "Ihr Abonnement wurde verlängert",
        "renewal_paid.intro": "Wir haben {amount} für den nächsten Zeitraum Ihres Abonnements "
        "abgebucht (Bestellung {number}).",
        "renewal_paid.until": "Es läuft nun bis zum {until}.",
        "renewal_failed.subject": "Wir konnten Ihr Abonnement nicht verlängern",
        "renewal_failed.payment_failed": "Die Abbuchung von {amount} für den nächsten Zeitraum "
        "Ihres Abonnements (Bestellung {number}) ist fehlgeschlagen.",
        "renewal_failed.action_required": "Ihre Bank bittet Sie, die Zahlung von {amount} für "
        "den nächsten Zeitraum Ihres Abonnements (Bestellung {number}) zu bestätigen.",
        "renewal_failed.fix": "Aktualisieren Sie Ihre Karte oder bezahlen Sie die Rechnung hier:",
        "renewal_failed.fix_link": "Zahlung korrigieren",
        "renewal_failed.next_attempt": "Wir versuchen es am {next_attempt} erneut.",
    },
    "fr": {
        "label": "{label} : {value}",
        "greeting": "Bonjour {name},",
        "greeting_anonymous": "Bonjour,",
        "signature": "Merci pour votre achat chez {shop}.",
        "order_number": "Commande {number}",
        "your_orders": "Vos commandes",
        "order_paid.subject": "Votre commande {number} est confirmée",
        "order_paid.intro": "Nous avons bien reçu votre paiement. Voici votre commande :",
        "item": "Article",
        "quantity": "Qté",
        "price": "Prix",
        "amount": "Montant",
        "subtotal": "Sous-total",
        "shipping": "Livraison ({method})",
        "tax": "Taxes",
        "tax_included": "dont {name}",
        "total": "Total",
        "ship_to": "Adresse de livraison :",
        "order_shipped.subject": "Votre commande {number} a été expédiée",
        "order_shipped.intro": "Votre commande est en route avec {carrier}.",
        "order_shipped.partial": "Ceci est une partie de votre commande ; le reste suivra "
        "séparément.",
        "tracking_number": "Numéro de suivi : {tracking_number}",
        "track_parcel": "Suivre votre colis",
        "track_parcel_at": "Suivre votre colis : {url}",
        "your_orders_at": "Vos commandes : {url}",
        "in_parcel": "Dans ce colis :",
        "refund_issued.subject": "Remboursement de votre commande {number}",
        "refund_issued.intro": "Nous vous avons remboursé {amount} sur votre moyen de paiement "
        "d'origine.",
        "refund_issued.delay": "Selon votre banque, le montant peut mettre quelques jours à "
        "apparaître.",
        "payment_failed.subject": "Le paiement de votre commande {number} n'a pas abouti",
        "payment_failed.intro": "Nous n'avons pas pu encaisser le paiement de {amount} pour "
        "votre commande. Votre commande est enregistrée et rien n'a été débité.",
        "payment_failed.retry": "Vous pouvez la payer à nouveau depuis vos commandes.",
        "renewal_paid.subject": "Votre abonnement a été renouvelé",
        "renewal_paid.intro": "Nous avons débité {amount} pour la prochaine période de votre "
        "abonnement (commande {number}).",
        "renewal_paid.until": "Il est désormais valable jusqu'au {until}.",
        "renewal_failed.subject": "Nous n'avons pas pu renouveler votre abonnement",
        "renewal_failed.payment_failed": "Le prélèvement de {amount} pour la prochaine période "
        "de votre abonnement (commande {number}) a échoué.",
        "renewal_failed.action_required": "Votre banque vous demande de confirmer le paiement "
        "de {amount} pour la prochaine période de votre abonnement (commande {number}).",
        "renewal_failed.fix": "Mettez à jour votre carte ou réglez la facture ici :",
        "renewal_failed.fix_link": "Régulariser le paiement",
        "renewal_failed.next_attempt": "Nous réessaierons le {next_attempt}.",
    },
}


def translate(locale: str, key: str, **values: object) -> str:
    """The text of `key` in `locale` (else English), with `values` filled in."""
    text = TEXTS.get(locale, {}).get(key) or TEXTS["en"][key]
    return text.format(**values)
