"""Retention on a real records database with an injected clock, and the audit chain's `verify`
(the CLI's too) after pruning and after tampering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select, text

from loopline.cli import main
from loopline.compliance.access import AccessRecords
from loopline.compliance.retention import RetentionSweeper
from loopline.config.compliance import RetentionConfig
from loopline.domain.calls import Decision, Strategy
from loopline.domain.clock import FakeClock
from loopline.domain.events import CallEnded, CallerView, CallReceived, CallRouted, UtteranceEvent
from loopline.domain.journey import JourneyMatch
from loopline.records import SqlRecords
from loopline.records.attribution_tables import ConversionRow, OutboxRow
from loopline.records.engine import writer
from loopline.records.tables import AuditRow, CallRow
from loopline.records.transcript_tables import UtteranceRow

T0 = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)
DAY = 86_400


async def _call(records: SqlRecords, call_id: str, at: datetime, *, session: str | None) -> None:
    events = [
        CallReceived(
            call_id=call_id,
            at=at,
            provider_call_id="CA" + call_id,
            caller=CallerView(number="+14085550100"),
            dialed="+15005550100",
        ),
        CallRouted(
            call_id=call_id,
            at=at,
            decision=Decision(
                call_id=call_id,
                policy="default",
                queue="support",
                strategy=Strategy.LONGEST_IDLE,
                decided_at=at,
            ),
            outcome="queued",
        ),
        UtteranceEvent(
            type="utterance.final",
            call_id=call_id,
            at=at,
            track="inbound",
            speaker="caller",
            text="hello",
            start_ms=0,
            end_ms=500,
        ),
        CallEnded(call_id=call_id, at=at + timedelta(minutes=3)),
    ]
    for n, event in enumerate(events):
        assert await records.apply(f"{call_id}-{n}", event)
    if session:
        # The journey arrives with the offer; write it as the records would keep it.
        async with records._sessions(write=True)() as s, s.begin():  # noqa: SLF001
            row = await s.get(CallRow, call_id)
            assert row is not None
            match = JourneyMatch(session_id=session, extra={"visitor_id": "v-12345678"})
            row.context = {**row.context, "journey": match.model_dump(mode="json")}


async def _conversion(access: AccessRecords, conv_id: str, at: datetime, status: str) -> None:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    sessions = async_sessionmaker(writer(access.engine))
    async with sessions() as s, s.begin():
        s.add(
            ConversionRow(
                id=conv_id,
                call_id="CLgone",
                name="Phone sale",
                outcome="sale",
                value=1.0,
                currency="USD",
                occurred_at=at,
                status="active",
                payload={},
                created_at=at,
            )
        )
        await s.flush()
        s.add(
            OutboxRow(
                conversion_id=conv_id,
                destination="crm",
                status=status,
                attempts=1,
                next_attempt_at=at,
                solo=False,
                created_at=at,
                updated_at=at,
            )
        )


async def _count(access: AccessRecords, table: type, where: object = None) -> int:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    query = select(func.count()).select_from(table)
    if where is not None:
        query = query.where(where)  # type: ignore[arg-type]
    async with async_sessionmaker(access.engine)() as s:
        return int((await s.execute(query)).scalar_one())


@pytest.fixture
async def stores(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite+aiosqlite:///{tmp_path}/records.db"
    clock = FakeClock(T0)
    records = SqlRecords(url, clock=clock)
    access = AccessRecords(url)
    await records.start()
    await access.start()
    try:
        yield records, access, clock, url
    finally:
        await access.close()
        await records.close()


async def test_each_kind_goes_after_its_period(stores) -> None:  # type: ignore[no-untyped-def]
    records, access, clock, _ = stores
    await _call(records, "CLold", T0, session="s-old-0001")
    await _call(records, "CLmid", T0 + timedelta(days=60), session="s-mid-0001")
    await _call(records, "CLnew", T0 + timedelta(days=200), session="s-new-0001")
    await _conversion(access, "cv-delivered", T0, "delivered")
    await _conversion(access, "cv-pending", T0, "pending")
    for i in range(30):
        await access.audit.append("cli", "test.entry", T0 + timedelta(days=i * 10))
    config = RetentionConfig(
        transcripts_days=30,
        journeys_days=90,
        calls_days=180,
        conversions_days=90,
        audit_days=100,
        batch_size=10,
    )
    sweeper = RetentionSweeper(access.engine, config)
    clock.set(T0 + timedelta(days=210))

    dry = await sweeper.run(clock.now(), dry_run=True)
    assert dry.counts == {
        "transcripts": 2,  # before day 180: CLold's and CLmid's
        "recordings": 0,
        "journeys": 2,  # before day 120: CLold's and CLmid's
        "calls": 1,  # before day 30: CLold
        "conversions": 1,  # the delivered one: the pending one still has to go out
        "audit": 11,  # entries before day 110 (days 0, 10, ... 100)
    }
    assert await _count(access, CallRow) == 3  # a dry run deletes nothing

    done = await sweeper.run(clock.now())
    assert done.counts == dry.counts
    assert await _count(access, CallRow) == 2
    assert await _count(access, UtteranceRow) == 1
    mid, new = await records.get_call("CLmid"), await records.get_call("CLnew")
    assert mid is not None and mid.context["journey"] is None
    assert mid.context["journey_removed"] == "retention"
    assert new is not None and new.context["journey"]["session_id"] == "s-new-0001"
    assert await records.get_call("CLold") is None
    assert await _ids(access) == ["cv-pending"]
    assert await _count(access, AuditRow) == 19
    report = await access.audit.verify()
    assert report.ok and report.checked == 19
    assert await access.audit.anchor() is not None
    # New entries chain on after the pruned ones.
    await access.audit.append("cli", "after.prune", clock.now())
    assert (await access.audit.verify()).ok

    again = await sweeper.run(clock.now())
    assert set(again.counts.values()) == {0}


async def _ids(access: AccessRecords) -> list[str]:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    async with async_sessionmaker(access.engine)() as s:
        return list((await s.execute(select(ConversionRow.id))).scalars())


async def test_the_audit_log_still_refuses_changes_outside_retention(stores) -> None:  # type: ignore[no-untyped-def]
    _, access, _, _ = stores
    for i in range(3):
        await access.audit.append("cli", "test.entry", T0 + timedelta(seconds=i))
    async with access.engine.begin() as conn:
        with pytest.raises(Exception, match="append-only"):
            await conn.execute(text("DELETE FROM audit_log WHERE seq = 2"))


def _config(tmp_path: Path, url: str) -> Path:
    demo = yaml.safe_load((Path(__file__).parents[2] / "config" / "loopline.yaml").read_text())
    demo["records_url"] = url
    demo["crm"] = {}
    path = tmp_path / "loopline.yaml"
    path.write_text(yaml.safe_dump(demo))
    return path


async def test_audit_verify_finds_tampering(stores, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    _, access, _, url = stores
    for i in range(5):
        await access.audit.append("admin:root", "subject.export", T0 + timedelta(seconds=i))
    config = _config(tmp_path, url)
    assert await _cli(["audit", "verify", "--config", str(config)]) == 0
    assert "5 entries verified" in capsys.readouterr().out

    # Someone with database access rewrites entry 3 (dropping the trigger first).
    async with access.engine.begin() as conn:
        await conn.execute(text("DROP TRIGGER audit_log_no_update"))
        await conn.execute(text("UPDATE audit_log SET actor = 'admin:mallory' WHERE seq = 3"))
    assert await _cli(["audit", "verify", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "BROKEN at entry 3" in err and "2 entries verified" in err


async def test_retention_cli_dry_run(stores, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    records, _, _, url = stores
    await _call(records, "CLancient", datetime(2015, 1, 1, tzinfo=UTC), session=None)
    config = _config(tmp_path, url)
    assert await _cli(["retention", "run", "--dry-run", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "calls        would delete        1" in out
    assert await records.get_call("CLancient") is not None


async def _cli(argv: list[str]) -> int:
    import asyncio

    # The CLI runs its own event loop (asyncio.run): give it a thread of its own.
    return await asyncio.to_thread(main, argv)
