"""Bring a records database to the newest schema with Alembic, without blocking the loop.

Alembic's command API is synchronous; it runs through `AsyncConnection.run_sync`, so its SQL
goes through the async driver (aiosqlite or asyncpg) on a connection this module opened, inside
one transaction that also holds a lock: nodes that start together migrate one after the other,
and the later ones find the schema already at head.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from loopline.records.engine import create_records_engine, writer

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# PostgreSQL advisory lock key held while migrating ("loop" in ASCII); SQLite's lock is the
# write lock of BEGIN IMMEDIATE.
_PG_MIGRATION_LOCK = 0x6C6F6F70


def alembic_config(connection: Connection | None = None) -> Config:
    """A file-less Alembic config; `env.py` migrates the connection given here."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    command.upgrade(alembic_config(connection), "head")


async def migrate_engine(engine: AsyncEngine) -> None:
    """`alembic upgrade head` on the engine's database."""
    async with writer(engine).begin() as connection:
        await connection.run_sync(_upgrade)


async def migrate(url: str | URL) -> None:
    """`alembic upgrade head` on the database at `url` (idempotent)."""
    engine = await create_records_engine(url)
    try:
        await migrate_engine(engine)
    finally:
        await engine.dispose()
