// Money arrives as integer minor units plus an ISO 4217 code. The number of minor-unit digits
// (the exponent) comes from the gateway, which counts as the API does; the browser's Intl data
// only formats. The amount is handed to Intl as an exact decimal string, never as a float sum.
import { locale } from "./i18n.js";

let exponents = {};

export function setExponents(table) {
  exponents = table || {};
}

export function exponentOf(currency) {
  if (currency in exponents) return exponents[currency];
  return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions()
    .maximumFractionDigits;
}

/** "1800" EUR, exponent 2 -> "18.00". */
export function toDecimalString(minor, exponent) {
  const negative = minor < 0;
  const digits = String(Math.abs(Math.trunc(minor))).padStart(exponent + 1, "0");
  const whole = exponent ? digits.slice(0, -exponent) : digits;
  const fraction = exponent ? "." + digits.slice(-exponent) : "";
  return (negative ? "-" : "") + whole + fraction;
}

/** A price for people: `formatMoney(1800, "EUR")` -> "18,00 €" in German. */
export function formatMoney(minor, currency) {
  const exponent = exponentOf(currency);
  const format = new Intl.NumberFormat(locale(), {
    style: "currency",
    currency,
    minimumFractionDigits: exponent,
    maximumFractionDigits: exponent,
  });
  return format.format(toDecimalString(minor, exponent));
}

export function formatDate(iso) {
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "short" }).format(
    new Date(iso),
  );
}
