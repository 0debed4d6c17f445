"""Settings of the orders service, read from `ORDERS_*` variables (runtime ones from `STORE_*`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.runtime.settings import RuntimeSettings


class OrdersSettings(BaseSettings):
    """The orders service's own settings; defaults are the embedded mode."""

    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore")

    database_url: str | None = Field(
        None,
        description="SQLAlchemy async URL of the orders database; default a SQLite file in "
        "`STORE_DATA_DIR`.",
    )
    database_pool_size: int | None = Field(
        default=None,
        ge=1,
        le=500,
        description="Pooled connections of one orders process; default `STORE_DB_POOL_SIZE`.",
    )
    runtime: RuntimeSettings = Field(
        default_factory=RuntimeSettings, description="Cross-cutting `STORE_*` settings."
    )
    page_size: int = Field(
        20, ge=1, le=100, description="Orders per page when `limit` is not given."
    )
    max_page_size: int = Field(100, ge=1, le=1000, description="The largest `limit` accepted.")

    def resolved_database_url(self) -> str:
        """The configured database URL, or the embedded SQLite file."""
        return self.database_url or self.runtime.sqlite_url("orders")
