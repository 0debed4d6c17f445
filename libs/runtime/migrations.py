"""Alembic per service: each service keeps its own history in `services/<name>/migrations`.

`upgrade()` runs inside an existing async engine (used at startup in embedded mode and by
`store migrate`); each service's `env.py` only calls `run_env(metadata)`.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

TEMPLATE_DIR = Path(__file__).parent / "alembic_template"


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


async def upgrade(engine: AsyncEngine, migrations_dir: Path, revision: str = "head") -> None:
    """Bring the service's database to `revision` (default: the latest)."""
    config = alembic_config(migrations_dir, str(engine.url))

    def run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


def run_env(metadata: MetaData) -> None:
    """The body of every service's env.py: migrate over the connection `upgrade()` passes in."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations with `store migrate`, which passes a connection")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def autogenerate(engine: AsyncEngine, migrations_dir: Path, message: str) -> None:
    """Write a new revision from the difference between the models and the database."""
    config = alembic_config(migrations_dir, str(engine.url))

    def run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        command.revision(config, message=message, autogenerate=True)

    async with engine.begin() as connection:
        await connection.run_sync(run)
