"""Settings shared by every process: where data lives, which bus and Redis to use, logging.

Defaults are the embedded mode (no outside servers). Each service adds its own settings class
with its own prefix and embeds these as `runtime`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from libs.contracts.topology import DEFAULT_RETRY_LADDER_MS

MEMORY_URL = "memory://"
DEV_SERVICE_TOKEN = "dev-service-token-not-for-production"
MIN_SECRET_BYTES = 32


def require_strong_secret(variable: str, value: str, dev_default: str) -> None:
    """Refuse a dev default or short secret: the distributed mode starts only with real ones."""
    if value == dev_default or len(value.encode()) < MIN_SECRET_BYTES:
        raise ValueError(
            f"{variable} must be set to a random secret of at least {MIN_SECRET_BYTES} bytes "
            "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )


def split_list(value: Any) -> Any:
    """A comma-separated variable as a list (empty items dropped)."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class RuntimeSettings(BaseSettings):
    """Cross-cutting settings, read from `STORE_*` variables."""

    model_config = SettingsConfigDict(env_prefix="STORE_", extra="ignore")

    data_dir: Path = Field(Path(".store-data"), description="Folder for SQLite files and media.")
    broker_url: str = Field(
        MEMORY_URL, description="`memory://` (in-process bus) or an AMQP URL of RabbitMQ."
    )
    redis_url: str = Field(
        MEMORY_URL, description="`memory://` (in-process substitute) or a Redis URL."
    )
    exchange: str = Field("store.events", description="The durable topic exchange of all events.")
    queue_prefix: str = Field("store", description="Prefix of every consumer's queue name.")
    consumer_retry_ladder_ms: tuple[int, ...] = Field(
        DEFAULT_RETRY_LADDER_MS,
        min_length=1,
        description="Delays of the retry ladder (a JSON list, ms); one queue per rung, the last "
        "rung repeats. Changing a rung adds a queue; drain the old one before deleting it.",
    )
    consumer_retry_budget_s: float = Field(
        3600,
        ge=0,
        description="Total time a failing event is retried before it goes to the dead-letter "
        "queue; long enough to ride out a database restart.",
    )
    consumer_concurrency: int = Field(
        32,
        ge=1,
        le=1000,
        description="Deliveries each consumer handles at once on RabbitMQ (its prefetch); "
        "events of one aggregate (the same ordering key) are still handled one at a time.",
    )
    outbox_poll_interval_ms: int = Field(250, ge=5, description="Relay poll interval when idle.")
    outbox_park_after: int = Field(
        10,
        ge=1,
        description="Failed publishes (while the broker is up) before an outbox row is parked.",
    )
    service_token: str = Field(
        DEV_SERVICE_TOKEN,
        description="Shared secret every call to a service carries; it also signs the caller's "
        "principal. At least 32 bytes outside the embedded mode.",
    )
    service_token_previous: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Former service tokens still accepted while a rotation rolls out "
        "(comma-separated).",
    )
    log_format: Literal["console", "json"] | None = Field(
        None, description="Log format; default json in distributed mode, console in embedded."
    )
    log_level: str = Field("INFO", description="Log level.")
    catalog_url: str = Field("http://127.0.0.1:8001", description="Catalog service base URL.")
    cart_url: str = Field("http://127.0.0.1:8002", description="Cart service base URL.")
    orders_url: str = Field("http://127.0.0.1:8003", description="Orders service base URL.")
    payments_url: str = Field("http://127.0.0.1:8004", description="Payments service base URL.")
    notifications_url: str = Field(
        "http://127.0.0.1:8005", description="Notifications service base URL."
    )
    http_timeout_s: float = Field(5.0, gt=0, description="Timeout of service-to-service calls.")
    http_head_limit_bytes: int = Field(
        32768,
        ge=4096,
        le=1048576,
        description="Bytes a request line and its headers may take in every process; a longer "
        "request head is answered 431 `request_head_too_large` and its connection closed.",
    )
    http_max_headers: int = Field(
        100,
        ge=16,
        le=1000,
        description="Headers a request may carry in every process; more are answered 431.",
    )
    db_pool_size: int = Field(
        10,
        ge=1,
        le=500,
        description="Connections one service process holds at most to its PostgreSQL database "
        "(a fixed pool, no overflow); `<SERVICE>_DATABASE_POOL_SIZE` overrides it per service. "
        "Keep replicas x pool of all services within the store's share of `max_connections` "
        "(docs/operations.md, Database connections).",
    )
    db_pool_timeout_s: float = Field(
        2.0,
        gt=0,
        description="How long a request waits for a free pooled connection before it is "
        "answered 503; at most half of `STORE_HTTP_TIMEOUT_S`, so an exhausted pool never hangs "
        "a caller.",
    )

    _split_previous = field_validator("service_token_previous", mode="before")(split_list)

    @model_validator(mode="after")
    def _no_dev_token_when_distributed(self) -> Self:
        if not self.embedded:
            require_strong_secret("STORE_SERVICE_TOKEN", self.service_token, DEV_SERVICE_TOKEN)
        return self

    @property
    def service_tokens(self) -> list[str]:
        """Every accepted service token, the current one first."""
        return [self.service_token, *self.service_token_previous]

    @property
    def pool_wait_s(self) -> float:
        """The pool wait in force: the configured one, within half the call timeout."""
        return min(self.db_pool_timeout_s, self.http_timeout_s / 2)

    @property
    def embedded(self) -> bool:
        return self.broker_url == MEMORY_URL

    @property
    def effective_log_format(self) -> str:
        return self.log_format or ("console" if self.embedded else "json")

    def sqlite_url(self, name: str) -> str:
        return f"sqlite+aiosqlite:///{self.data_dir / (name + '.db')}"

    def service_urls(self) -> dict[str, str]:
        return {
            "catalog": self.catalog_url,
            "cart": self.cart_url,
            "orders": self.orders_url,
            "payments": self.payments_url,
            "notifications": self.notifications_url,
        }
