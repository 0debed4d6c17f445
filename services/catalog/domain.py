"""Catalog rules: what a valid product, price, text and tax rate is; locales; price changes.

Pure functions and domain errors only; nothing here does I/O.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

import pycountry
from babel import Locale, UnknownLocaleError, negotiate_locale

from libs.contracts.money import currency_exponent, normalize_currency
from libs.runtime.problems import Conflict, InvalidInput, NotFound, ProblemError

# --------------------------------------------------------------------------------- errors


class ProductNotFound(NotFound):
    code = "product_not_found"
    title = "No such product"


class PricingNotFound(NotFound):
    code = "pricing_not_found"
    title = "No such price"


class ImageNotFound(NotFound):
    code = "image_not_found"
    title = "No such image"


class TranslationNotFound(NotFound):
    code = "translation_not_found"
    title = "No such translation"


class ProductExists(Conflict):
    code = "product_exists"
    title = "A product with this key exists"


class PricingInactive(Conflict):
    code = "pricing_inactive"
    title = "The price is no longer active"


class ImageExists(Conflict):
    code = "image_exists"
    title = "The product already has this image"


# Image refusals keep the image module's codes; the status says what kind of refusal it is.
_IMAGE_STATUS = {"image_too_large": 413, "unsupported_image_format": 415}


def image_refused(code: str, detail: str, field: str = "file") -> ProblemError:
    """The problem for an upload the image module refused."""
    error = InvalidInput.for_field(field, detail, code=code)
    error.status = _IMAGE_STATUS.get(code, 422)
    error.title = "The image was refused"
    return error


# --------------------------------------------------------------------------------- locales

_LOCALE_SHAPE = re.compile(r"[A-Za-z]{2,8}([-_][A-Za-z0-9]{1,8}){0,3}")
_NOT_LOCALES = frozenset({"und", "root", "c", "posix"})


def normalize_locale(value: str) -> str:
    """Return the canonical BCP 47 tag of a CLDR locale (`de-de` -> `de-DE`); ValueError if none."""
    candidate = value.strip() if isinstance(value, str) else ""
    if not _LOCALE_SHAPE.fullmatch(candidate) or candidate.lower() in _NOT_LOCALES:
        raise ValueError(f"not a locale: {value!r}")
    try:
        parsed = Locale.parse(candidate.replace("_", "-"), sep="-")
    except (UnknownLocaleError, ValueError, TypeError) as exc:
        raise ValueError(f"unknown locale {candidate!r}") from exc
    return locale_tag(parsed)


def locale_tag(locale: Locale) -> str:
    """A babel Locale as a BCP 47 tag: language[-Script][-REGION]."""
    parts = [locale.language, locale.script, locale.territory]
    return "-".join(part for part in parts if part)


def locale_for_field(field_name: str, value: str) -> str:
    """`normalize_locale`, as a 422 problem naming the field."""
    try:
        return normalize_locale(value)
    except ValueError as exc:
        raise InvalidInput.for_field(field_name, str(exc), code="unknown_locale") from None


def parse_accept_language(header: str | None, *, limit: int = 10) -> list[str]:
    """The locales of an Accept-Language header, most preferred first; bad entries are ignored."""
    if not header:
        return []
    weighted: list[tuple[float, int, str]] = []
    for index, item in enumerate(header.split(",")[:50]):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, raw = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(raw)
                except ValueError:
                    quality = -1.0
        if quality <= 0 or not tag or tag == "*":
            continue
        try:
            weighted.append((-quality, index, normalize_locale(tag)))
        except ValueError:
            continue
    ordered: list[str] = []
    for _, _, tag in sorted(weighted):
        if tag not in ordered:
            ordered.append(tag)
    return ordered[:limit]


def language_of(tag: str) -> str:
    return tag.split("-", 1)[0]


def locale_chain(preferences: Sequence[str], available: Iterable[str], default: str) -> list[str]:
    """The locales to take texts from, best first, among those a product has.

    Each preference is negotiated with babel against the available locales (`de-AT` finds
    `de`); a bare language also finds a regional variant (`de` finds `de-CH`). Then the
    default locale, then whatever else exists, so a product always has a name.
    """
    options = sorted(set(available))
    chain: list[str] = []

    def add(tag: str | None) -> None:
        if tag is not None and tag in options and tag not in chain:
            chain.append(tag)

    for wanted in [*preferences, default]:
        add(negotiate_locale([wanted], options, sep="-"))
        if "-" not in wanted:
            for option in options:
                if language_of(option) == wanted:
                    add(option)
    for option in options:
        add(option)
    return chain


# --------------------------------------------------------------------------------- texts

_DESCRIPTOR_FORBIDDEN = set("<>\\'\"*")


def check_statement_descriptor(value: str | None, field_name: str) -> str | None:
    """Card networks' rule: 5-22 Latin (ASCII) characters, at least one letter, none of <>\\'"*."""
    if value is None:
        return None
    text = value.strip()
    problem = None
    if not 5 <= len(text) <= 22:
        problem = f"must be 5 to 22 characters, not {len(text)}"
    elif any(not (" " <= char <= "~") for char in text):
        problem = "only Latin letters, digits, spaces and basic punctuation are allowed"
    elif _DESCRIPTOR_FORBIDDEN.intersection(text):
        problem = "must not contain any of < > \\ ' \" *"
    elif not any(char.isalpha() for char in text):
        problem = "must contain at least one letter"
    if problem:
        raise InvalidInput.for_field(field_name, problem, code="invalid_statement_descriptor")
    return text


@dataclass(frozen=True)
class Texts:
    """A product's texts in one locale."""

    name: str
    description: str = ""
    checkout_description: str | None = None
    statement_descriptor: str | None = None


@dataclass(frozen=True)
class ResolvedTexts:
    locale: str
    name: str
    description: str
    checkout_description: str | None
    statement_descriptor: str | None


def resolve_texts(translations: Mapping[str, Texts], chain: Sequence[str]) -> ResolvedTexts:
    """Each field from the first locale in `chain` that has it; `locale` is the name's."""

    def first(attribute: str) -> tuple[str | None, str | None]:
        for tag in chain:
            value = getattr(translations[tag], attribute)
            if value:
                return tag, value
        return None, None

    name_locale, name = first("name")
    return ResolvedTexts(
        locale=name_locale or (chain[0] if chain else ""),
        name=name or "",
        description=first("description")[1] or "",
        checkout_description=first("checkout_description")[1],
        statement_descriptor=first("statement_descriptor")[1],
    )


# --------------------------------------------------------------------------------- products

_PRODUCT_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_TAX_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


def check_product_key(value: str, field_name: str = "key") -> str:
    """Product keys are URL- and folder-safe: letters, digits, `.`, `_`, `-`, at most 128."""
    if not _PRODUCT_KEY.fullmatch(value):
        raise InvalidInput.for_field(
            field_name,
            "must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit",
            code="invalid_product_key",
        )
    return value


def check_tax_code(value: str | None, field_name: str = "tax_code") -> str | None:
    if value is None:
        return None
    if not _TAX_CODE.fullmatch(value):
        raise InvalidInput.for_field(
            field_name,
            "must be 1-64 letters, digits, '_', '.', ':' or '-'",
            code="invalid_tax_code",
        )
    return value


def check_country(value: str, field_name: str = "country") -> str:
    """An ISO 3166-1 alpha-2 country code, upper case."""
    code = value.strip().upper() if isinstance(value, str) else ""
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise InvalidInput.for_field(
            field_name, f"unknown country {value!r} (ISO 3166-1 alpha-2)", code="unknown_country"
        )
    return code


# --------------------------------------------------------------------------------- prices

IntervalName = Literal["day", "week", "month", "year"]

# Stripe's limit, which card schemes share: a recurring price repeats at least once a year.
MAX_INTERVAL_COUNT: Mapping[str, int] = {"day": 365, "week": 52, "month": 12, "year": 1}
_APPROX_DAYS: Mapping[str, int] = {"day": 1, "week": 7, "month": 30, "year": 365}


@dataclass(frozen=True)
class Terms:
    """What a price charges: the part of a Pricing that can never change once sold."""

    unit_amount: int
    currency: str
    interval: IntervalName | None = None
    interval_count: int = 1

    @property
    def recurring(self) -> bool:
        return self.interval is not None

    @property
    def slot(self) -> tuple[str, str | None, int]:
        """Prices in the same slot are alternatives of each other (a change replaces one)."""
        return (self.currency, self.interval, self.interval_count)

    def sort_key(self) -> tuple[int, int, str, int]:
        """One-off first, then shorter intervals, then currency and amount."""
        days = _APPROX_DAYS[self.interval] * self.interval_count if self.interval else 0
        return (int(self.recurring), days, self.currency, self.unit_amount)


def check_terms(
    *,
    unit_amount: int,
    currency: str,
    interval: str | None,
    interval_count: int,
    prefix: str = "",
) -> Terms:
    """Validate a price; every problem is a 422 naming `<prefix>field`."""
    try:
        code = normalize_currency(currency)
    except (TypeError, ValueError) as exc:
        raise InvalidInput.for_field(
            f"{prefix}currency", str(exc), code="unknown_currency"
        ) from None
    if isinstance(unit_amount, bool) or not isinstance(unit_amount, int) or unit_amount < 0:
        raise InvalidInput.for_field(
            f"{prefix}unit_amount",
            "must be a whole number of minor units, 0 or more",
            code="invalid_amount",
        )
    if interval is None:
        if interval_count != 1:
            raise InvalidInput.for_field(
                f"{prefix}interval_count",
                "a one-off price has interval_count 1",
                code="invalid_interval",
            )
        return Terms(unit_amount, code, None, 1)
    if interval not in MAX_INTERVAL_COUNT:
        raise InvalidInput.for_field(
            f"{prefix}interval",
            "must be null (one-off), day, week, month or year",
            code="invalid_interval",
        )
    if not 1 <= interval_count <= MAX_INTERVAL_COUNT[interval]:
        raise InvalidInput.for_field(
            f"{prefix}interval_count",
            f"must be 1 to {MAX_INTERVAL_COUNT[interval]} for '{interval}' "
            "(a recurring price repeats at least once a year)",
            code="invalid_interval",
        )
    return Terms(unit_amount, code, interval, interval_count)  # type: ignore[arg-type]


def amount_to_minor(value: str | int | Decimal, currency: str, field_name: str) -> int:
    """A decimal amount of major units as exact minor units; more decimals than allowed is 422."""
    try:
        amount = Decimal(str(value).strip())
    except ArithmeticError:
        amount = Decimal("NaN")
    if isinstance(value, float) or not amount.is_finite():
        raise InvalidInput.for_field(
            field_name, f"not a decimal amount: {value!r}", code="invalid_amount"
        )
    exponent = currency_exponent(currency)
    minor = amount.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise InvalidInput.for_field(
            field_name,
            f"{currency} has {exponent} decimals; {value} has more",
            code="invalid_amount",
        )
    if minor < 0:
        raise InvalidInput.for_field(field_name, "must be 0 or more", code="invalid_amount")
    return int(minor)


ChangeKind = Literal["unchanged", "in_place", "replace"]


def how_to_change(*, current: Terms, wanted: Terms, used: bool) -> ChangeKind:
    """A price that was sold is never edited: a new one replaces it. An unsold one is edited."""
    if current == wanted:
        return "unchanged"
    return "replace" if used else "in_place"


@dataclass(frozen=True)
class ExistingPrice:
    id: str
    terms: Terms
    used: bool


@dataclass
class PricePlan:
    """What to do so that a product's active prices become exactly the wanted ones."""

    keep: list[str] = field(default_factory=list)
    create: list[Terms] = field(default_factory=list)
    edit: list[tuple[str, Terms]] = field(default_factory=list)
    replace: list[tuple[str, Terms]] = field(default_factory=list)
    deactivate: list[str] = field(default_factory=list)

    @property
    def changes(self) -> bool:
        return bool(self.create or self.edit or self.replace or self.deactivate)


def plan_prices(existing: Sequence[ExistingPrice], wanted: Sequence[Terms]) -> PricePlan:
    """Match wanted prices to active ones: same terms are kept; a changed amount in the same
    slot (currency, interval) edits an unsold price or replaces a sold one; the rest are
    created or deactivated."""
    plan = PricePlan()
    left = list(existing)
    pending: list[Terms] = []
    for terms in wanted:
        match = next((price for price in left if price.terms == terms), None)
        if match is None:
            pending.append(terms)
        else:
            plan.keep.append(match.id)
            left.remove(match)
    for terms in pending:
        match = next((price for price in left if price.terms.slot == terms.slot), None)
        if match is None:
            plan.create.append(terms)
            continue
        left.remove(match)
        if how_to_change(current=match.terms, wanted=terms, used=match.used) == "replace":
            plan.replace.append((match.id, terms))
        else:
            plan.edit.append((match.id, terms))
    plan.deactivate.extend(price.id for price in left)
    return plan


# --------------------------------------------------------------------------------- pages


def encode_cursor(key: str) -> str:
    """An opaque cursor after `key`."""
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, field_name: str = "cursor") -> str:
    """The key a cursor points after; a cursor we did not make is a 422."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = base64.urlsafe_b64decode(padded.encode("ascii")).decode()
    except (ValueError, binascii.Error, UnicodeError):
        key = ""
    if not _PRODUCT_KEY.fullmatch(key) or encode_cursor(key) != cursor:
        raise InvalidInput.for_field(field_name, "not a cursor of this list", code="invalid_cursor")
    return key


# --------------------------------------------------------------------------------- tax rates


@dataclass(frozen=True)
class TaxRate:
    id: str
    country_code: str
    display_name: str
    percentage: Decimal
    inclusive: bool
    tax_code: str | None
    created_at: datetime | None = None


def select_tax_rates(rates: Sequence[TaxRate], tax_code: str | None) -> list[TaxRate]:
    """A country's rates for `tax_code`; when none has that code, its general rates (no code)."""
    if tax_code is not None:
        matching = [rate for rate in rates if rate.tax_code == tax_code]
        if matching:
            return matching
    return [rate for rate in rates if rate.tax_code is None]


# --------------------------------------------------------------------------------- entities


@dataclass(frozen=True)
class Product:
    id: str
    key: str
    tax_code: str | None
    shippable: bool
    active: bool
    sellable: bool
    has_one_off: bool
    has_recurring: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Pricing:
    id: str
    product_id: str
    terms: Terms
    active: bool
    used: bool
    replaced_by: str | None
    created_at: datetime


@dataclass(frozen=True)
class ProductImage:
    id: str
    product_id: str
    position: int
    content_hash: str
    source_hash: str
    content_type: str
    width: int
    height: int
    path: str
    thumbnails: Mapping[int, str]
    created_at: datetime


def price_flags(active: bool, prices: Iterable[Terms]) -> tuple[bool, bool, bool]:
    """(sellable, has_one_off, has_recurring) of a product from its active prices."""
    terms = list(prices)
    one_off = any(not t.recurring for t in terms)
    recurring = any(t.recurring for t in terms)
    return (active and (one_off or recurring), one_off, recurring)


@dataclass(frozen=True)
class ImageSource:
    """An image file as configured for a product, before processing."""

    field: str
    name: str
    data: bytes
    source_hash: str


@dataclass(frozen=True)
class ProductSpec:
    """A product as configuration describes it completely (what `setupproducts` applies)."""

    key: str
    tax_code: str | None
    shippable: bool
    active: bool
    translations: Mapping[str, Texts]
    prices: Sequence[Terms]
    images: Sequence[ImageSource] = ()
    initial_stock: int | None = None  # on hand when it starts tracking (never reset later)


def decimal_text(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros: Decimal('19.00') -> '19'."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def format_terms(terms: Terms) -> str:
    """`12.90 EUR`, `9.90 EUR / month`, `30.00 EUR / 3 months` for reports."""
    from libs.contracts.money import to_decimal

    text = f"{to_decimal(terms.unit_amount, terms.currency)} {terms.currency}"
    if terms.interval:
        every = (
            terms.interval
            if terms.interval_count == 1
            else f"{terms.interval_count} {terms.interval}s"
        )
        text += f" / {every}"
    return text
