"""Test databases for the records suites: a temp SQLite file, a fresh PostgreSQL database.

PostgreSQL comes from LOOPLINE_TEST_POSTGRES_URL (trust auth, local); each test gets a database
of its own, dropped afterwards. Without a server the PostgreSQL cases skip, or fail under CI=true.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def postgres_base_url() -> str:
    return os.environ.get("LOOPLINE_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh, empty database on the test PostgreSQL; yields its SQLAlchemy URL."""
    base = make_url(postgres_base_url())
    admin_dsn = base.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    try:
        admin = await asyncpg.connect(admin_dsn, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL unreachable and CI=true: {type(exc).__name__}")
        pytest.skip("no PostgreSQL: set LOOPLINE_TEST_POSTGRES_URL or start one")
    name = f"loopline_test_{secrets.token_hex(6)}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield base.set(drivername="postgresql+asyncpg", database=name).render_as_string(
                hide_password=False
            )
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def sqlite_url(folder: Path) -> str:
    # A folder that does not exist yet: the records must create it.
    return f"sqlite+aiosqlite:///{folder / 'var' / 'loopline.db'}"
