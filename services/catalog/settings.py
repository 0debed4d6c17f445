"""Settings of the catalog service, read from `CATALOG_*` variables (and the two shop-wide ones)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.contracts.money import normalize_currency
from libs.runtime.settings import RuntimeSettings

MIB = 1024 * 1024

# The shipped example, found relative to the package so it works from a checkout and the image.
EXAMPLE_PRODUCTS = Path(__file__).resolve().parents[2] / "deploy" / "products" / "example.json"


class CatalogSettings(BaseSettings):
    """The catalog's configuration; defaults are the embedded mode."""

    model_config = SettingsConfigDict(env_prefix="CATALOG_", extra="ignore", populate_by_name=True)

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the catalog database; default: SQLite `catalog.db` in the "
        "data folder.",
    )
    database_pool_size: int | None = Field(
        default=None,
        ge=1,
        le=500,
        description="Pooled connections of one catalog process; default `STORE_DB_POOL_SIZE`.",
    )
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    default_locale: str = Field(
        default="en", description="Locale whose texts are used when the requested one has none."
    )
    media_dir: Path | None = Field(
        default=None,
        description="Folder of product images and thumbnails; default: `<data folder>/media`.",
    )
    media_url_prefix: str = Field(
        default="/media", description="URL path under which the media folder is served."
    )
    seed: bool = Field(default=True, description="Seed an empty catalog in embedded mode.")
    seed_file: Path | None = Field(
        default=None,
        description="Products seeded into an empty catalog in embedded mode; default: the shipped "
        "`deploy/products/example.json`.",
    )
    thumbnail_sizes: tuple[int, ...] = Field(
        default=(64, 256, 512),
        description="Thumbnail sizes in pixels (longest edge), as a JSON list.",
    )
    max_image_bytes: int = Field(
        default=10 * MIB, gt=0, description="Largest accepted image upload."
    )
    max_image_pixels: int = Field(
        default=40_000_000, gt=0, description="Largest accepted image area (width x height)."
    )
    products_available: str | None = Field(
        default=None,
        validation_alias="ONE_OFF_PRODUCTS_AVAILABLE",
        description="`store setupproducts` input: a path to a JSON file, or the JSON itself.",
    )
    shipping_methods_available: str | None = Field(
        default=None,
        validation_alias="SHIPPING_METHODS_AVAILABLE",
        description="Shipping methods for `store setupproducts` (a JSON file or the JSON itself: "
        "a list, or an object with `shipping_methods`); default: the `shipping_methods` of the "
        "product configuration.",
    )
    stock_hold_s: int = Field(
        default=25 * 3600,
        ge=60,
        description="How long checkout's stock reservation is held for an unpaid order before "
        "the sweep releases it, in seconds; longer than a payment session lives (Stripe's and "
        "the dev provider's: 24 h), so an open session always has its stock.",
    )
    stock_sweep_interval_s: float = Field(
        default=60.0,
        ge=0,
        description="How often the catalog releases reservations past their deadline (0: never).",
    )
    stock_sweep_batch: int = Field(
        default=200, ge=1, description="Most expired reservations one sweep releases."
    )
    currency: str = Field(
        default="EUR",
        validation_alias="ISO_ALPHA_3_CURRENCY_CODE",
        description="Currency (ISO 4217) of the prices `store setupproducts` creates.",
    )

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        return normalize_currency(value)

    @field_validator("default_locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        from services.catalog.domain import normalize_locale

        return normalize_locale(value)

    @field_validator("thumbnail_sizes")
    @classmethod
    def _positive_sizes(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(size <= 0 or size > 4096 for size in value):
            raise ValueError("thumbnail sizes must be between 1 and 4096 pixels")
        return tuple(sorted(set(value)))

    @field_validator("media_url_prefix")
    @classmethod
    def _clean_prefix(cls, value: str) -> str:
        if "://" in value:  # a CDN or another host in front of the media folder
            return value.rstrip("/")
        value = "/" + value.strip("/")
        return value if value != "/" else ""

    def resolved_database_url(self) -> str:
        """The configured database, or the SQLite file of the embedded mode."""
        return self.database_url or self.runtime.sqlite_url("catalog")

    def resolved_media_dir(self) -> Path:
        """The configured media folder, or `media/` in the data folder."""
        return self.media_dir or self.runtime.data_dir / "media"

    def resolved_seed_file(self) -> Path:
        """The configured seed file, or the shipped example."""
        return self.seed_file or EXAMPLE_PRODUCTS
