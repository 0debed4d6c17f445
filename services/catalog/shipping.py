"""Shipping methods: catalog reference data, like tax rates (docs/shipping.md).

A method has a code, names by locale, a zone (countries, or every country), a price per
currency with an optional free-over amount, a tax code and delivery days. The catalog only
says what a method costs where; the orders service decides the amount of an order's shipping
(free-over, tax) when it prepares the order.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from libs.contracts.catalog import ShippingMethodOut, ShippingQuoteOut, TaxRateOut
from libs.contracts.money import charge_step, normalize_currency
from libs.runtime.problems import InvalidInput, ProblemError
from libs.runtime.runtime import Runtime
from services.catalog.domain import (
    TaxRate,
    check_country,
    locale_chain,
    locale_for_field,
    parse_accept_language,
    select_tax_rates,
)
from services.catalog.store import SqlCatalogRepository, new_id
from services.catalog.tables import shipping_methods

SyncStatus = Literal["created", "updated", "unchanged", "deactivated"]
MAX_DELIVERY_DAYS = 365


class _DryRun(Exception):
    """Rolls a dry run's transaction back."""


class ShippingUnavailable(ProblemError):
    status, code, title = 422, "shipping_unavailable", "This shipping method cannot ship there"


# --------------------------------------------------------------------------------- the rules


@dataclass(frozen=True)
class ShippingPrice:
    """What a method costs in one currency, in its minor units."""

    amount: int
    free_over: int | None = None


@dataclass(frozen=True)
class ShippingMethod:
    code: str
    names: Mapping[str, str]
    countries: tuple[str, ...] | None  # None: every country
    prices: Mapping[str, ShippingPrice]
    tax_code: str | None
    delivery_days_min: int
    delivery_days_max: int
    position: int = 0
    active: bool = True
    id: str = ""

    def ships_to(self, country: str) -> bool:
        return self.countries is None or country in self.countries

    def terms(self) -> tuple[Any, ...]:
        """Everything configuration sets: equal terms mean nothing to write."""
        return (
            dict(self.names),
            self.countries,
            {c: (p.amount, p.free_over) for c, p in self.prices.items()},
            self.tax_code,
            self.delivery_days_min,
            self.delivery_days_max,
            self.position,
            self.active,
        )


def check_shipping_price(
    currency: str, amount: int, free_over: int | None, field: str
) -> ShippingPrice:
    """A price the payment provider can charge: whole charge steps (10 fils for BHD...)."""
    step = charge_step(currency)
    if amount % step:
        raise InvalidInput.for_field(
            f"{field}.amount",
            f"{currency} charges are whole multiples of {step} minor units",
            code="amount_not_chargeable",
        )
    return ShippingPrice(amount=amount, free_over=free_over)


def check_delivery_days(low: int, high: int, field: str) -> None:
    if not 0 <= low <= high <= MAX_DELIVERY_DAYS:
        raise InvalidInput.for_field(
            field, f"need 0 <= min <= max <= {MAX_DELIVERY_DAYS}", code="invalid_delivery_days"
        )


def method_name(method: ShippingMethod, preferences: Sequence[str], default: str) -> str:
    chain = locale_chain(preferences, method.names, default)
    return method.names[chain[0]] if chain else method.code


def method_out(
    method: ShippingMethod, currency: str, preferences: Sequence[str], default: str
) -> ShippingMethodOut:
    price = method.prices[currency]
    return ShippingMethodOut(
        code=method.code,
        name=method_name(method, preferences, default),
        currency=currency,
        amount=price.amount,
        free_over=price.free_over,
        tax_code=method.tax_code,
        countries=list(method.countries) if method.countries is not None else None,
        delivery_days_min=method.delivery_days_min,
        delivery_days_max=method.delivery_days_max,
    )


def available(
    methods: Sequence[ShippingMethod], country: str, currency: str
) -> list[ShippingMethod]:
    """The active methods that ship to `country` and have a price in `currency`, in order."""
    return sorted(
        (m for m in methods if m.active and m.ships_to(country) and currency in m.prices),
        key=lambda m: (m.position, m.code),
    )


# --------------------------------------------------------------------------------- storage


class SqlShippingRepository:
    def __init__(self, session: AsyncSession | AsyncConnection) -> None:
        self.session = session

    async def all(self) -> list[ShippingMethod]:
        rows = (await self.session.execute(select(shipping_methods))).all()
        return [_method(row._mapping) for row in rows]

    async def insert(self, method: ShippingMethod, at: datetime) -> None:
        await self.session.execute(
            insert(shipping_methods).values(
                id=new_id(), code=method.code, created_at=at, updated_at=at, **_values(method)
            )
        )

    async def update(self, method: ShippingMethod, at: datetime) -> None:
        await self.session.execute(
            update(shipping_methods)
            .where(shipping_methods.c.code == method.code)
            .values(updated_at=at, **_values(method))
        )


def _values(method: ShippingMethod) -> dict[str, Any]:
    return {
        "names": dict(method.names),
        "countries": list(method.countries) if method.countries is not None else None,
        "prices": {
            currency: {"amount": price.amount, "free_over": price.free_over}
            for currency, price in method.prices.items()
        },
        "tax_code": method.tax_code,
        "delivery_days_min": method.delivery_days_min,
        "delivery_days_max": method.delivery_days_max,
        "position": method.position,
        "active": method.active,
    }


def _method(m: Mapping[Any, Any]) -> ShippingMethod:
    countries = m["countries"]
    return ShippingMethod(
        id=m["id"],
        code=m["code"],
        names=dict(m["names"]),
        countries=tuple(countries) if countries is not None else None,
        prices={
            currency: ShippingPrice(amount=int(p["amount"]), free_over=p.get("free_over"))
            for currency, p in (m["prices"] or {}).items()
        },
        tax_code=m["tax_code"],
        delivery_days_min=int(m["delivery_days_min"]),
        delivery_days_max=int(m["delivery_days_max"]),
        position=int(m["position"]),
        active=bool(m["active"]),
    )


# --------------------------------------------------------------------------------- the verbs


class ShippingService:
    """Lists and quotes shipping methods; `setupproducts` syncs them from configuration."""

    def __init__(self, *, runtime: Runtime, default_locale: str = "en") -> None:
        self.runtime = runtime
        self.default_locale = default_locale

    async def list_shipping_methods(
        self,
        *,
        country: str,
        currency: str,
        locale: str | None = None,
        accept_language: str | None = None,
    ) -> list[ShippingMethodOut]:
        """The methods that ship to a country in a currency, with their price there."""
        code = check_country(country, "country")
        money = _currency(currency)
        preferences = _preferences(locale, accept_language)
        async with self._reading() as connection:
            methods = await SqlShippingRepository(connection).all()
        return [
            method_out(m, money, preferences, self.default_locale)
            for m in available(methods, code, money)
        ]

    async def has_methods(self) -> bool:
        """True when any shipping method exists (active or not)."""
        async with self._reading() as connection:
            return bool(await SqlShippingRepository(connection).all())

    async def get_shipping_quote(
        self, *, code: str, country: str, currency: str, locale: str | None = None
    ) -> ShippingQuoteOut:
        """One method for an order, with the destination's tax rates for its tax code."""
        destination = check_country(country, "country")
        money = _currency(currency)
        preferences = _preferences(locale, None)
        async with self._reading() as connection:
            methods = await SqlShippingRepository(connection).all()
            rates = await SqlCatalogRepository(connection).tax_rates_of(destination)
        found = next((m for m in available(methods, destination, money) if m.code == code), None)
        if found is None:
            raise ShippingUnavailable(
                f"Shipping method {code!r} does not ship to {destination} in {money}.",
                errors=InvalidInput.for_field("shipping.method", "not available there").errors,
            )
        return ShippingQuoteOut(
            method=method_out(found, money, preferences, self.default_locale),
            tax_rates=[_rate_out(rate) for rate in select_tax_rates(rates, found.tax_code)],
        )

    async def sync_shipping_methods(
        self, *, methods: Sequence[ShippingMethod], dry_run: bool = False
    ) -> list[tuple[str, SyncStatus]]:
        """Make the methods exactly `methods` (by code); others stop shipping (deactivated,
        kept for the record). Idempotent: a rerun reports every method `unchanged`."""
        report: list[tuple[str, SyncStatus]] = []
        at = datetime.now(UTC)
        with contextlib.suppress(_DryRun):
            await self._sync(methods, report, at, dry_run=dry_run)
        return report

    async def _sync(
        self,
        methods: Sequence[ShippingMethod],
        report: list[tuple[str, SyncStatus]],
        at: datetime,
        *,
        dry_run: bool,
    ) -> None:
        async with self.runtime.transaction() as session:
            repo = SqlShippingRepository(session)
            existing = {m.code: m for m in await repo.all()}
            wanted = {m.code for m in methods}
            for method in methods:
                before = existing.get(method.code)
                if before is None:
                    await repo.insert(method, at)
                    report.append((method.code, "created"))
                elif before.terms() != method.terms():
                    await repo.update(method, at)
                    report.append((method.code, "updated"))
                else:
                    report.append((method.code, "unchanged"))
            for code, before in existing.items():
                if code not in wanted and before.active:
                    await repo.update(ShippingMethod(**{**before.__dict__, "active": False}), at)
                    report.append((code, "deactivated"))
            if dry_run:
                raise _DryRun  # rolls the transaction back, the report stays

    @contextlib.asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        async with self.runtime.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            yield connection


def _currency(value: str) -> str:
    try:
        return normalize_currency(value)
    except ValueError as exc:
        raise InvalidInput.for_field("currency", str(exc), code="unknown_currency") from None


def _preferences(locale: str | None, accept_language: str | None) -> list[str]:
    if locale:
        return [locale_for_field("locale", locale)]
    return parse_accept_language(accept_language)


def _rate_out(rate: TaxRate) -> TaxRateOut:
    return TaxRateOut(
        id=rate.id,
        display_name=rate.display_name,
        percentage=rate.percentage,
        country_code=rate.country_code,
        inclusive=rate.inclusive,
        tax_code=rate.tax_code,
    )
