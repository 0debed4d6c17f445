"""The configuration reference: every environment variable of every settings class.

`python -m cli.configdoc > docs/configuration.md` regenerates the committed reference;
a contract test fails when it is out of date. The same names tell the deployment tests which
variables a process really reads.
"""

from __future__ import annotations

import enum
import importlib
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, AliasPath, BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined


@dataclass(frozen=True)
class SettingsSource:
    """One settings class, where it lives and which `store` commands read it."""

    key: str
    title: str
    target: str  # "module:Class"
    read_by: str

    def load(self) -> type[BaseModel]:
        module_name, class_name = self.target.split(":")
        return getattr(importlib.import_module(module_name), class_name)

    def is_present(self) -> bool:
        """False only when the settings module does not exist (a service not written yet)."""
        module_name = self.target.split(":")[0]
        try:
            importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module_name.startswith(exc.name):
                return False
            raise
        return True


SOURCES: tuple[SettingsSource, ...] = (
    SettingsSource(
        "runtime",
        "Every process",
        "libs.runtime.settings:RuntimeSettings",
        "every `store` command",
    ),
    SettingsSource(
        "gateway",
        "Gateway",
        "gateway.settings:GatewaySettings",
        "`store serve gateway`, `store dev`",
    ),
    SettingsSource(
        "storefront",
        "Storefront",
        "gateway.storefront.settings:StorefrontSettings",
        "`store serve gateway`, `store dev`",
    ),
    SettingsSource(
        "catalog",
        "Catalog",
        "services.catalog.settings:CatalogSettings",
        "`store serve catalog`, `store setupproducts`, `store migrate`, `store dev`",
    ),
    SettingsSource(
        "cart",
        "Cart",
        "services.cart.settings:CartSettings",
        "`store serve cart`, `store migrate`, `store dev`",
    ),
    SettingsSource(
        "orders",
        "Orders",
        "services.orders.settings:OrdersSettings",
        "`store serve orders`, `store migrate`, `store dev`",
    ),
    SettingsSource(
        "payments",
        "Payments",
        "services.payments.settings:PaymentsSettings",
        "`store serve payments`, `store migrate`, `store dev`",
    ),
    SettingsSource(
        "notifications",
        "Notifications",
        "services.notifications.settings:NotificationsSettings",
        "`store serve notifications`, `store migrate`, `store dev`",
    ),
)

SOURCES_BY_KEY = {source.key: source for source in SOURCES}


@dataclass(frozen=True)
class EnvVar:
    """One environment variable: the name to document and every name the field accepts."""

    name: str
    accepted: tuple[str, ...]
    field: str
    default: str
    description: str


def _is_nested_settings(field: FieldInfo) -> bool:
    annotation = field.annotation
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _alias_names(field: FieldInfo) -> list[str]:
    alias = field.validation_alias
    if alias is None:
        return []
    if isinstance(alias, str):
        return [alias]
    if isinstance(alias, AliasPath):
        return [str(alias.path[0])]
    if isinstance(alias, AliasChoices):
        names = []
        for choice in alias.choices:
            head = choice.path[0] if isinstance(choice, AliasPath) else choice
            names.append(str(head))
        return names
    return []


def _by_name_too(settings_cls: type[BaseModel]) -> bool:
    config = settings_cls.model_config
    return bool(config.get("validate_by_name") or config.get("populate_by_name"))


def _render_default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        try:
            value: Any = field.default_factory()  # type: ignore[call-arg]
        except TypeError:  # a factory of the other fields' values
            return "computed"
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    return _render_value(value)


def _render_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    text = str(_plain(value))
    return f"`{text}`" if text else '`""`'


def _plain(value: Any) -> Any:
    """The value as a reader writes it in the environment: enums by value, collections as JSON."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, tuple | list | set | frozenset):
        return json.dumps(list(value))
    return value


def env_vars(settings_cls: type[BaseModel]) -> list[EnvVar]:
    """The variables a settings class reads, in field order; the nested `runtime` is skipped."""
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    result = []
    for field_name, field in settings_cls.model_fields.items():
        if _is_nested_settings(field):
            continue  # documented with its own class (RuntimeSettings: STORE_*)
        aliases = [name.upper() for name in _alias_names(field)]
        own = (prefix + field_name).upper()
        accepted = [*aliases]
        if not aliases or _by_name_too(settings_cls):
            accepted.append(own)
        result.append(
            EnvVar(
                name=aliases[0] if aliases else own,
                accepted=tuple(dict.fromkeys(accepted)),
                field=field_name,
                default=_render_default(field),
                description=" ".join((field.description or "").split()),
            )
        )
    return result


def load_sources(keys: Iterable[str] | None = None) -> dict[str, type[BaseModel]]:
    """The settings classes of the given sources (all by default), by key."""
    wanted = [SOURCES_BY_KEY[key] for key in keys] if keys is not None else list(SOURCES)
    return {source.key: source.load() for source in wanted}


def known_env_names(keys: Iterable[str]) -> set[str]:
    """Every variable the processes reading these settings sources accept."""
    names: set[str] = set()
    for settings_cls in load_sources(keys).values():
        for var in env_vars(settings_cls):
            names.update(var.accepted)
    return names


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(sources: Iterable[SettingsSource] = SOURCES) -> str:
    """The Markdown reference of the given settings classes (all of them by default)."""
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m cli.configdoc > docs/configuration.md`; do not edit. -->",
        "",
        "Store reads its configuration from environment variables only. The defaults are the",
        "embedded mode (`store dev`: SQLite files, an in-process bus and Redis substitute); the",
        "distributed mode sets the URLs and the secrets, as `docker-compose.yml` does (see",
        "[operations](operations.md)). Outside the embedded mode the gateway refuses to start",
        "with the development secrets.",
        "",
        "List values (such as thumbnail sizes) are JSON, e.g. `[64, 256]`; booleans are",
        "`true`/`false`. Variable names are not case-sensitive.",
        "",
        "Tracing follows the standard OpenTelemetry variables (`OTEL_EXPORTER_OTLP_ENDPOINT`,",
        "`OTEL_TRACES_EXPORTER`, `OTEL_TRACES_SAMPLER`, ...); no exporter by default. See",
        "[operations: traces](operations.md#traces).",
    ]
    for source in sources:
        settings_cls = source.load()
        prefix = str(settings_cls.model_config.get("env_prefix", ""))
        module, class_name = source.target.split(":")
        lines += [
            "",
            f"## {source.title} — `{prefix}*`",
            "",
            f"`{class_name}` in `{module.replace('.', '/')}.py`; read by {source.read_by}.",
            "",
            "| Variable | Default | Description |",
            "|---|---|---|",
        ]
        for var in env_vars(settings_cls):
            lines.append(f"| `{var.name}` | {_cell(var.default)} | {_cell(var.description)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    missing = [source for source in SOURCES if not source.is_present()]
    for source in missing:
        print(f"configdoc: {source.target} does not exist; left out", file=sys.stderr)
    sys.stdout.write(render(source for source in SOURCES if source not in missing))


if __name__ == "__main__":
    main()
