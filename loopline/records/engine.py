"""Async engines for the records: SQLite (aiosqlite) by default, PostgreSQL (asyncpg) at scale."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

# Several processes (two app nodes in a test) may write one SQLite file at once; a writer waits
# this long for the lock instead of failing at once.
SQLITE_BUSY_TIMEOUT_MS = 15_000

# The SQLite `BEGIN` of a transaction opened with this execution option. Writers say IMMEDIATE so
# that they take the write lock first; a transaction that reads and only then writes may find
# another process committed in between and fail with "database is locked" without waiting.
SQLITE_BEGIN_OPTION = "loopline_sqlite_begin"

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


def records_url(url: str | URL) -> URL:
    """The URL with an async driver: `sqlite://` and `postgresql://` get aiosqlite and asyncpg."""
    parsed = make_url(url)
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    return parsed.set(drivername=driver) if driver else parsed


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def _sqlite_file(url: URL) -> Path | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


async def create_records_engine(url: str | URL) -> AsyncEngine:
    """An engine for `url`; for a SQLite file, its folder is created first."""
    parsed = records_url(url)
    if not is_sqlite(parsed):
        return create_async_engine(parsed, pool_pre_ping=True)
    path = _sqlite_file(parsed)
    if path is not None:
        await asyncio.to_thread(_prepare_sqlite_file, path)
    engine = create_async_engine(parsed)
    event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
    return engine


def _prepare_sqlite_file(path: Path) -> None:
    """Create the file's folder and put the file in WAL mode (it stays so for every later
    connection). Nodes starting together race for the lock that switch takes, and SQLite answers
    "locked" at once, without its busy wait, to a connection that would deadlock: try again."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        connection = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        finally:
            connection.close()
        time.sleep(0.02)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own implicit BEGIN would defeat `_sqlite_on_begin`; we emit BEGIN ourselves.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # The timeout first: switching a new file to WAL needs the lock another node may hold.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # WAL lets readers run while one process writes (a file was switched when its engine
        # was made; this is for the rest, and a no-op on a file already in WAL).
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")
    if mode not in ("DEFERRED", "IMMEDIATE"):
        raise ValueError(f"unknown SQLite begin mode {mode!r}")
    connection.exec_driver_sql(f"BEGIN {mode}")


def writer(engine: AsyncEngine) -> AsyncEngine:
    """The same engine (and pool) whose transactions take SQLite's write lock when they begin."""
    return engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
