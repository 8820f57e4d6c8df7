"""Users, API keys and the audit log in a real database: SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from argon2 import PasswordHasher
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from loopline.compliance.access import AccessRecords
from loopline.compliance.passwords import Passwords
from loopline.compliance.users import UserError, seed_users
from loopline.records.engine import create_records_engine
from tests.records.records_databases import postgres_database, sqlite_url

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
# Cheap argon2 parameters: these tests are about the store, not the hash's cost.
FAST = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    async with postgres_database() as pg:
        yield pg


@pytest_asyncio.fixture
async def access(url: str) -> AsyncIterator[AccessRecords]:
    store = AccessRecords(url, FAST)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


async def test_users_sign_in_only_with_their_own_password(access: AccessRecords) -> None:
    users = access.users
    ana = await users.add(
        "Ana", "agent", "correct horse 1", NOW, agent_id="ana", display_name="Ana"
    )
    assert (ana.username, ana.role, ana.agent_id) == ("ana", "agent", "ana")
    await users.add("sam", "supervisor", "battery staple", NOW)
    assert (await users.authenticate("ANA ", "correct horse 1")) == ana
    assert await users.authenticate("ana", "battery staple") is None
    assert await users.authenticate("nobody", "correct horse 1") is None
    await users.set_password("ana", "a new passphrase", NOW)
    assert await users.authenticate("ana", "correct horse 1") is None
    assert await users.authenticate("ana", "a new passphrase") is not None
    await users.set_disabled("ana", True, NOW)
    assert await users.authenticate("ana", "a new passphrase") is None
    assert [u.username for u in await users.all()] == ["ana", "sam"]


@pytest.mark.parametrize(
    ("username", "role", "password", "agent_id", "why"),
    [
        ("x", "agent", "long enough 1", "ana", "username"),
        ("has space", "agent", "long enough 1", "ana", "username"),
        ("ana", "agent", "short", "ana", "8 characters"),
        ("ana", "agent", "aaaaaaaaaaaa", "ana", "different characters"),
        ("ana", "agent", "long enough 1", None, "agent_id"),
        ("sam", "supervisor", "long enough 1", "ana", "only agent users"),
        ("sam", "owner", "long enough 1", None, "role"),
    ],
)
async def test_bad_users_are_refused(
    access: AccessRecords, username: str, role: str, password: str, agent_id: str | None, why: str
) -> None:
    with pytest.raises(UserError, match=why):
        await access.users.add(username, role, password, NOW, agent_id=agent_id)


async def test_a_username_is_taken_once(access: AccessRecords) -> None:
    await access.users.add("sam", "supervisor", "battery staple", NOW)
    with pytest.raises(UserError, match="exists already"):
        await access.users.add("SAM", "admin", "battery staple", NOW)


async def test_api_keys_verify_until_revoked(access: AccessRecords) -> None:
    users = access.users
    key, full = await users.add_api_key("crm-sync", "supervisor", NOW)
    assert full.startswith(f"llk_{key.key_id}_")
    found = await users.verify_api_key(full)
    assert found is not None and found.subject == "key:crm-sync" and found.role == "supervisor"
    assert await users.verify_api_key(full[:-1] + ("A" if full[-1] != "A" else "B")) is None
    assert await users.verify_api_key("llk_nope") is None
    with pytest.raises(UserError):
        await users.add_api_key("desk", "agent", NOW)
    assert await users.revoke_api_key(key.key_id, NOW)
    assert not await users.revoke_api_key(key.key_id, NOW)
    assert await users.verify_api_key(full) is None


@dataclass
class Seed:
    username: str
    role: str
    agent_id: str | None = None
    name: str | None = None


async def test_seeding_needs_a_password_and_skips_what_exists(access: AccessRecords) -> None:
    seeds = [Seed("ana", "agent", "ana"), Seed("zed", "agent", "zed"), Seed("sam", "supervisor")]
    assert await seed_users(access.users, seeds, None, NOW) == []
    made = await seed_users(access.users, seeds, "demo-password", NOW, known_agents={"ana"})
    assert made == ["ana", "sam"]  # zed's agent is not configured
    assert await seed_users(access.users, seeds, "demo-password", NOW, known_agents={"ana"}) == []


async def test_audit_appends_chain_across_writers_and_verify(url: str) -> None:
    one, two = AccessRecords(url, FAST), AccessRecords(url, FAST)
    await one.start()
    await two.start()
    try:
        writes = [
            (one if i % 2 else two).audit.append(f"agent:a{i}", "call.read", NOW, target=f"CL{i}")
            for i in range(20)
        ]
        entries = await asyncio.gather(*writes)
        assert sorted(e.seq for e in entries) == list(range(1, 21))
        report = await one.audit.verify()
        assert report.ok and report.checked == 20
        recent = await two.audit.recent(3)
        assert [e.seq for e in recent] == [20, 19, 18]
    finally:
        await one.close()
        await two.close()


async def test_the_database_refuses_changes_and_verify_finds_a_forced_one(
    access: AccessRecords, url: str
) -> None:
    for i in range(3):
        await access.audit.append("supervisor:sam", "call.read", NOW, target=f"CL{i}")
    engine = await create_records_engine(url)
    try:
        for sql in ("UPDATE audit_log SET actor = 'admin:x'", "DELETE FROM audit_log"):
            with pytest.raises(DBAPIError, match="append-only"):
                async with engine.begin() as conn:
                    await conn.execute(text(sql))
        # Someone with the database's own powers drops the guard and edits an entry.
        async with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                await conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
            else:
                await conn.execute(text("DROP TRIGGER audit_log_no_update"))
            await conn.execute(text("UPDATE audit_log SET target = 'CLX' WHERE seq = 2"))
    finally:
        await engine.dispose()
    report = await access.audit.verify()
    assert not report.ok and report.bad_seq == 2 and report.checked == 1
