"""Settings of the cart service (`CART_*`); the defaults are the embedded mode."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.runtime.settings import RuntimeSettings


class CartSettings(BaseSettings):
    """Where carts live and the rules they follow."""

    model_config = SettingsConfigDict(env_prefix="CART_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the cart database; default a SQLite file in data_dir.",
    )
    database_pool_size: int | None = Field(
        default=None,
        ge=1,
        le=500,
        description="Pooled connections of one cart process; default `STORE_DB_POOL_SIZE`.",
    )
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    max_quantity_per_line: int = Field(
        default=99, ge=1, le=1_000_000, description="Largest quantity one cart line may hold."
    )
    max_lines: int = Field(
        default=100,
        ge=1,
        le=500,
        description="Largest number of lines (distinct prices) in one cart.",
    )
    anonymous_ttl_seconds: int = Field(
        default=30 * 24 * 3600,
        ge=1,
        description="An anonymous cart expires this long after it was last used (sliding).",
    )
    price_cache_ttl_seconds: int = Field(
        default=3600,
        ge=0,
        description="Safety-net lifetime of cached catalog prices (events keep them current); 0 disables the cache.",
    )
    redis_prefix: str = Field(
        default="store:cart",
        min_length=1,
        description="Prefix of every Redis key the cart service writes.",
    )

    def resolved_database_url(self) -> str:
        """The configured database URL, or the embedded SQLite file."""
        return self.database_url or self.runtime.sqlite_url("cart")
