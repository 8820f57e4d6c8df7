"""The audit chain, pure: every kind of tampering breaks it where it happened."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from loopline.compliance.audit import GENESIS, AuditEntry, canonical_time, chain, verify_chain

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def build(n: int) -> list[AuditEntry]:
    out: list[AuditEntry] = []
    for i in range(n):
        entry = AuditEntry(
            seq=0,
            at=T0 + timedelta(seconds=i),
            actor="supervisor:sam" if i % 2 else "agent:ana",
            action="call.read",
            target=f"CL{i}",
            detail={"n": i, "client": "127.0.0.1"},
        )
        out.append(chain(entry, out[-1] if out else None))
    return out


def test_a_built_chain_verifies_and_links() -> None:
    entries = build(5)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(entries, entries[1:], strict=False))
    report = verify_chain(entries)
    assert report.ok and report.checked == 5 and report.last_hash == entries[-1].hash


def test_a_tail_verifies_from_a_known_anchor() -> None:
    entries = build(6)
    report = verify_chain(entries[3:], after_seq=3, after_hash=entries[2].hash)
    assert report.ok and report.checked == 3
    assert not verify_chain(entries[3:]).ok  # without the anchor it does not


def _edit(i: int, **changes: object) -> Callable[[list[AuditEntry]], list[AuditEntry]]:
    def tamper(entries: list[AuditEntry]) -> list[AuditEntry]:
        entries[i] = entries[i].model_copy(update=changes)
        return entries

    return tamper


@pytest.mark.parametrize(
    ("tamper", "bad_seq", "problem"),
    [
        (_edit(2, actor="admin:mallory"), 3, "contents"),
        (_edit(2, detail={"n": 2, "client": "10.0.0.1"}), 3, "contents"),
        (_edit(2, outcome="denied"), 3, "contents"),
        (_edit(2, at=T0 + timedelta(days=1)), 3, "contents"),
        (_edit(3, prev_hash="f" * 64), 4, "prev_hash"),
        (lambda es: es[:2] + es[3:], 4, "missing"),
        (lambda es: [es[0], es[2], es[1], *es[3:]], 3, "missing"),
        (lambda es: es[1:], 2, "missing"),
    ],
)
def test_tampering_is_found_where_it_happened(
    tamper: Callable[[list[AuditEntry]], list[AuditEntry]], bad_seq: int, problem: str
) -> None:
    report = verify_chain(tamper(build(5)))
    assert not report.ok
    assert report.bad_seq == bad_seq
    assert problem in (report.problem or "")


def test_rehashing_one_entry_still_breaks_the_next() -> None:
    entries = build(4)
    forged = entries[1].model_copy(update={"actor": "admin:mallory"})
    entries[1] = chain(forged.model_copy(update={"seq": 0}), entries[0])
    report = verify_chain(entries)
    assert not report.ok and report.bad_seq == 3


@pytest.mark.parametrize(
    ("at", "text"),
    [
        (datetime(2026, 5, 1, 12, 0, tzinfo=UTC), "2026-05-01T12:00:00.000000Z"),
        (datetime(2026, 5, 1, 14, 0, 0, 5, tzinfo=UTC).astimezone(), "2026-05-01T14:00:00.000005Z"),
        (datetime(2026, 5, 1, 12, 0), "2026-05-01T12:00:00.000000Z"),  # naive means UTC
    ],
)
def test_canonical_time(at: datetime, text: str) -> None:
    assert canonical_time(at) == text
