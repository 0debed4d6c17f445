"""Alembic environment of the catalog service."""

from libs.runtime.migrations import run_env
from services.catalog.tables import metadata

run_env(metadata)
