"""`store setupproducts`: make the catalog what a product configuration file describes.

The configuration (format in docs/catalog.md, example in deploy/products/example.json) comes
from `--config` or `ONE_OFF_PRODUCTS_AVAILABLE`: a path to a JSON file, or the JSON itself.
Prices are in `ISO_ALPHA_3_CURRENCY_CODE`. Shipping methods come from its `shipping_methods`,
or from `SHIPPING_METHODS_AVAILABLE` when that is set (docs/shipping.md).

- Each product is applied in its own transaction. A broken entry (bad field, missing or
  refused image) is reported with its key and field and not applied at all; the others still
  are, and the command exits non-zero.
- Products the file lists become exactly what it says: texts in other locales, active prices
  not listed and images not listed are removed (prices are deactivated, never deleted).
  Products the file does not list are left alone.
- Idempotent: a second run reports every product `unchanged` and writes nothing. Images are
  compared by the SHA-256 of their file, so unchanged files are not even decoded again.
- `--dry-run` reports the same steps and rolls every transaction back; no file is written.
  The database schema is still migrated first.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.console import Console
from rich.markup import escape

from libs.contracts.catalog import MAX_UNIT_AMOUNT, TaxRateIn
from libs.contracts.money import normalize_currency
from libs.runtime.migrations import upgrade
from libs.runtime.problems import ProblemError
from libs.runtime.runtime import shared_for
from services.catalog.domain import (
    ImageSource,
    ProductSpec,
    Terms,
    Texts,
    amount_to_minor,
    check_country,
    check_product_key,
    check_statement_descriptor,
    check_tax_code,
    check_terms,
    locale_for_field,
)
from services.catalog.service import CatalogService, SyncOutcome
from services.catalog.settings import CatalogSettings
from services.catalog.shipping import (
    ShippingMethod,
    ShippingPrice,
    check_delivery_days,
    check_shipping_price,
)

log = structlog.get_logger(__name__)

EXIT_OK, EXIT_ENTRY_ERRORS, EXIT_BAD_CONFIG = 0, 1, 2


# ---------------------------------------------------------------------------- the file format


class _Strict(BaseModel):
    # Unknown fields are refused: a misspelt field must not be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriceEntry(_Strict):
    amount: Decimal | None = Field(None, description='Major units, e.g. "12.90".')
    unit_amount: int | None = Field(None, ge=0, le=MAX_UNIT_AMOUNT, description="Minor units.")
    interval: str | None = None
    interval_count: int = 1


class TextsEntry(_Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=10_000)
    checkout_description: str | None = Field(None, max_length=500)
    statement_descriptor: str | None = None


class ProductEntry(_Strict):
    key: str = Field(min_length=1, max_length=128)
    tax_code: str | None = None
    shippable: bool = True
    active: bool = True
    translations: dict[str, TextsEntry] = Field(min_length=1)
    prices: list[PriceEntry] = Field(default_factory=list, max_length=100)
    images: list[str] = Field(default_factory=list, max_length=20)
    # Units on hand when the product starts tracking stock; counted, not configured: a
    # rerun never resets what sales took (docs/stock.md).
    stock: int | None = Field(None, ge=0, le=1_000_000_000)


class TaxRateEntry(TaxRateIn):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ShippingPriceEntry(_Strict):
    amount: Decimal | None = Field(None, description='Major units, e.g. "4.90".')
    unit_amount: int | None = Field(None, ge=0, le=MAX_UNIT_AMOUNT, description="Minor units.")
    free_over: Decimal | None = Field(None, ge=0, description="Major units; free from here on.")


class ShippingMethodEntry(ShippingPriceEntry):
    code: str = Field(min_length=1, max_length=64)
    name: dict[str, str] = Field(min_length=1, description="By locale.")
    countries: list[str] | None = Field(None, description="Omitted: every country.")
    prices: dict[str, ShippingPriceEntry] = Field(
        default_factory=dict, description="Other currencies than ISO_ALPHA_3_CURRENCY_CODE."
    )
    tax_code: str | None = None
    delivery_days_min: int = Field(ge=0)
    delivery_days_max: int = Field(ge=0)
    active: bool = True


class ConfigFile(_Strict):
    description: str | None = None
    products: list[dict[str, Any]] = Field(default_factory=list)
    tax_rates: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    shipping_methods: list[dict[str, Any]] | None = None


class ConfigError(Exception):
    """The configuration as a whole cannot be used (missing, not JSON, wrong shape)."""


class EntryError(Exception):
    """One entry is broken: `field` says where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ProductConfig:
    """A parsed configuration: products still raw, so each is validated on its own."""

    source: str
    base_dir: Path
    products: list[dict[str, Any]]
    tax_rates: dict[str, list[dict[str, Any]]]
    shipping_methods: list[dict[str, Any]] | None = None  # None: leave them as they are


def load_config(value: str) -> ProductConfig:
    """Read a configuration from a file path or inline JSON (a value starting with { or [)."""
    text = value.strip()
    if text.startswith(("{", "[")):
        source, base_dir = "inline JSON", Path.cwd()
    else:
        path = Path(text).expanduser()
        if not path.is_file():
            raise ConfigError(f"no such file: {path}")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        source, base_dir = str(path), path.resolve().parent
    try:
        # Decimals, not floats: 19.99 must stay exactly 19.99.
        raw = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source} is not valid JSON: {exc}") from None
    if isinstance(raw, list):
        raw = {"products": raw}
    try:
        parsed = ConfigFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_first_error(exc)}") from None
    return ProductConfig(
        source, base_dir, parsed.products, parsed.tax_rates, parsed.shipping_methods
    )


def with_shipping_methods(config: ProductConfig, value: str | None) -> ProductConfig:
    """`SHIPPING_METHODS_AVAILABLE` (a file or JSON: a list of methods, or an object with
    `shipping_methods`), when set, in place of the configuration's own."""
    if not value or not value.strip():
        return config
    text = value.strip()
    if not text.startswith(("{", "[")):
        path = Path(text).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeError) as exc:
            raise ConfigError(f"SHIPPING_METHODS_AVAILABLE: cannot read {path}: {exc}") from None
    try:
        raw = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"SHIPPING_METHODS_AVAILABLE is not valid JSON: {exc}") from None
    methods = raw.get("shipping_methods") if isinstance(raw, dict) else raw
    if not isinstance(methods, list):
        raise ConfigError("SHIPPING_METHODS_AVAILABLE: a list of shipping methods is expected")
    return replace(config, shipping_methods=methods)


def parse_shipping_method(raw: dict[str, Any], *, currency: str, position: int) -> ShippingMethod:
    """Validate one shipping method entry; EntryError names the field."""
    try:
        entry = ShippingMethodEntry.model_validate(raw)
    except ValidationError as exc:
        details = exc.errors()[0]
        raise EntryError(_loc(details["loc"]), str(details["msg"])) from None
    try:
        code = check_tax_code(entry.code, "code")  # the same alphabet as tax codes
        assert code is not None
        tax_code = check_tax_code(entry.tax_code, "tax_code")
        names: dict[str, str] = {}
        for raw_locale, name in entry.name.items():
            tag = locale_for_field(f"name.{raw_locale}", raw_locale)
            if not name.strip():
                raise EntryError(f"name.{raw_locale}", "is empty")
            names[tag] = name.strip()
        countries = None
        if entry.countries is not None:
            countries = tuple(
                dict.fromkeys(
                    check_country(c, f"countries.{n}") for n, c in enumerate(entry.countries)
                )
            )
            if not countries:
                raise EntryError("countries", "omit it to ship everywhere, or name a country")
        check_delivery_days(entry.delivery_days_min, entry.delivery_days_max, "delivery_days_min")
        prices = {currency: _shipping_price(entry, currency, "")}
        for raw_currency, price in entry.prices.items():
            other = normalize_currency(raw_currency)
            if other in prices:
                raise EntryError(f"prices.{raw_currency}", f"{other} is given twice")
            prices[other] = _shipping_price(price, other, f"prices.{raw_currency}.")
    except ValueError as exc:
        raise EntryError("prices", str(exc)) from None
    except ProblemError as exc:
        raise _entry_error(exc) from None
    return ShippingMethod(
        code=code,
        names=names,
        countries=countries,
        prices=prices,
        tax_code=tax_code,
        delivery_days_min=entry.delivery_days_min,
        delivery_days_max=entry.delivery_days_max,
        position=position,
        active=entry.active,
    )


def _shipping_price(entry: ShippingPriceEntry, currency: str, prefix: str) -> ShippingPrice:
    if (entry.amount is None) == (entry.unit_amount is None):
        raise EntryError(f"{prefix}amount", 'give either `amount` (e.g. "4.90") or `unit_amount`')
    if entry.amount is not None:
        amount = amount_to_minor(entry.amount, currency, f"{prefix}amount")
    else:
        amount = int(entry.unit_amount or 0)
    free_over = None
    if entry.free_over is not None:
        free_over = amount_to_minor(entry.free_over, currency, f"{prefix}free_over")
    return check_shipping_price(currency, amount, free_over, prefix.rstrip(".") or "price")


def parse_product(raw: dict[str, Any], *, currency: str, base_dir: Path) -> ProductSpec:
    """Validate one product entry completely (images read too); EntryError names the field."""
    try:
        entry = ProductEntry.model_validate(raw)
    except ValidationError as exc:
        details = exc.errors()[0]
        raise EntryError(_loc(details["loc"]), str(details["msg"])) from None
    try:
        key = check_product_key(entry.key, "key")
        tax_code = check_tax_code(entry.tax_code, "tax_code")
        translations: dict[str, Texts] = {}
        for raw_locale, texts in entry.translations.items():
            where = f"translations.{raw_locale}"
            tag = locale_for_field(where, raw_locale)
            if tag in translations:
                raise EntryError(where, f"{tag} is given twice")
            translations[tag] = Texts(
                name=texts.name.strip(),
                description=texts.description.strip(),
                checkout_description=(texts.checkout_description or "").strip() or None,
                statement_descriptor=check_statement_descriptor(
                    texts.statement_descriptor, f"{where}.statement_descriptor"
                ),
            )
        prices: list[Terms] = []
        for n, price in enumerate(entry.prices):
            where = f"prices.{n}"
            if (price.amount is None) == (price.unit_amount is None):
                raise EntryError(where, 'give either `amount` (e.g. "12.90") or `unit_amount`')
            if price.amount is not None:
                unit_amount = amount_to_minor(price.amount, currency, f"{where}.amount")
                if unit_amount > MAX_UNIT_AMOUNT:
                    raise EntryError(f"{where}.amount", "is too large")
            else:
                unit_amount = int(price.unit_amount or 0)
            terms = check_terms(
                unit_amount=unit_amount,
                currency=currency,
                interval=price.interval,
                interval_count=price.interval_count,
                prefix=f"{where}.",
            )
            if terms in prices:
                raise EntryError(where, f"same price as prices.{prices.index(terms)}")
            prices.append(terms)
        images = [_read_image(base_dir, name, f"images.{n}") for n, name in enumerate(entry.images)]
    except ProblemError as exc:
        raise _entry_error(exc) from None
    hashes = [image.source_hash for image in images]
    for n, digest in enumerate(hashes):
        if hashes.index(digest) != n:
            raise EntryError(f"images.{n}", f"same file as images.{hashes.index(digest)}")
    return ProductSpec(
        key=key,
        tax_code=tax_code,
        shippable=entry.shippable,
        active=entry.active,
        translations=translations,
        prices=prices,
        images=images,
        initial_stock=entry.stock,
    )


def _read_image(base_dir: Path, name: str, where: str) -> ImageSource:
    path = (base_dir / name).expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EntryError(where, f"cannot read image {path}: {exc.strerror or exc}") from None
    return ImageSource(where, Path(name).name, data, hashlib.sha256(data).hexdigest())


# ---------------------------------------------------------------------------- applying


@dataclass
class Report:
    """What a run did, for the exit code and the summary line."""

    counts: dict[str, int] = field(
        default_factory=lambda: {"created": 0, "updated": 0, "unchanged": 0, "error": 0}
    )

    @property
    def failed(self) -> bool:
        return self.counts["error"] > 0


Printer = Any  # a rich Console, or None when seeding quietly


async def apply_config(
    service: CatalogService,
    config: ProductConfig,
    *,
    currency: str,
    dry_run: bool = False,
    console: Printer = None,
) -> Report:
    """Apply tax rates (one transaction per country), then each product in its own."""
    report = Report()
    for country, rates in config.tax_rates.items():
        label = f"tax rates {country}"
        try:
            parsed = []
            for n, raw in enumerate(rates):
                try:
                    parsed.append(TaxRateEntry.model_validate(raw))
                except ValidationError as exc:
                    details = exc.errors()[0]
                    raise EntryError(f"{n}.{_loc(details['loc'])}", str(details["msg"])) from None
            result, status = await service.sync_tax_rates(
                country=country,
                rates=parsed,
                prefix=f"tax_rates.{country}.",
                country_field=f"tax_rates.{country}",
                dry_run=dry_run,
            )
        except (EntryError, ProblemError) as exc:
            error = exc if isinstance(exc, EntryError) else _entry_error(exc)
            _line(console, "error", label, f"{error.field}: {error.message}")
            if console is None:
                log.warning("catalog.seed_error", key=label, field=error.field, error=error.message)
            report.counts["error"] += 1
            continue
        report.counts[status] += 1
        _line(console, status, label, f"{len(result)} rate(s)")

    if config.shipping_methods is not None:
        await _apply_shipping_methods(
            service, config.shipping_methods, currency, report, dry_run=dry_run, console=console
        )

    seen: dict[str, int] = {}
    for index, raw in enumerate(config.products):
        label = str(raw.get("key")) if isinstance(raw, dict) and raw.get("key") else f"#{index}"
        try:
            spec = parse_product(raw, currency=currency, base_dir=config.base_dir)
            if spec.key in seen:
                raise EntryError("key", f"duplicate of product #{seen[spec.key]}")
            seen[spec.key] = index
            outcome = await service.sync_product(spec=spec, dry_run=dry_run)
            if spec.initial_stock is not None and not dry_run:
                if await service.stock.start_tracking(key=spec.key, on_hand=spec.initial_stock):
                    outcome.steps.append(f"stock: {spec.initial_stock} on hand")
        except (EntryError, ProblemError) as exc:
            error = exc if isinstance(exc, EntryError) else _entry_error(exc)
            _line(console, "error", label, f"{error.field}: {error.message}")
            if console is None:  # seeding: nobody reads a console, so say it in the log
                log.warning("catalog.seed_error", key=label, field=error.field, error=error.message)
            report.counts["error"] += 1
            continue
        except Exception as exc:  # e.g. the database went away: this product, not the run
            _line(console, "error", label, f"not applied: {exc.__class__.__name__}: {exc}")
            log.error("catalog.product_not_applied", key=label, exc_info=exc)
            report.counts["error"] += 1
            continue
        report.counts[outcome.status] += 1
        _outcome(console, outcome)
    return report


async def _apply_shipping_methods(
    service: CatalogService,
    entries: list[dict[str, Any]],
    currency: str,
    report: Report,
    *,
    dry_run: bool,
    console: Printer,
) -> None:
    """All shipping methods in one transaction: a broken entry applies none of them, so the
    shop never offers half of a new set."""
    methods: list[ShippingMethod] = []
    seen: set[str] = set()
    for index, raw in enumerate(entries):
        label = f"shipping {raw.get('code') if isinstance(raw, dict) else f'#{index}'}"
        try:
            if not isinstance(raw, dict):
                raise EntryError("entry", "a shipping method is an object")
            method = parse_shipping_method(raw, currency=currency, position=index)
            if method.code in seen:
                raise EntryError("code", f"{method.code} is given twice")
            seen.add(method.code)
            methods.append(method)
        except EntryError as error:
            _line(console, "error", label, f"{error.field}: {error.message}")
            if console is None:
                log.warning("catalog.seed_error", key=label, field=error.field, error=error.message)
            report.counts["error"] += 1
            return
    for code, status in await service.shipping.sync_shipping_methods(
        methods=methods, dry_run=dry_run
    ):
        counted = "updated" if status == "deactivated" else status
        report.counts[counted] += 1
        _line(console, status, f"shipping {code}")


async def setupproducts(
    *, config: str | None, dry_run: bool, settings: CatalogSettings, console: Console
) -> int:
    """The command's body: migrate, read the configuration, apply it, print a summary."""
    from services.catalog.bootstrap import build_runtime, build_service

    value = config if config is not None else settings.products_available
    if not value or not value.strip():
        console.print(
            "[red]error[/red] no products: set ONE_OFF_PRODUCTS_AVAILABLE (a JSON file or "
            "inline JSON) or pass --config"
        )
        return EXIT_BAD_CONFIG
    try:
        parsed = with_shipping_methods(load_config(value), settings.shipping_methods_available)
    except ConfigError as exc:
        console.print(f"[red]error[/red] {escape(str(exc))}")
        return EXIT_BAD_CONFIG

    runtime = build_runtime(settings, shared_for(settings.runtime))
    try:
        await upgrade(runtime.engine, runtime.migrations_dir)
        service = build_service(settings, runtime)
        mode = " [yellow](dry run: nothing is changed)[/yellow]" if dry_run else ""
        console.print(
            f"Setting up products from {escape(parsed.source)}, prices in {settings.currency}{mode}"
        )
        report = await apply_config(
            service, parsed, currency=settings.currency, dry_run=dry_run, console=console
        )
    finally:
        await runtime.engine.dispose()
    summary = ", ".join(
        f"{count} {'failed' if status == 'error' else status}"
        for status, count in report.counts.items()
    )
    console.print(f"{'Would be' if dry_run else 'Done'}: {summary}")
    return EXIT_ENTRY_ERRORS if report.failed else EXIT_OK


def run_setupproducts(
    *, config: str | None, dry_run: bool, settings: CatalogSettings | None = None
) -> int:
    """`store setupproducts [--config FILE|JSON] [--dry-run]`; returns the exit code."""
    settings = settings or CatalogSettings()
    console = Console(highlight=False, soft_wrap=True)
    return asyncio.run(
        setupproducts(config=config, dry_run=dry_run, settings=settings, console=console)
    )


async def seed_if_empty(service: CatalogService, settings: CatalogSettings) -> Report | None:
    """Embedded mode: fill an empty catalog from the seed file (the shipped example); a
    catalog seeded before shipping existed gets the seed's shipping methods only."""
    empty = await service.is_empty()
    if not empty and await service.shipping.has_methods():
        return None
    path = settings.resolved_seed_file()
    try:
        config = with_shipping_methods(load_config(str(path)), settings.shipping_methods_available)
    except ConfigError as exc:
        log.warning("catalog.seed_skipped", reason=str(exc))
        return None
    if not empty:
        config = replace(config, products=[], tax_rates={})
    report = await apply_config(service, config, currency=settings.currency)
    log.info("catalog.seeded", source=str(path), **report.counts)
    return report


# ---------------------------------------------------------------------------- output

_STYLES = {
    "created": "green",
    "updated": "cyan",
    "deactivated": "yellow",
    "unchanged": "dim",
    "error": "bold red",
}


def _line(console: Printer, status: str, label: str, detail: str = "") -> None:
    if console is None:
        return
    style = _STYLES.get(status, "")
    text = f"  [{style}]{status:<10}[/{style}] {escape(label)}"
    if detail:
        text += f"{' ' * max(1, 16 - len(label))}  {escape(detail)}"
    console.print(text)


def _outcome(console: Printer, outcome: SyncOutcome) -> None:
    if console is None:
        return
    if outcome.status == "created":
        _line(console, "created", outcome.key, ", ".join(outcome.steps))
        return
    _line(console, outcome.status, outcome.key)
    for step in outcome.steps:
        console.print(f"      - {escape(step)}")


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "entry"


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{_loc(error['loc'])}: {error['msg']}"


def _entry_error(exc: ProblemError) -> EntryError:
    if exc.errors:
        return EntryError(exc.errors[0].field, exc.errors[0].message)
    return EntryError("entry", exc.detail or exc.title)
