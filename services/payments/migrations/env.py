"""Alembic environment of the payments service."""

from libs.runtime.migrations import run_env
from services.payments.tables import metadata

run_env(metadata)
