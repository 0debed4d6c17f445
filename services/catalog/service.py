"""CatalogService: the catalog's verbs — reading products and prices, and changing them."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Literal, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from libs.contracts.catalog import (
    ImageOut,
    PriceIn,
    PriceOut,
    PricingInfo,
    PricingLookupOut,
    PricingOut,
    ProductAdminOut,
    ProductImageOut,
    ProductIn,
    ProductOut,
    ProductSearchParams,
    ProductUpdateIn,
    TaxRateIn,
    TaxRateOut,
    TranslationIn,
    TranslationOut,
)
from libs.contracts.common import Page
from libs.runtime.problems import Conflict, InvalidInput, ProblemError
from libs.runtime.runtime import Runtime
from services.catalog.domain import (
    ExistingPrice,
    ImageExists,
    ImageNotFound,
    ImageSource,
    Pricing,
    PricingInactive,
    PricingNotFound,
    Product,
    ProductExists,
    ProductImage,
    ProductNotFound,
    ProductSpec,
    TaxRate,
    Terms,
    Texts,
    TranslationNotFound,
    check_country,
    check_product_key,
    check_statement_descriptor,
    check_tax_code,
    check_terms,
    decimal_text,
    decode_cursor,
    encode_cursor,
    format_terms,
    how_to_change,
    image_refused,
    language_of,
    locale_chain,
    locale_for_field,
    parse_accept_language,
    plan_prices,
    resolve_texts,
    select_tax_rates,
)
from services.catalog.images import (
    ImageRejected,
    ImageRules,
    MediaStore,
    ProcessedImage,
    StoredImage,
    process_image_async,
)
from services.catalog.publishes import pricing_changed, product_changed
from services.catalog.search import (
    SearchQuery,
    decode_search_cursor,
    encode_search_cursor,
    parse_search,
    product_search_for,
    wants_search,
)
from services.catalog.shipping import ShippingService
from services.catalog.stock import StockService, stock_view
from services.catalog.store import SqlCatalogRepository, new_id

MAX_PAGE_SIZE = 100

T = TypeVar("T")

SyncStatus = Literal["created", "updated", "unchanged"]


@dataclass
class SyncOutcome:
    """What applying a ProductSpec did (or, in a dry run, would do)."""

    key: str
    status: SyncStatus
    steps: list[str] = field(default_factory=list)


class _DryRun(Exception):
    """Rolls a dry run's transaction back once its outcome is known."""

    def __init__(self, outcome: object) -> None:
        super().__init__("dry run")
        self.outcome = outcome


@dataclass(frozen=True)
class _NewImage:
    source: ImageSource
    processed: ProcessedImage
    stored: StoredImage | None
    written: tuple[str, ...]  # files this sync created (removed again if it fails)


class CatalogService:
    """Products, prices, texts, images and tax rates; events through the runtime's outbox."""

    def __init__(
        self,
        *,
        runtime: Runtime,
        media: MediaStore,
        rules: ImageRules,
        default_locale: str = "en",
        media_url_prefix: str = "/media",
        stock_hold: timedelta = timedelta(hours=25),
    ) -> None:
        self.runtime = runtime
        self.media = media
        self.rules = rules
        self.default_locale = default_locale
        self.media_url_prefix = media_url_prefix
        self.shipping = ShippingService(runtime=runtime, default_locale=default_locale)
        self.stock = StockService(runtime=runtime, hold=stock_hold)

    # ============================================================== reads

    async def list_products(
        self,
        *,
        locale: str | None = None,
        accept_language: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
        active: bool = True,
        recurring: bool | None = None,
        q: str | None = None,
        shippable: bool | None = None,
        price_min: int | None = None,
        price_max: int | None = None,
        currency: str | None = None,
        sort: str | None = None,
    ) -> Page[ProductOut]:
        """A page of products in key order, with active prices, images and texts; with any
        search parameter, the products found, in the sort asked for (search.py)."""
        preferences = self._preferences(locale, accept_language)
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidInput.for_field("limit", f"must be 1 to {MAX_PAGE_SIZE}")
        search = ProductSearchParams(
            q=q,
            shippable=shippable,
            price_min=price_min,
            price_max=price_max,
            currency=currency,
            sort=sort,
        )
        if wants_search(search):
            return await self._search_products(
                parse_search(search),
                preferences=preferences,
                limit=limit,
                cursor=cursor,
                active=active,
                recurring=recurring,
            )
        after = decode_cursor(cursor) if cursor else None
        async with self._reading() as session:
            repo = SqlCatalogRepository(session)
            found = await repo.list_products(
                sellable=active, recurring=recurring, after_key=after, limit=limit + 1
            )
            page = found[:limit]
            items = await self._public_products(repo, page, preferences)
        next_cursor = encode_cursor(page[-1].key) if len(found) > limit else None
        return Page[ProductOut](items=items, next_cursor=next_cursor)

    async def _search_products(
        self,
        query: SearchQuery,
        *,
        preferences: Sequence[str],
        limit: int,
        cursor: str | None,
        active: bool,
        recurring: bool | None,
    ) -> Page[ProductOut]:
        after = decode_search_cursor(cursor, query.sort) if cursor else None
        # The shopper's languages, then the default's: a product without a translation is
        # found (and shown) by the texts it falls back to.
        languages = list(
            dict.fromkeys([*(language_of(p) for p in preferences[:2]), self.default_locale])
        )
        async with self._reading() as connection:
            found = await product_search_for(connection.dialect.name).search(
                connection,
                query,
                languages=languages,
                sellable=active,
                recurring=recurring,
                after=after,
                limit=limit + 1,
            )
            page = found[:limit]
            items = await self._public_products(
                SqlCatalogRepository(connection),
                [f.product for f in page],
                preferences,
                currency=query.currency,
            )
        next_cursor = None
        if len(found) > limit:
            last = page[-1]
            next_cursor = encode_search_cursor(query.sort, last.sort_value, last.product.id)
        return Page[ProductOut](items=items, next_cursor=next_cursor)

    async def get_product(
        self, *, key: str, locale: str | None = None, accept_language: str | None = None
    ) -> ProductOut:
        """One product by key, whether or not it can be bought now (see `active`)."""
        preferences = self._preferences(locale, accept_language)
        async with self._reading() as session:
            repo = SqlCatalogRepository(session)
            product = await repo.get_product(key)
            if product is None:
                raise ProductNotFound(f"no product with key {key!r}")
            return (await self._public_products(repo, [product], preferences))[0]

    async def lookup_pricings(
        self, *, ids: Sequence[str], locale: str | None = None, country: str | None = None
    ) -> PricingLookupOut:
        """Many prices in one call, with their product's texts; unknown ids in `missing`.
        With a country, also its tax rates for the prices' tax codes (one call per order)."""
        preferences = [locale_for_field("locale", locale)] if locale else []
        country_code = check_country(country, "country") if country is not None else None
        wanted = list(dict.fromkeys(ids))
        async with self._reading() as session:
            repo = SqlCatalogRepository(session)
            found = {p.id: (p, product) for p, product in await repo.pricings_with_products(wanted)}
            texts = await repo.translations_of(sorted({prod.id for _, prod in found.values()}))
            rates = await repo.tax_rates_of(country_code) if country_code and found else []
        items = []
        for pricing_id in wanted:
            if pricing_id not in found:
                continue
            pricing, product = found[pricing_id]
            translations = texts.get(product.id, {})
            resolved = resolve_texts(
                translations, locale_chain(preferences, translations, self.default_locale)
            )
            terms = pricing.terms
            items.append(
                PricingInfo(
                    pricing_id=pricing.id,
                    product_key=product.key,
                    name=resolved.name,
                    checkout_description=resolved.checkout_description,
                    statement_descriptor=resolved.statement_descriptor,
                    unit_amount=terms.unit_amount,
                    currency=terms.currency,
                    interval=terms.interval,
                    interval_count=terms.interval_count,
                    active=pricing.active and product.active,
                    tax_code=product.tax_code,
                    shippable=product.shippable,
                )
            )
        applicable: dict[str, TaxRate] = {}
        for tax_code in dict.fromkeys(product.tax_code for _, product in found.values()):
            applicable |= {rate.id: rate for rate in select_tax_rates(rates, tax_code)}
        return PricingLookupOut(
            items=items,
            missing=[i for i in wanted if i not in found],
            tax_rates=[_tax_rate_out(rate) for rate in applicable.values()],
            country=country_code,
        )

    async def mark_prices_sold(self, session: AsyncSession, *, pricing_ids: Iterable[str]) -> None:
        """Prices in a checked-out cart are sold: from now on they are replaced, never edited."""
        # Marking is idempotent and order-free: a late or repeated event sets the same flag.
        await SqlCatalogRepository(session).mark_used(pricing_ids)

    async def get_tax_rates(self, *, country: str, tax_code: str | None = None) -> list[TaxRateOut]:
        """A country's rates for a tax code, or its general rates when none has that code."""
        country_code = check_country(country, "country")
        async with self._reading() as session:
            rates = await SqlCatalogRepository(session).tax_rates_of(country_code)
        return [_tax_rate_out(rate) for rate in select_tax_rates(rates, tax_code or None)]

    async def get_product_admin(self, *, key: str) -> ProductAdminOut:
        """Everything a product holds: all texts, every price (inactive too), images."""
        async with self._reading() as session:
            repo = SqlCatalogRepository(session)
            product = await self._require_product(repo, key)
            return await self._admin_view(repo, product)

    async def is_empty(self) -> bool:
        """True when the catalog has no product at all."""
        async with self._reading() as session:
            return not await SqlCatalogRepository(session).has_products()

    # ============================================================== writes

    async def create_product(self, *, product: ProductIn) -> ProductAdminOut:
        """Create a product with its texts and prices; its key must be new (409)."""
        key = check_product_key(product.key)
        tax_code = check_tax_code(product.tax_code)
        translations = _translations(product.translations, "translations")
        terms = [_terms(price, f"prices.{n}.") for n, price in enumerate(product.prices)]
        try:
            async with self.runtime.transaction() as session:
                repo = SqlCatalogRepository(session)
                if await repo.get_product(key) is not None:
                    raise _exists(key)
                created = await repo.insert_product(
                    key=key, tax_code=tax_code, shippable=product.shippable, active=product.active
                )
                for locale, texts in translations.items():
                    await repo.put_translation(created.id, locale, texts)
                for item in terms:
                    pricing = await repo.insert_pricing(created.id, item)
                    await self.runtime.record(session, pricing_changed(pricing, key))
                created = await repo.refresh_flags(created.id)
                await self._record_product(session, repo, created)
        except IntegrityError:
            raise _exists(key) from None
        return await self.get_product_admin(key=key)

    async def update_product(self, *, key: str, changes: ProductUpdateIn) -> ProductAdminOut:
        """Change a product's tax code, shipping or active flag (only the fields given)."""
        values: dict[str, object] = {}
        if "tax_code" in changes.model_fields_set:
            values["tax_code"] = check_tax_code(changes.tax_code)
        for name in ("shippable", "active"):
            value = getattr(changes, name)
            if name in changes.model_fields_set:
                if value is None:
                    raise InvalidInput.for_field(name, "must be true or false")
                values[name] = value
        async with self.runtime.transaction() as session:
            repo = SqlCatalogRepository(session)
            product = await self._require_product(repo, key, for_update=True)
            changed = {k: v for k, v in values.items() if getattr(product, k) != v}
            if changed:
                await repo.update_product(product.id, **changed)
                product = await repo.refresh_flags(product.id)
                await self._record_product(session, repo, product)
        return await self.get_product_admin(key=key)

    async def put_translation(
        self, *, key: str, locale: str, translation: TranslationIn
    ) -> TranslationOut:
        """Set a product's texts in one locale (created or replaced)."""
        tag = locale_for_field("locale", locale)
        texts = _texts(translation, "")
        async with self.runtime.transaction() as session:
            repo = SqlCatalogRepository(session)
            product = await self._require_product(repo, key, for_update=True)
            current = (await repo.translations_of([product.id])).get(product.id, {})
            if current.get(tag) != texts:
                await repo.put_translation(product.id, tag, texts)
                await repo.update_product(product.id)
                await self._record_product(session, repo, product)
        return TranslationOut(locale=tag, **texts.__dict__)

    async def delete_translation(self, *, key: str, locale: str) -> None:
        """Remove a product's texts in one locale; the last one cannot go (409)."""
        tag = locale_for_field("locale", locale)
        async with self.runtime.transaction() as session:
            repo = SqlCatalogRepository(session)
            product = await self._require_product(repo, key, for_update=True)
            current = (await repo.translations_of([product.id])).get(product.id, {})
            if tag not in current:
                raise TranslationNotFound(f"product {key!r} has no texts in {tag}")
            if len(current) == 1:
                raise Conflict("a product keeps at least one translation", code="last_translation")
            await repo.delete_translation(product.id, tag)
            await repo.update_product(product.id)
            await self._record_product(session, repo, product)

    async def add_price(self, *, key: str, price: PriceIn) -> PricingOut:
        """Add a price to a product."""
        terms = _terms(price, "")
        async with self.runtime.transaction() as session:
            repo = SqlCatalogRepository(session)
            product = await self._require_product(repo, key, for_update=True)
            pricing = await repo.insert_pricing(product.id, terms)
            await self.runtime.record(session, pricing_changed(pricing, key))
            await self._refresh(session, repo, product)
        return _pricing_out(pricing, key)

    async def change_price(self, *, key: str, pricing_id: str, price: PriceIn) -> PricingOut:
        """Change a price: edited in place if never sold, else replaced by a new one."""
        terms = _terms(price, "")
        async with self.runtime.transaction() as session:
            repo = SqlCatalogRepository(session)
            product = await self._require_product(repo, key, for_update=True)
            current = await self._require_pricing(repo, product, pricing_id, for_update=True)
            if not current.active:
                raise PricingInactive(
                    f"price {pricing_id} is inactive"
                    + (f"; it was replaced by {current.replaced_by}" if current.replaced_by else "")
                )
            result = await self._apply_change(session, repo, product, current, terms)
        return _pricing_out(result, key)

    async def deactivate_price(self, *, key: str, pricing_id: str) -> PricingOut:
        """Stop selling a price (it stays readable for orders that point at it)."""
        async with self.runtime.transaction() as session:
            repo = SqlCatalogRepository(session)
            product = await self._require_product(repo, key, for_update=True)
            pricing = await self._require_pricing(repo, product, pricing_id, for_update=True)
            if pricing.active:
                await repo.deactivate_pricing(pricing.id)
                pricing = _with(pricing, active=False)
                await self.runtime.record(session, pricing_changed(pricing, key))
                await self._refresh(session, repo, product)
        return _pricing_out(pricing, key)

    async def upload_image(
        self, *, key: str, data: bytes, position: int | None = None
    ) -> ProductImageOut:
        """Add an image: validated, re-encoded without metadata, thumbnails made."""
        if position is not None and not 0 <= position <= 10_000:
            raise InvalidInput.for_field("position", "must be 0 to 10000")
        async with self._reading() as session:
            await self._require_product(SqlCatalogRepository(session), key)
        source = ImageSource("file", "upload", data, hashlib.sha256(data).hexdigest())
        new = await self._prepare_image(key, source, dry_run=False)
        try:
            async with self.runtime.transaction() as session:
                repo = SqlCatalogRepository(session)
                product = await self._require_product(repo, key, for_update=True)
                existing = (await repo.images_of([product.id])).get(product.id, [])
                if any(img.content_hash == new.processed.content_hash for img in existing):
                    raise ImageExists(f"product {key!r} already has this image")
                if position is None:
                    position = await repo.next_image_position(product.id)
                image = await self._insert_image(repo, product, new, position)
                await repo.update_product(product.id)
                await self._record_product(session, repo, product)
        except IntegrityError:
            await self._discard(new)
            raise ImageExists(f"product {key!r} already has this image") from None
        except BaseException:
            await self._discard(new)
            raise
        return self._image_admin_out(image)

    async def delete_image(self, *, key: str, image_id: str) -> None:
        """Remove an image and its files."""
        async with self.runtime.transaction() as session:
            repo = SqlCatalogRepository(session)
            product = await self._require_product(repo, key, for_update=True)
            image = await repo.get_image(image_id)
            if image is None or image.product_id != product.id:
                raise ImageNotFound(f"product {key!r} has no image {image_id}")
            await repo.delete_image(image.id)
            await repo.update_product(product.id)
            await self._record_product(session, repo, product)
        # Files go once the row is gone for good; names are unique per product and content.
        await self.media.delete_async(_stored(key, image))

    async def put_tax_rates(self, *, country: str, rates: Sequence[TaxRateIn]) -> list[TaxRateOut]:
        """Replace a country's tax rates; unchanged rates keep their ids."""
        result, _ = await self.sync_tax_rates(country=country, rates=rates, prefix="rates.")
        return result

    async def sync_tax_rates(
        self,
        *,
        country: str,
        rates: Sequence[TaxRateIn],
        prefix: str = "",
        country_field: str = "country_code",
        dry_run: bool = False,
    ) -> tuple[list[TaxRateOut], SyncStatus]:
        """Make a country's rates exactly `rates`; returns them and what changed."""
        code = check_country(country, country_field)
        wanted: list[TaxRate] = []
        for n, rate in enumerate(rates):
            tax_code = check_tax_code(rate.tax_code, f"{prefix}{n}.tax_code")
            twin = next(
                (
                    m
                    for m, other in enumerate(wanted)
                    if (other.tax_code, other.percentage, other.inclusive)
                    == (tax_code, rate.percentage, rate.inclusive)
                ),
                None,
            )
            if twin is not None:
                raise InvalidInput.for_field(
                    f"{prefix}{n}", f"same rate as {prefix}{twin}", code="duplicate_rate"
                )
            wanted.append(
                TaxRate(
                    id=new_id(),
                    country_code=code,
                    display_name=rate.display_name.strip(),
                    percentage=rate.percentage,
                    inclusive=rate.inclusive,
                    tax_code=tax_code,
                )
            )

        async def apply(session: AsyncSession) -> tuple[list[TaxRateOut], SyncStatus]:
            repo = SqlCatalogRepository(session)
            existing = await repo.tax_rates_of(code)
            result: list[TaxRate] = []
            inserted = 0
            for rate in wanted:
                same = next((e for e in existing if _same_rate(e, rate)), None)
                if same is None:
                    result.append(await repo.insert_tax_rate(rate))
                    inserted += 1
                else:
                    existing.remove(same)
                    result.append(same)
            await repo.delete_tax_rates([e.id for e in existing])
            status: SyncStatus = "unchanged"
            if inserted or existing:
                status = "created" if inserted == len(result) and not existing else "updated"
            return [_tax_rate_out(rate) for rate in result], status

        return await self._in_transaction(apply, dry_run=dry_run)

    # ============================================================== configuration sync

    async def sync_product(self, *, spec: ProductSpec, dry_run: bool = False) -> SyncOutcome:
        """Make one product exactly what `spec` describes, in one transaction (or none: dry run).

        Prices follow the price rules (kept, edited if unsold, replaced if sold, deactivated);
        images are matched by the hash of their file, so an unchanged file is not reprocessed.
        """
        async with self._reading() as session:
            repo = SqlCatalogRepository(session)
            before = await repo.get_product(spec.key)
            known = (await repo.images_of([before.id])).get(before.id, []) if before else []
        known_hashes = {image.source_hash for image in known}
        new_images: dict[str, _NewImage] = {}
        try:
            for source in spec.images:
                if source.source_hash not in known_hashes:
                    new_images[source.source_hash] = await self._prepare_image(
                        spec.key, source, dry_run=dry_run
                    )

            async def apply(session: AsyncSession) -> tuple[SyncOutcome, list[StoredImage]]:
                return await self._apply_spec(session, spec, new_images, dry_run=dry_run)

            outcome, removed = await self._in_transaction(apply, dry_run=dry_run)
        except BaseException:
            for new in new_images.values():
                await self._discard(new)
            raise
        for stored in removed:
            await self.media.delete_async(stored)
        return outcome

    async def _apply_spec(
        self,
        session: AsyncSession,
        spec: ProductSpec,
        new_images: Mapping[str, _NewImage],
        *,
        dry_run: bool,
    ) -> tuple[SyncOutcome, list[StoredImage]]:
        repo = SqlCatalogRepository(session)
        steps: list[str] = []
        product = await repo.get_product(spec.key, for_update=True)
        created = product is None
        if product is None:
            product = await repo.insert_product(
                key=spec.key, tax_code=spec.tax_code, shippable=spec.shippable, active=spec.active
            )
        else:
            wanted = {"tax_code": spec.tax_code, "shippable": spec.shippable, "active": spec.active}
            changed = {k: v for k, v in wanted.items() if getattr(product, k) != v}
            if changed:
                await repo.update_product(product.id, **changed)
                steps.append("product " + ", ".join(f"{k}={v}" for k, v in changed.items()))

        # Texts: exactly the configured locales.
        current = (await repo.translations_of([product.id])).get(product.id, {})
        for locale, texts in spec.translations.items():
            if current.get(locale) != texts:
                await repo.put_translation(product.id, locale, texts)
                steps.append(f"text {locale} {'updated' if locale in current else 'added'}")
        for locale in sorted(set(current) - set(spec.translations)):
            await repo.delete_translation(product.id, locale)
            steps.append(f"text {locale} removed")

        # Prices: the active ones become exactly the configured ones.
        active = (await repo.prices_of([product.id], active_only=True)).get(product.id, [])
        by_id = {p.id: p for p in active}
        plan = plan_prices(
            [ExistingPrice(p.id, p.terms, p.used) for p in active], list(spec.prices)
        )
        for terms in plan.create:
            pricing = await repo.insert_pricing(product.id, terms)
            await self.runtime.record(session, pricing_changed(pricing, spec.key))
            steps.append(f"price {format_terms(terms)} added")
        for pricing_id, terms in [*plan.edit, *plan.replace]:
            old = by_id[pricing_id]
            result = await self._apply_change(session, repo, product, old, terms, refresh=False)
            verb = "changed" if result.id == old.id else "replaced"
            steps.append(f"price {format_terms(old.terms)} {verb} by {format_terms(terms)}")
        for pricing_id in plan.deactivate:
            old = by_id[pricing_id]
            await repo.deactivate_pricing(old.id)
            await self.runtime.record(session, pricing_changed(_with(old, active=False), spec.key))
            steps.append(f"price {format_terms(old.terms)} deactivated")

        # Images: in the configured order; others removed (their files after commit).
        images = (await repo.images_of([product.id])).get(product.id, [])
        removed: list[StoredImage] = []
        matched: set[str] = set()
        for position, source in enumerate(spec.images):
            image = next((i for i in images if i.source_hash == source.source_hash), None)
            new = new_images.get(source.source_hash)
            if image is None and new is not None:
                image = next(
                    (i for i in images if i.content_hash == new.processed.content_hash), None
                )
            if image is not None:
                matched.add(image.id)
                if image.position != position:
                    await repo.set_image_position(image.id, position)
                    steps.append(f"image {source.name} moved to {position}")
                continue
            if new is None:  # present at the first look, gone since: upload it next run
                raise Conflict(f"image {source.name} changed during the run; run again")
            if not dry_run:
                await self._insert_image(repo, product, new, position)
            steps.append(f"image {source.name} added")
        for image in images:
            if image.id not in matched:
                await repo.delete_image(image.id)
                removed.append(_stored(spec.key, image))
                steps.append(f"image {PurePosixPath(image.path).name} removed")

        sellable_before = product.sellable
        product = await repo.refresh_flags(product.id)
        if steps and not created:
            await repo.update_product(product.id)
        describes_product = any(s.startswith(("product", "text", "image")) for s in steps)
        if created or describes_product or product.sellable != sellable_before:
            await self._record_product(session, repo, product)
        if created:
            summary = [
                f"{len(spec.translations)} text(s)",
                f"{len(spec.prices)} price(s)",
                f"{len(spec.images)} image(s)",
            ]
            return SyncOutcome(spec.key, "created", summary), removed
        return SyncOutcome(spec.key, "updated" if steps else "unchanged", steps), removed

    # ============================================================== helpers

    @contextlib.asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        """A plain connection for reads: Core statements without the ORM session's overhead,
        and without a transaction: under READ COMMITTED each statement sees its own snapshot
        either way, so BEGIN and ROLLBACK would only add two round trips to every page."""
        async with self.runtime.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            yield connection

    def _preferences(self, locale: str | None, accept_language: str | None) -> list[str]:
        if locale is not None:
            return [locale_for_field("locale", locale)]
        return parse_accept_language(accept_language)

    async def _public_products(
        self,
        repo: SqlCatalogRepository,
        page: Sequence[Product],
        preferences: Sequence[str],
        *,
        currency: str | None = None,
    ) -> list[ProductOut]:
        ids = [p.id for p in page]
        prices = await repo.prices_of(ids, active_only=True)
        images = await repo.images_of(ids)
        texts = await repo.translations_of(ids)
        levels = await self.stock.levels_of(repo.session, ids)
        items = []
        for product in page:
            own = prices.get(product.id, [])
            if currency is not None and any(p.terms.currency == currency for p in own):
                prices[product.id] = [p for p in own if p.terms.currency == currency]
            translations = texts.get(product.id, {})
            resolved = resolve_texts(
                translations, locale_chain(preferences, translations, self.default_locale)
            )
            items.append(
                ProductOut(
                    key=product.key,
                    name=resolved.name,
                    description=resolved.description,
                    checkout_description=resolved.checkout_description,
                    locale=resolved.locale or self.default_locale,
                    shippable=product.shippable,
                    tax_code=product.tax_code,
                    active=product.sellable,
                    prices=[
                        PriceOut(
                            id=p.id,
                            unit_amount=p.terms.unit_amount,
                            currency=p.terms.currency,
                            interval=p.terms.interval,
                            interval_count=p.terms.interval_count,
                        )
                        for p in prices.get(product.id, [])
                    ],
                    images=[self._image_out(i) for i in images.get(product.id, [])],
                    stock=stock_view(levels.get(product.id)),
                )
            )
        return items

    async def _admin_view(self, repo: SqlCatalogRepository, product: Product) -> ProductAdminOut:
        prices = (await repo.prices_of([product.id], active_only=False)).get(product.id, [])
        images = (await repo.images_of([product.id])).get(product.id, [])
        texts = (await repo.translations_of([product.id])).get(product.id, {})
        return ProductAdminOut(
            key=product.key,
            tax_code=product.tax_code,
            shippable=product.shippable,
            active=product.active,
            sellable=product.sellable,
            translations={
                locale: TranslationOut(locale=locale, **t.__dict__)
                for locale, t in sorted(texts.items())
            },
            prices=[_pricing_out(p, product.key) for p in prices],
            images=[self._image_admin_out(i) for i in images],
            created_at=product.created_at,
            updated_at=product.updated_at,
        )

    def _url(self, path: str) -> str:
        return f"{self.media_url_prefix}/{path}"

    def _image_out(self, image: ProductImage) -> ImageOut:
        return ImageOut(
            url=self._url(image.path),
            thumbnails={str(size): self._url(p) for size, p in sorted(image.thumbnails.items())},
            width=image.width,
            height=image.height,
        )

    def _image_admin_out(self, image: ProductImage) -> ProductImageOut:
        public = self._image_out(image)
        return ProductImageOut(
            **public.model_dump(),
            id=image.id,
            position=image.position,
            content_hash=image.content_hash,
            content_type=image.content_type,
        )

    async def _require_product(
        self, repo: SqlCatalogRepository, key: str, *, for_update: bool = False
    ) -> Product:
        product = await repo.get_product(key, for_update=for_update)
        if product is None:
            raise ProductNotFound(f"no product with key {key!r}")
        return product

    async def _require_pricing(
        self,
        repo: SqlCatalogRepository,
        product: Product,
        pricing_id: str,
        *,
        for_update: bool = False,
    ) -> Pricing:
        pricing = await repo.get_pricing(pricing_id, for_update=for_update)
        if pricing is None or pricing.product_id != product.id:
            raise PricingNotFound(f"product {product.key!r} has no price {pricing_id}")
        return pricing

    async def _apply_change(
        self,
        session: AsyncSession,
        repo: SqlCatalogRepository,
        product: Product,
        current: Pricing,
        terms: Terms,
        *,
        refresh: bool = True,
    ) -> Pricing:
        """Edit an unsold price in place, or replace a sold one; publish what happened."""
        kind = how_to_change(current=current.terms, wanted=terms, used=current.used)
        if kind == "unchanged":
            return current
        if kind == "in_place":
            await repo.edit_pricing(current.id, terms)
            result = _with(current, terms=terms)
            await self.runtime.record(session, pricing_changed(result, product.key))
        else:
            result = await repo.insert_pricing(product.id, terms)
            await repo.deactivate_pricing(current.id, replaced_by=result.id)
            await self.runtime.record(session, pricing_changed(result, product.key))
            old = _with(current, active=False, replaced_by=result.id)
            await self.runtime.record(session, pricing_changed(old, product.key))
        if refresh:
            await self._refresh(session, repo, product)
        return result

    async def _refresh(
        self, session: AsyncSession, repo: SqlCatalogRepository, product: Product
    ) -> None:
        """Recompute the listing flags; tell consumers when the product's sellability changed."""
        refreshed = await repo.refresh_flags(product.id)
        await repo.update_product(product.id)
        if refreshed.sellable != product.sellable:
            await self._record_product(session, repo, refreshed)

    async def _record_product(
        self, session: AsyncSession, repo: SqlCatalogRepository, product: Product
    ) -> None:
        texts = (await repo.translations_of([product.id])).get(product.id, {})
        await self.runtime.record(session, product_changed(product, texts, self.default_locale))

    async def _prepare_image(self, key: str, source: ImageSource, *, dry_run: bool) -> _NewImage:
        """Process an image (in a worker thread) and, unless dry, write its files."""
        try:
            processed = await process_image_async(source.data, self.rules)
        except ImageRejected as exc:
            raise image_refused(exc.code, exc.detail, source.field) from None
        if dry_run:
            return _NewImage(source, processed, None, ())
        folder = self.media.media_root / "products" / key
        names = [f"{processed.content_hash}.{processed.extension}"] + [
            f"{processed.content_hash}_{size}.{processed.extension}"
            for size in processed.thumbnails
        ]
        existed = {name for name in names if (folder / name).exists()}
        stored = await self.media.save_async(key, processed)
        written = tuple(p for p in stored.all_paths() if PurePosixPath(p).name not in existed)
        return _NewImage(source, processed, stored, written)

    async def _insert_image(
        self, repo: SqlCatalogRepository, product: Product, new: _NewImage, position: int
    ) -> ProductImage:
        assert new.stored is not None
        return await repo.insert_image(
            product_id=product.id,
            position=position,
            source_hash=new.source.source_hash,
            content_hash=new.processed.content_hash,
            content_type=new.processed.content_type,
            width=new.processed.width,
            height=new.processed.height,
            path=new.stored.path,
            thumbnails=new.stored.thumbnails,
        )

    async def _discard(self, new: _NewImage) -> None:
        """Remove the files a failed write created, unless a concurrent write committed a row
        for the same content meanwhile (file names are content hashes, so files are shared)."""
        if new.stored is None or not new.written:
            return
        try:
            async with self._reading() as session:
                if await SqlCatalogRepository(session).image_path_in_use(new.stored.path):
                    return
        except Exception:  # the database is away: leaving orphan files beats breaking images
            return
        await asyncio.to_thread(self._remove_files, new)

    def _remove_files(self, new: _NewImage) -> None:
        for relative in new.written:
            (self.media.media_root / relative).unlink(missing_ok=True)
        if new.stored is not None:
            folder = self.media.media_root / PurePosixPath(new.stored.path).parent
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if now empty

    async def _in_transaction(
        self, apply: Callable[[AsyncSession], Awaitable[T]], *, dry_run: bool
    ) -> T:
        """Run `apply(session)` in one transaction; a dry run rolls it back and returns the same."""
        try:
            async with self.runtime.transaction() as session:
                result = await apply(session)
                if dry_run:
                    raise _DryRun(result)
        except _DryRun as rolled_back:
            return rolled_back.outcome  # type: ignore[return-value]
        return result


# ================================================================== mapping helpers


def _exists(key: str) -> ProblemError:
    error = ProductExists(f"a product with key {key!r} exists")
    error.errors = InvalidInput.for_field("key", "already exists").errors
    return error


def _texts(translation: TranslationIn, prefix: str) -> Texts:
    name = translation.name.strip()
    if not name:
        raise InvalidInput.for_field(f"{prefix}name", "must not be blank")
    checkout = (translation.checkout_description or "").strip() or None
    return Texts(
        name=name,
        description=translation.description.strip(),
        checkout_description=checkout,
        statement_descriptor=check_statement_descriptor(
            translation.statement_descriptor, f"{prefix}statement_descriptor"
        ),
    )


def _translations(items: Mapping[str, TranslationIn], prefix: str) -> dict[str, Texts]:
    result: dict[str, Texts] = {}
    for raw, translation in items.items():
        tag = locale_for_field(f"{prefix}.{raw}", raw)
        if tag in result:
            raise InvalidInput.for_field(
                f"{prefix}.{raw}", f"{tag} is given twice", code="duplicate_locale"
            )
        result[tag] = _texts(translation, f"{prefix}.{raw}.")
    return result


def _terms(price: PriceIn, prefix: str) -> Terms:
    return check_terms(
        unit_amount=price.unit_amount,
        currency=price.currency,
        interval=price.interval,
        interval_count=price.interval_count,
        prefix=prefix,
    )


def _with(pricing: Pricing, **changes: object) -> Pricing:
    return replace(pricing, **changes)  # type: ignore[arg-type]


def _pricing_out(pricing: Pricing, product_key: str) -> PricingOut:
    return PricingOut(
        id=pricing.id,
        product_key=product_key,
        unit_amount=pricing.terms.unit_amount,
        currency=pricing.terms.currency,
        interval=pricing.terms.interval,
        interval_count=pricing.terms.interval_count,
        active=pricing.active,
        used=pricing.used,
        replaced_by=pricing.replaced_by,
        created_at=pricing.created_at,
    )


def _stored(key: str, image: ProductImage) -> StoredImage:
    return StoredImage(
        product_key=key,
        content_hash=image.content_hash,
        content_type=image.content_type,
        width=image.width,
        height=image.height,
        path=image.path,
        thumbnails=dict(image.thumbnails),
    )


def _same_rate(a: TaxRate, b: TaxRate) -> bool:
    return (a.tax_code, a.percentage, a.inclusive, a.display_name) == (
        b.tax_code,
        b.percentage,
        b.inclusive,
        b.display_name,
    )


def _tax_rate_out(rate: TaxRate) -> TaxRateOut:
    return TaxRateOut(
        id=rate.id,
        display_name=rate.display_name,
        percentage=rate.percentage,
        country_code=rate.country_code,
        inclusive=rate.inclusive,
        tax_code=rate.tax_code,
    )


__all__ = ["CatalogService", "SyncOutcome", "decimal_text"]
