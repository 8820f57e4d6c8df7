"""One realistic call, as the bus carries it: offered, not answered, queued, re-offered, answered.

The event times all differ, so the record it leaves must not depend on the order of applying.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from loopline.domain.calls import Candidate, Decision, Strategy
from loopline.domain.events import (
    CallAnswered,
    CallEnded,
    CallerView,
    CallOffered,
    CallQueued,
    CallReceived,
    CallRouted,
    CallTransferred,
    DecisionView,
)
from loopline.records.fold import CallEvent
from loopline.records.models import CallRecord

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
CALLER = CallerView(number="+15551230000", name="Test Caller")


def at(t0: datetime, seconds: float) -> datetime:
    return t0 + timedelta(seconds=seconds)


def decision(call_id: str, decided_at: datetime, **fields: Any) -> Decision:
    values: dict[str, Any] = {
        "call_id": call_id,
        "policy": "vip-sales",
        "expression": "crm.tier == 'gold'",
        "queue": "sales",
        "priority": 5,
        "strategy": Strategy.LONGEST_IDLE,
        "decided_at": decided_at,
    }
    values.update(fields)
    return Decision(**values)


def offered(call_id: str, when: datetime, agent_id: str) -> CallOffered:
    return CallOffered(
        call_id=call_id,
        at=when,
        agent_id=agent_id,
        caller=CALLER,
        crm={"tier": "gold"},
        decision=DecisionView(policy="vip-sales", queue="sales", reason="gold tier"),
        expires_at=when + timedelta(seconds=20),
    )


def journey(call_id: str = "call-1", t0: datetime = T0) -> list[tuple[str, CallEvent]]:
    """(event id, event) in the order a single node would publish them."""
    events: list[CallEvent] = [
        CallReceived(
            call_id=call_id,
            at=t0,
            provider_call_id=f"CA-{call_id}",
            caller=CALLER,
            dialed="+18005550100",
            campaign="spring",
        ),
        CallRouted(
            call_id=call_id,
            at=at(t0, 1),
            decision=decision(
                call_id,
                at(t0, 1),
                candidates=[Candidate(agent_id="a1", score=0.9, why="idle longest")],
                rejected={"a3": "offline"},
                reason="gold tier",
            ),
            outcome="offered",
            agent_id="a1",
        ),
        offered(call_id, at(t0, 1.1), "a1"),
        CallTransferred(call_id=call_id, at=at(t0, 21), from_agent_id="a1", reason="no-answer"),
        CallRouted(
            call_id=call_id,
            at=at(t0, 21.5),
            decision=decision(call_id, at(t0, 21.5), step=1, reason="nobody free"),
            outcome="queued",
            trigger="reroute",
        ),
        CallQueued(call_id=call_id, at=at(t0, 21.6), queue="sales", priority=5),
        CallRouted(
            call_id=call_id,
            at=at(t0, 40),
            decision=decision(
                call_id,
                at(t0, 40),
                policy="any-sales",
                queue="sales-overflow",
                strategy=Strategy.BEST_MATCH,
                step=2,
            ),
            outcome="offered",
            agent_id="a2",
            trigger="dequeue",
        ),
        offered(call_id, at(t0, 40.1), "a2"),
        CallAnswered(call_id=call_id, at=at(t0, 43), agent_id="a2"),
        CallEnded(call_id=call_id, at=at(t0, 163), agent_id="a2", duration_s=120.0),
    ]
    return [(f"{call_id}/{n}", event) for n, event in enumerate(events)]


def comparable(record: CallRecord | None) -> dict[str, Any]:
    """The record without what legitimately differs between two stores: write times, row ids."""
    assert record is not None
    data = record.model_dump(mode="json", exclude={"updated_at"})
    for entry in data["decisions"] + data["offers"]:
        entry.pop("id")
    return data
