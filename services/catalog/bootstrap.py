"""Wiring: the catalog's runtime, media store and service, from settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from libs.runtime.runtime import Runtime, Shared
from services.catalog.handlers import HANDLERS
from services.catalog.images import ImageRules, MediaStore
from services.catalog.service import CatalogService
from services.catalog.settings import CatalogSettings
from services.catalog.tables import metadata


@dataclass(frozen=True)
class CatalogDeps:
    settings: CatalogSettings
    runtime: Runtime
    service: CatalogService


def build_runtime(settings: CatalogSettings, shared: Shared) -> Runtime:
    return Runtime.for_service(
        name="catalog",
        settings=settings,
        metadata=metadata,
        migrations_dir=Path(__file__).parent / "migrations",
        shared=shared,
    )


def build_service(settings: CatalogSettings, runtime: Runtime) -> CatalogService:
    rules = ImageRules(
        max_bytes=settings.max_image_bytes,
        max_pixels=settings.max_image_pixels,
        thumbnail_sizes=settings.thumbnail_sizes,
    )
    return CatalogService(
        runtime=runtime,
        media=MediaStore(settings.resolved_media_dir()),
        rules=rules,
        default_locale=settings.default_locale,
        media_url_prefix=settings.media_url_prefix,
        stock_hold=timedelta(seconds=settings.stock_hold_s),
    )


def build_deps(settings: CatalogSettings, shared: Shared) -> CatalogDeps:
    """The catalog's runtime (database, outbox, bus subscription) and service."""
    runtime = build_runtime(settings, shared)
    service = build_service(settings, runtime)
    runtime.subscribe(service, HANDLERS)
    return CatalogDeps(settings=settings, runtime=runtime, service=service)
