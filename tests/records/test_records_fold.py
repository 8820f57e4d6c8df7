"""The pure rules that turn bus events into a call's record: tables and one order invariant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from records_script import T0, at, comparable, decision, journey, offered

from loopline.domain.calls import CallStatus
from loopline.domain.events import (
    CallAnswered,
    CallEnded,
    CallerView,
    CallQueued,
    CallReceived,
    CallRouted,
    CallTransferred,
)
from loopline.records.fold import CallEvent, apply_event, offer_outcome, takes_status
from loopline.records.models import CallRecord, OfferOutcome

NOW = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)


def fold(events: list[CallEvent], call_id: str = "call-1") -> CallRecord:
    record: CallRecord | None = None
    for event in events:
        record = apply_event(record, call_id, event, NOW)
    assert record is not None
    return record


@pytest.mark.parametrize(
    ("reason", "outcome"),
    [
        ("rejected", OfferOutcome.REJECTED),
        ("Declined", OfferOutcome.REJECTED),
        ("expired", OfferOutcome.EXPIRED),
        ("timeout", OfferOutcome.EXPIRED),
        ("timed_out", OfferOutcome.EXPIRED),
        ("no-answer", OfferOutcome.NO_ANSWER),
        ("no_answer", OfferOutcome.NO_ANSWER),
        ("busy", OfferOutcome.NO_ANSWER),
        ("agent went offline", OfferOutcome.NO_ANSWER),
    ],
)
def test_offer_outcome_from_reason(reason: str, outcome: OfferOutcome) -> None:
    assert offer_outcome(reason) is outcome


def _at_status(status: CallStatus, status_at: datetime | None) -> CallRecord:
    return CallRecord(
        call_id="c", status=status, status_at=status_at, received_at=T0, updated_at=T0
    )


LATER, EARLIER = at(T0, 10), at(T0, -10)


@pytest.mark.parametrize(
    ("current", "current_at", "new", "new_at", "takes"),
    [
        (CallStatus.RECEIVED, None, CallStatus.QUEUED, EARLIER, True),  # nothing seen yet
        (CallStatus.OFFERED, T0, CallStatus.QUEUED, LATER, True),
        (CallStatus.OFFERED, T0, CallStatus.QUEUED, T0, True),  # a tie goes to the later write
        (CallStatus.QUEUED, T0, CallStatus.OFFERED, EARLIER, False),
        (CallStatus.RECEIVED, T0, CallStatus.ANSWERED, EARLIER, True),  # milestone beats time
        (CallStatus.ANSWERED, T0, CallStatus.OFFERED, LATER, False),
        (CallStatus.ANSWERED, T0, CallStatus.ENDED, EARLIER, True),
        (CallStatus.ENDED, T0, CallStatus.ANSWERED, EARLIER, False),
        (CallStatus.ENDED, T0, CallStatus.QUEUED, LATER, False),
        (CallStatus.FALLBACK, T0, CallStatus.RECEIVED, EARLIER, False),
    ],
)
def test_takes_status(
    current: CallStatus,
    current_at: datetime | None,
    new: CallStatus,
    new_at: datetime,
    takes: bool,
) -> None:
    assert takes_status(_at_status(current, current_at), new, new_at) is takes


def test_journey_in_order_gives_the_full_record_and_trail() -> None:
    record = fold([event for _, event in journey()])

    assert record.status is CallStatus.ENDED
    assert record.provider_call_id == "CA-call-1"
    assert record.caller_number == "+15551230000"
    assert (record.dialed, record.campaign) == ("+18005550100", "spring")
    assert (record.queue, record.policy) == ("sales-overflow", "any-sales")
    assert record.agent_id == "a2"
    assert record.received_at == T0
    assert record.queued_at == at(T0, 21.6)
    assert record.answered_at == at(T0, 43)
    assert record.ended_at == record.status_at == at(T0, 163)
    assert (record.duration_s, record.end_reason) == (120.0, "completed")
    assert record.context["caller"] == {"number": "+15551230000", "name": "Test Caller"}
    assert record.context["crm"] == {"tier": "gold"}
    assert record.updated_at == NOW

    assert [(d.seq, d.trigger, d.outcome, d.agent_id, d.step) for d in record.decisions] == [
        (1, "webhook", "offered", "a1", 0),
        (2, "reroute", "queued", None, 1),
        (3, "dequeue", "offered", "a2", 2),
    ]
    first = record.decisions[0]
    assert [c.agent_id for c in first.candidates] == ["a1"]
    assert first.rejected == {"a3": "offline"}
    assert first.expression == "crm.tier == 'gold'"
    assert [(o.agent_id, o.offered_at, o.outcome, o.closed_at) for o in record.offers] == [
        ("a1", at(T0, 1.1), OfferOutcome.NO_ANSWER, at(T0, 21)),
        ("a2", at(T0, 40.1), OfferOutcome.ANSWERED, at(T0, 43)),
    ]
    assert record.offers[0].expires_at == at(T0, 21.1)


@settings(max_examples=300, deadline=None)
@given(order=st.permutations(range(len(journey()))))
def test_any_order_of_applying_gives_the_same_record(order: list[int]) -> None:
    events = [event for _, event in journey()]
    assert comparable(fold([events[i] for i in order])) == comparable(fold(events))


@pytest.mark.parametrize(
    ("events", "status", "agent_id"),
    [
        # A late offer does not take an answered or ended call back.
        (
            [CallAnswered(call_id="c", at=at(T0, 5), agent_id="a1"), offered("c", T0, "a1")],
            CallStatus.ANSWERED,
            "a1",
        ),
        (
            [
                CallEnded(call_id="c", at=at(T0, 9)),
                CallQueued(call_id="c", at=T0, queue="q", priority=0),
            ],
            CallStatus.ENDED,
            None,
        ),
        # Ended first, answered later: the call was answered, and by whom is kept.
        (
            [
                CallEnded(call_id="c", at=at(T0, 9)),
                CallAnswered(call_id="c", at=at(T0, 5), agent_id="a7"),
            ],
            CallStatus.ENDED,
            "a7",
        ),
        # An unanswered call that ends has no agent, whatever it was offered to.
        ([offered("c", T0, "a1"), CallEnded(call_id="c", at=at(T0, 9))], CallStatus.ENDED, None),
        # Between two plain states the later event wins.
        (
            [CallQueued(call_id="c", at=at(T0, 5), queue="q", priority=0), offered("c", T0, "a1")],
            CallStatus.QUEUED,
            None,
        ),
    ],
)
def test_status_and_agent_out_of_order(
    events: list[CallEvent], status: CallStatus, agent_id: str | None
) -> None:
    record = fold(events, call_id="c")
    assert (record.status, record.agent_id) == (status, agent_id)


def test_close_before_offer_is_filled_in_by_the_offer() -> None:
    record = fold(
        [
            CallTransferred(call_id="c", at=at(T0, 20), from_agent_id="a1", reason="rejected"),
            offered("c", T0, "a1"),
        ],
        call_id="c",
    )
    [offer] = record.offers
    assert (offer.offered_at, offer.outcome, offer.reason, offer.closed_at) == (
        T0,
        OfferOutcome.REJECTED,
        "rejected",
        at(T0, 20),
    )


def test_ended_closes_every_ringing_offer() -> None:
    record = fold(
        [offered("c", T0, "a1"), CallEnded(call_id="c", at=at(T0, 4), reason="hangup")], call_id="c"
    )
    [offer] = record.offers
    assert (offer.outcome, offer.reason, offer.closed_at) == (
        OfferOutcome.ENDED,
        "hangup",
        at(T0, 4),
    )


def test_first_event_seen_stands_in_for_received_until_it_arrives() -> None:
    routed = CallRouted(
        call_id="c", at=at(T0, 1), decision=decision("c", at(T0, 1)), outcome="queued"
    )
    record = fold([routed], call_id="c")
    assert (record.received_at, record.provider_call_id, record.status) == (
        at(T0, 1),
        None,
        CallStatus.QUEUED,
    )
    received = CallReceived(
        call_id="c", at=T0, provider_call_id="CA", caller=CallerView(number="+1"), dialed="+2"
    )
    record = apply_event(record, "c", received, NOW)
    assert (record.received_at, record.provider_call_id, record.status) == (
        T0,
        "CA",
        CallStatus.QUEUED,
    )


def test_times_are_kept_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    naive = datetime(2026, 1, 5, 15, 0)
    record = fold(
        [
            CallReceived(
                call_id="c",
                at=datetime(2026, 1, 5, 16, 0, tzinfo=paris),
                provider_call_id="CA",
                caller=CallerView(number="+1"),
                dialed="+2",
            ),
            CallAnswered(call_id="c", at=naive, agent_id="a1"),
        ],
        call_id="c",
    )
    assert record.received_at == T0 and record.received_at.tzinfo is UTC
    assert record.answered_at == T0 and record.answered_at.tzinfo is UTC
