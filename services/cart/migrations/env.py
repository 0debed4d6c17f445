"""Alembic environment of the cart service."""

from libs.runtime.migrations import run_env
from services.cart.tables import metadata

run_env(metadata)
