"""Alembic environment of the orders service."""

from libs.runtime.migrations import run_env
from services.orders.tables import metadata

run_env(metadata)
