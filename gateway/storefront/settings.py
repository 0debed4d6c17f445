"""Storefront settings (`GATEWAY_STOREFRONT_*`): the browser shop at `/shop/` and its dev login."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class StorefrontSettings(BaseSettings):
    """Unset switches follow the mode: on in the embedded mode, off in the distributed mode."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_STOREFRONT_", extra="ignore")

    enabled: bool | None = Field(
        None,
        description="Serve the storefront at `/shop/`; default on in the embedded mode only.",
    )
    dev_login: bool | None = Field(
        None,
        description="Serve `POST /api/dev/token`, which signs a user token for any user id "
        '(the storefront\'s "log in as" box); default on in the embedded mode only. Never '
        "turn it on where real users log in.",
    )

    def serves_shop(self, *, embedded: bool) -> bool:
        """Whether `/shop/` is served in this mode."""
        return embedded if self.enabled is None else self.enabled

    def serves_dev_login(self, *, embedded: bool) -> bool:
        """Whether `POST /api/dev/token` exists in this mode."""
        return embedded if self.dev_login is None else self.dev_login
