"""Alembic migrations: they create the schema the models describe, once, on both backends."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from records_databases import sqlite_url
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from loopline.records import SqlRecords, migrate
from loopline.records.engine import create_records_engine
from loopline.records.migrate import alembic_config
from loopline.records.tables import Base

TABLES = {"alembic_version", "calls", "call_events", "decisions", "offers"}
# Issue 5: users, API keys and the audit log.
TABLES |= {"users", "api_keys", "audit_log"}
# Issue 4: call transcripts.
TABLES |= {"utterances"}
# attribution (issue 6): outcomes, QA, conversions and their outbox, spend, KPI sums
TABLES |= {"outcomes", "qa_scores", "conversions", "outbox", "ad_spend", "call_facts", "kpi_daily"}
# governance (issue 7): erasure tombstones, audit pruning anchors
TABLES |= {"tombstones", "audit_anchor"}


async def _inspect(url: str, check: Any) -> Any:
    engine = await create_records_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(check)
    finally:
        await engine.dispose()


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _version(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def test_migrate_creates_the_tables_at_head(records_url: str) -> None:
    assert await _inspect(records_url, _tables) == set()
    await migrate(records_url)
    assert await _inspect(records_url, _tables) == TABLES
    assert await _inspect(records_url, _version) == _head()


async def test_migrate_again_changes_nothing(records_url: str) -> None:
    await migrate(records_url)
    await migrate(records_url)
    assert await _inspect(records_url, _tables) == TABLES
    assert await _inspect(records_url, _version) == _head()


async def test_nodes_starting_together_migrate_once(records_url: str) -> None:
    nodes = [SqlRecords(records_url) for _ in range(3)]
    try:
        async with asyncio.TaskGroup() as group:  # a failure cancels the others: none is left
            for node in nodes:
                group.create_task(node.start())
        assert await _inspect(records_url, _version) == _head()
        assert [await node.count_calls() for node in nodes] == [0, 0, 0]
    finally:
        await asyncio.gather(*(node.close() for node in nodes))


def _differences(connection: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


async def test_migration_matches_the_models(records_url: str) -> None:
    await migrate(records_url)
    assert await _inspect(records_url, _differences) == []


def _downgrade(connection: Connection) -> None:
    command.downgrade(alembic_config(connection), "base")


async def test_downgrade_to_base_removes_the_tables(records_url: str) -> None:
    await migrate(records_url)
    engine = await create_records_engine(records_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_downgrade)
    finally:
        await engine.dispose()
    assert await _inspect(records_url, _tables) == {"alembic_version"}
    await migrate(records_url)
    assert await _inspect(records_url, _tables) == TABLES


async def test_sqlite_file_gets_its_folder_and_wal(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    await migrate(url)
    assert (tmp_path / "var" / "loopline.db").is_file()

    def pragmas(connection: Connection) -> tuple[str, int, int]:
        mode = connection.execute(text("PRAGMA journal_mode")).scalar_one()
        busy = connection.execute(text("PRAGMA busy_timeout")).scalar_one()
        keys = connection.execute(text("PRAGMA foreign_keys")).scalar_one()
        return mode, busy, keys

    mode, busy, keys = await _inspect(url, pragmas)
    assert (mode, keys) == ("wal", 1)
    assert busy >= 5000
