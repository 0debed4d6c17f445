"""The catalog repository: its port and the SQL adapter (SQLite and PostgreSQL alike).

Reads of a page load products, then the prices, images and texts of all of them with one
query each: a fixed number of queries per page, however long the page or large the catalog.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    String,
    and_,
    any_,
    bindparam,
    delete,
    exists,
    false,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.catalog.domain import (
    Pricing,
    Product,
    ProductImage,
    TaxRate,
    Terms,
    Texts,
    decimal_text,
    price_flags,
)
from services.catalog.tables import (
    pricings,
    product_images,
    product_translations,
    products,
    tax_rates,
)


def new_id() -> str:
    return str(uuid.uuid4())


def now() -> datetime:
    return datetime.now(UTC)


class CatalogRepository(Protocol):
    """What the catalog service needs from storage, within one session."""

    async def list_products(
        self, *, sellable: bool, recurring: bool | None, after_key: str | None, limit: int
    ) -> list[Product]: ...

    async def get_product(self, key: str, *, for_update: bool = False) -> Product | None: ...

    async def has_products(self) -> bool: ...

    async def prices_of(
        self, product_ids: Sequence[str], *, active_only: bool
    ) -> dict[str, list[Pricing]]: ...

    async def images_of(self, product_ids: Sequence[str]) -> dict[str, list[ProductImage]]: ...

    async def translations_of(self, product_ids: Sequence[str]) -> dict[str, dict[str, Texts]]: ...

    async def pricings_with_products(self, ids: Sequence[str]) -> list[tuple[Pricing, Product]]: ...


class SqlCatalogRepository:
    """The catalog's tables through one SQLAlchemy session or connection (the caller owns the
    transaction). Only Core statements: reads use a plain connection, which is cheaper."""

    def __init__(self, session: AsyncSession | AsyncConnection) -> None:
        self.session = session
        bind = session if isinstance(session, AsyncConnection) else session.get_bind()
        self._postgresql = bind.dialect.name == "postgresql"

    def _one_of(self, column: Any, values: Sequence[str]) -> ColumnElement[bool]:
        """`column IN (...)`; on PostgreSQL `column = ANY($1)`: one array parameter however
        many values, so a page's statements are rendered and prepared once, not per length."""
        if self._postgresql:
            return column == any_(bindparam(None, list(values), type_=ARRAY(String)))
        return column.in_(values)

    # ------------------------------------------------------------------ products

    async def list_products(
        self, *, sellable: bool, recurring: bool | None, after_key: str | None, limit: int
    ) -> list[Product]:
        """Products in key order after `after_key`: one index range scan (see tables.py)."""
        # `= true`, not `IS TRUE`: only the equality can walk the composite indexes.
        query = select(products).where(products.c.sellable == sellable)
        if recurring is True:
            query = query.where(products.c.has_recurring == true())
        elif recurring is False:
            query = query.where(products.c.has_one_off == true())
        if after_key is not None:
            query = query.where(products.c.key > after_key)
        rows = (await self.session.execute(query.order_by(products.c.key).limit(limit))).all()
        return [_product(row._mapping) for row in rows]

    async def get_product(self, key: str, *, for_update: bool = False) -> Product | None:
        query = select(products).where(products.c.key == key)
        if for_update:
            query = query.with_for_update()
        row = (await self.session.execute(query)).first()
        return _product(row._mapping) if row else None

    async def has_products(self) -> bool:
        return bool((await self.session.execute(select(exists().select_from(products)))).scalar())

    async def insert_product(
        self, *, key: str, tax_code: str | None, shippable: bool, active: bool
    ) -> Product:
        at = now()
        values = {
            "id": new_id(),
            "key": key,
            "tax_code": tax_code,
            "shippable": shippable,
            "active": active,
            "sellable": False,
            "has_one_off": False,
            "has_recurring": False,
            "created_at": at,
            "updated_at": at,
        }
        await self.session.execute(insert(products).values(**values))
        return _product(values)

    async def update_product(self, product_id: str, **values: Any) -> None:
        await self.session.execute(
            update(products).where(products.c.id == product_id).values(updated_at=now(), **values)
        )

    async def refresh_flags(self, product_id: str) -> Product:
        """Recompute the derived listing flags of a product from its active prices."""
        product = (
            (await self.session.execute(select(products).where(products.c.id == product_id)))
            .one()
            ._mapping
        )
        active = await self.prices_of([product_id], active_only=True)
        sellable, one_off, recurring = price_flags(
            product["active"], (p.terms for p in active.get(product_id, []))
        )
        flags = {"sellable": sellable, "has_one_off": one_off, "has_recurring": recurring}
        if any(product[name] != value for name, value in flags.items()):
            await self.session.execute(
                update(products).where(products.c.id == product_id).values(**flags)
            )
        return _product({**product, **flags})

    # ------------------------------------------------------------------ prices

    async def prices_of(
        self, product_ids: Sequence[str], *, active_only: bool
    ) -> dict[str, list[Pricing]]:
        if not product_ids:
            return {}
        query = select(pricings).where(self._one_of(pricings.c.product_id, product_ids))
        if active_only:
            query = query.where(pricings.c.active == true())
        grouped: dict[str, list[Pricing]] = defaultdict(list)
        for row in (await self.session.execute(query)).all():
            pricing = _pricing(row._mapping)
            grouped[pricing.product_id].append(pricing)
        for items in grouped.values():
            items.sort(key=lambda p: (*p.terms.sort_key(), p.created_at, p.id))
        return dict(grouped)

    async def get_pricing(self, pricing_id: str, *, for_update: bool = False) -> Pricing | None:
        query = select(pricings).where(pricings.c.id == pricing_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.session.execute(query)).first()
        return _pricing(row._mapping) if row else None

    async def insert_pricing(self, product_id: str, terms: Terms) -> Pricing:
        at = now()
        values = {
            "id": new_id(),
            "product_id": product_id,
            "unit_amount": terms.unit_amount,
            "currency": terms.currency,
            "interval": terms.interval,
            "interval_count": terms.interval_count,
            "active": True,
            "used": False,
            "replaced_by": None,
            "created_at": at,
            "updated_at": at,
        }
        await self.session.execute(insert(pricings).values(**values))
        return _pricing(values)

    async def edit_pricing(self, pricing_id: str, terms: Terms) -> None:
        """Change an unsold price's terms (the service checks that it was never sold)."""
        await self.session.execute(
            update(pricings)
            .where(pricings.c.id == pricing_id, pricings.c.used == false())
            .values(
                unit_amount=terms.unit_amount,
                currency=terms.currency,
                interval=terms.interval,
                interval_count=terms.interval_count,
                updated_at=now(),
            )
        )

    async def deactivate_pricing(self, pricing_id: str, *, replaced_by: str | None = None) -> None:
        await self.session.execute(
            update(pricings)
            .where(pricings.c.id == pricing_id)
            .values(active=False, replaced_by=replaced_by, updated_at=now())
        )

    async def mark_used(self, pricing_ids: Iterable[str]) -> int:
        ids = sorted(set(pricing_ids))
        if not ids:
            return 0
        result = await self.session.execute(
            update(pricings)
            .where(pricings.c.id.in_(ids), pricings.c.used == false())
            .values(used=True, updated_at=now())
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def pricings_with_products(self, ids: Sequence[str]) -> list[tuple[Pricing, Product]]:
        if not ids:
            return []
        columns = [*pricings.c, *(c.label(f"product__{c.name}") for c in products.c)]
        query = (
            select(*columns)
            .select_from(pricings.join(products, pricings.c.product_id == products.c.id))
            .where(pricings.c.id.in_(ids))
        )
        result = []
        for row in (await self.session.execute(query)).all():
            mapping = row._mapping
            product = {c.name: mapping[f"product__{c.name}"] for c in products.c}
            result.append((_pricing(mapping), _product(product)))
        return result

    # ------------------------------------------------------------------ texts

    async def translations_of(self, product_ids: Sequence[str]) -> dict[str, dict[str, Texts]]:
        if not product_ids:
            return {}
        query = select(product_translations).where(
            self._one_of(product_translations.c.product_id, product_ids)
        )
        grouped: dict[str, dict[str, Texts]] = defaultdict(dict)
        for row in (await self.session.execute(query)).all():
            m = row._mapping
            grouped[m["product_id"]][m["locale"]] = Texts(
                name=m["name"],
                description=m["description"] or "",
                checkout_description=m["checkout_description"],
                statement_descriptor=m["statement_descriptor"],
            )
        return dict(grouped)

    async def put_translation(self, product_id: str, locale: str, texts: Texts) -> None:
        values = {
            "name": texts.name,
            "description": texts.description,
            "checkout_description": texts.checkout_description,
            "statement_descriptor": texts.statement_descriptor,
            "updated_at": now(),
        }
        key = and_(
            product_translations.c.product_id == product_id,
            product_translations.c.locale == locale,
        )
        result = await self.session.execute(
            update(product_translations).where(key).values(**values)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            await self.session.execute(
                insert(product_translations).values(product_id=product_id, locale=locale, **values)
            )

    async def delete_translation(self, product_id: str, locale: str) -> bool:
        result = await self.session.execute(
            delete(product_translations).where(
                product_translations.c.product_id == product_id,
                product_translations.c.locale == locale,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ images

    async def images_of(self, product_ids: Sequence[str]) -> dict[str, list[ProductImage]]:
        if not product_ids:
            return {}
        query = (
            select(product_images)
            .where(self._one_of(product_images.c.product_id, product_ids))
            .order_by(
                product_images.c.product_id,
                product_images.c.position,
                product_images.c.created_at,
                product_images.c.id,
            )
        )
        grouped: dict[str, list[ProductImage]] = defaultdict(list)
        for row in (await self.session.execute(query)).all():
            image = _image(row._mapping)
            grouped[image.product_id].append(image)
        return dict(grouped)

    async def get_image(self, image_id: str) -> ProductImage | None:
        row = (
            await self.session.execute(
                select(product_images).where(product_images.c.id == image_id)
            )
        ).first()
        return _image(row._mapping) if row else None

    async def insert_image(
        self,
        *,
        product_id: str,
        position: int,
        source_hash: str,
        content_hash: str,
        content_type: str,
        width: int,
        height: int,
        path: str,
        thumbnails: Mapping[int, str],
    ) -> ProductImage:
        values = {
            "id": new_id(),
            "product_id": product_id,
            "position": position,
            "content_hash": content_hash,
            "source_hash": source_hash,
            "content_type": content_type,
            "width": width,
            "height": height,
            "path": path,
            "thumbnails": {str(size): p for size, p in thumbnails.items()},
            "created_at": now(),
        }
        await self.session.execute(insert(product_images).values(**values))
        return _image(values)

    async def image_path_in_use(self, path: str) -> bool:
        query = select(exists().where(product_images.c.path == path))
        return bool((await self.session.execute(query)).scalar())

    async def next_image_position(self, product_id: str) -> int:
        query = select(func.max(product_images.c.position)).where(
            product_images.c.product_id == product_id
        )
        highest = (await self.session.execute(query)).scalar()
        return 0 if highest is None else int(highest) + 1

    async def set_image_position(self, image_id: str, position: int) -> None:
        await self.session.execute(
            update(product_images).where(product_images.c.id == image_id).values(position=position)
        )

    async def delete_image(self, image_id: str) -> None:
        await self.session.execute(delete(product_images).where(product_images.c.id == image_id))

    # ------------------------------------------------------------------ tax rates

    async def tax_rates_of(self, country_code: str) -> list[TaxRate]:
        query = (
            select(tax_rates)
            .where(tax_rates.c.country_code == country_code)
            .order_by(tax_rates.c.tax_code, tax_rates.c.created_at, tax_rates.c.id)
        )
        return [_tax_rate(row._mapping) for row in (await self.session.execute(query)).all()]

    async def insert_tax_rate(self, rate: TaxRate) -> TaxRate:
        created = rate.created_at or now()
        await self.session.execute(
            insert(tax_rates).values(
                id=rate.id,
                country_code=rate.country_code,
                tax_code=rate.tax_code,
                display_name=rate.display_name,
                percentage=decimal_text(rate.percentage),
                inclusive=rate.inclusive,
                created_at=created,
            )
        )
        return TaxRate(**{**rate.__dict__, "created_at": created})

    async def delete_tax_rates(self, ids: Sequence[str]) -> None:
        if ids:
            await self.session.execute(delete(tax_rates).where(tax_rates.c.id.in_(ids)))


# ---------------------------------------------------------------------- row mapping


def _product(m: Mapping[Any, Any]) -> Product:
    return Product(
        id=m["id"],
        key=m["key"],
        tax_code=m["tax_code"],
        shippable=bool(m["shippable"]),
        active=bool(m["active"]),
        sellable=bool(m["sellable"]),
        has_one_off=bool(m["has_one_off"]),
        has_recurring=bool(m["has_recurring"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def _pricing(m: Mapping[Any, Any]) -> Pricing:
    return Pricing(
        id=m["id"],
        product_id=m["product_id"],
        terms=Terms(
            unit_amount=int(m["unit_amount"]),
            currency=m["currency"],
            interval=m["interval"],
            interval_count=int(m["interval_count"]),
        ),
        active=bool(m["active"]),
        used=bool(m["used"]),
        replaced_by=m["replaced_by"],
        created_at=m["created_at"],
    )


def _image(m: Mapping[Any, Any]) -> ProductImage:
    return ProductImage(
        id=m["id"],
        product_id=m["product_id"],
        position=int(m["position"]),
        content_hash=m["content_hash"],
        source_hash=m["source_hash"],
        content_type=m["content_type"],
        width=int(m["width"]),
        height=int(m["height"]),
        path=m["path"],
        thumbnails={int(size): path for size, path in (m["thumbnails"] or {}).items()},
        created_at=m["created_at"],
    )


def _tax_rate(m: Mapping[Any, Any]) -> TaxRate:
    return TaxRate(
        id=m["id"],
        country_code=m["country_code"],
        display_name=m["display_name"],
        percentage=Decimal(m["percentage"]),
        inclusive=bool(m["inclusive"]),
        tax_code=m["tax_code"],
        created_at=m["created_at"],
    )
