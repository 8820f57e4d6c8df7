"""How one bus event changes a call's record and trails: pure functions, no I/O.

Events of one call reach the records from several nodes, so they may be applied in any order
(`call.routed` before `call.received`, `call.ended` before `call.answered`). The rules below
make the record come out the same whatever the order, as long as the events' times differ:

- `status` moves by event time, except that `answered` and `ended` are milestones: a late
  `offered` or `queued` never takes a call back from them, and nothing leaves `ended`.
- `queue` and `policy` are those of the latest decision; decisions are numbered by their time.
- an offer's close may arrive before the offer; it is kept as an offer with no `offered_at`
  and the `call.offered` that arrives later fills it in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from loopline.domain.calls import CallStatus
from loopline.domain.events import (
    CallAnswered,
    CallEnded,
    CallOffered,
    CallQueued,
    CallReceived,
    CallRouted,
    CallTransferred,
)
from loopline.records.models import CallRecord, DecisionRecord, OfferOutcome, OfferRecord

CallEvent = (
    CallReceived
    | CallRouted
    | CallOffered
    | CallAnswered
    | CallQueued
    | CallTransferred
    | CallEnded
)

CALL_EVENTS = (
    CallReceived,
    CallRouted,
    CallOffered,
    CallAnswered,
    CallQueued,
    CallTransferred,
    CallEnded,
)

_MILESTONE_RANK = {CallStatus.ANSWERED: 1, CallStatus.ENDED: 2}

_ROUTED_STATUS = {
    "offered": CallStatus.OFFERED,
    "queued": CallStatus.QUEUED,
    "fallback": CallStatus.FALLBACK,
}

_REJECTED = {"rejected", "reject", "declined", "decline"}
_EXPIRED = {"expired", "expire", "timeout", "timed-out"}


def utc(at: datetime) -> datetime:
    """The same instant in UTC; a naive time is taken to be UTC already."""
    if at.tzinfo is None:
        return at.replace(tzinfo=UTC)
    return at.astimezone(UTC)


def offer_outcome(reason: str) -> OfferOutcome:
    """The outcome of an offer that fell through, from the router's free-text reason."""
    key = reason.strip().lower().replace("_", "-").replace(" ", "-")
    if key in _REJECTED:
        return OfferOutcome.REJECTED
    if key in _EXPIRED:
        return OfferOutcome.EXPIRED
    # Busy, offline, no answer: the agent did not take it, which is all the trail needs.
    return OfferOutcome.NO_ANSWER


def takes_status(record: CallRecord, status: CallStatus, at: datetime) -> bool:
    """Whether an event at `at` that implies `status` may replace the record's status."""
    if record.status_at is None:
        return True
    new_rank = _MILESTONE_RANK.get(status, 0)
    current_rank = _MILESTONE_RANK.get(record.status, 0)
    if new_rank != current_rank:
        return new_rank > current_rank
    return at >= record.status_at


def _earliest(current: datetime | None, at: datetime) -> datetime:
    return at if current is None or at < current else current


def apply_event(
    current: CallRecord | None, call_id: str, event: CallEvent, now: datetime
) -> CallRecord:
    """The call's record, decisions and offers once `event` is applied.

    Decisions and offers that are new have `id` None; those that changed keep their `id`.
    """
    at = utc(event.at)
    record = current or CallRecord(call_id=call_id, received_at=at, updated_at=utc(now))
    record = _fold_call(record, event, at, now)
    offers = in_trail_order(_fold_offers(list(record.offers), event, record))
    decisions = list(record.decisions)
    if isinstance(event, CallRouted):
        decisions = _numbered([*decisions, decision_record(event)])
    update: dict[str, Any] = {"offers": offers, "decisions": decisions}
    if decisions:
        update.update(queue=decisions[-1].queue, policy=decisions[-1].policy)
    return record.model_copy(update=update)


def _fold_call(record: CallRecord, event: CallEvent, at: datetime, now: datetime) -> CallRecord:
    update: dict[str, Any] = {"updated_at": utc(now)}
    context = dict(record.context)
    if record.provider_call_id is None and at < record.received_at:
        update["received_at"] = at

    def move_to(status: CallStatus) -> bool:
        if not takes_status(record, status, at):
            return False
        update["status"] = status
        update["status_at"] = at
        return True

    match event:
        case CallReceived():
            update.update(
                provider_call_id=event.provider_call_id,
                caller_number=event.caller.number,
                dialed=event.dialed,
                campaign=event.campaign,
                received_at=at,
            )
            context["caller"] = event.caller.model_dump(mode="json")
            context["dialed"] = event.dialed
            context["campaign"] = event.campaign
            if event.consent is not None:
                context["consent"] = event.consent.model_dump(mode="json")
            if event.admt_opt_out is not None:
                context["admt_opt_out"] = event.admt_opt_out
            move_to(CallStatus.RECEIVED)
        case CallRouted():
            if move_to(_ROUTED_STATUS[event.outcome]):
                update["agent_id"] = event.agent_id
        case CallOffered():
            if move_to(CallStatus.OFFERED):
                update["agent_id"] = event.agent_id
            context.setdefault("caller", event.caller.model_dump(mode="json"))
            context["crm"] = event.crm
            context["journey"] = event.journey.model_dump(mode="json") if event.journey else None
            context["intent"] = event.intent.model_dump(mode="json")
        case CallAnswered():
            # Whoever answered is the call's agent, even if `call.ended` was applied first.
            update["answered_at"] = _earliest(record.answered_at, at)
            update["agent_id"] = event.agent_id
            move_to(CallStatus.ANSWERED)
        case CallQueued():
            # The caller's wait runs from the first time the call was queued.
            update["queued_at"] = _earliest(record.queued_at, at)
            if move_to(CallStatus.QUEUED):
                update["agent_id"] = None
            if record.queue is None:
                update["queue"] = event.queue  # until a decision says which queue
        case CallTransferred():
            pass  # only the offer trail changes; the next `call.routed` moves the call on
        case CallEnded():
            # An answered call keeps the agent who answered it; an unanswered one has none.
            kept = record.agent_id if record.answered_at is not None else None
            update.update(
                ended_at=at,
                duration_s=event.duration_s,
                end_reason=event.reason,
                agent_id=event.agent_id or kept,
            )
            move_to(CallStatus.ENDED)
    update["context"] = context
    return record.model_copy(update=update)


def in_trail_order(offers: list[OfferRecord]) -> list[OfferRecord]:
    """Offers in the order they were made; a close seen before its offer sorts by its close."""
    order = sorted(
        enumerate(offers),
        key=lambda pair: (
            pair[1].offered_at or pair[1].closed_at or datetime.max.replace(tzinfo=UTC),
            pair[1].id is None,
            pair[1].id or 0,
            pair[0],
        ),
    )
    return [offer for _, offer in order]


def _numbered(decisions: list[DecisionRecord]) -> list[DecisionRecord]:
    """Decisions in time order, `seq` from 1; a new one (no id) goes after stored equals."""
    order = sorted(
        enumerate(decisions),
        key=lambda pair: (pair[1].decided_at, pair[1].id is None, pair[1].id or 0, pair[0]),
    )
    return [
        d if d.seq == seq else d.model_copy(update={"seq": seq})
        for seq, (_, d) in enumerate(order, start=1)
    ]


def _closable(offers: list[OfferRecord], agent_id: str, at: datetime) -> int | None:
    """The index of the offer to `agent_id` that an answer or a transfer at `at` closes.

    An offer still ringing, or one that a `call.ended` applied earlier closed no sooner than
    `at`. The latest offered no later than `at` wins; across nodes' clocks, any will do.
    """

    def open_at(offer: OfferRecord) -> bool:
        if offer.agent_id != agent_id or offer.offered_at is None:
            return False
        if offer.outcome is None:
            return True
        return offer.outcome is OfferOutcome.ENDED and (
            offer.closed_at is None or at <= offer.closed_at
        )

    candidates = [i for i, o in enumerate(offers) if open_at(o)]
    before = [i for i in candidates if (offers[i].offered_at or at) <= at]
    pool = before or candidates
    if not pool:
        return None
    return max(pool, key=lambda i: (offers[i].offered_at or at, i))


def _close(
    offers: list[OfferRecord],
    agent_id: str,
    at: datetime,
    outcome: OfferOutcome,
    reason: str | None,
) -> None:
    index = _closable(offers, agent_id, at)
    if index is None:
        offers.append(OfferRecord(agent_id=agent_id, outcome=outcome, reason=reason, closed_at=at))
        return
    offers[index] = offers[index].model_copy(
        update={"outcome": outcome, "reason": reason, "closed_at": at}
    )


def _offer(offers: list[OfferRecord], event: CallOffered, call: CallRecord) -> None:
    at = utc(event.at)
    expires_at = utc(event.expires_at)
    waiting = [
        i
        for i, o in enumerate(offers)
        if o.agent_id == event.agent_id and o.offered_at is None and o.closed_at is not None
    ]
    if waiting:
        # Fill in the close that arrived first: the earliest one not before this offer.
        not_before = [i for i in waiting if (offers[i].closed_at or at) >= at]
        index = min(not_before or waiting, key=lambda i: (offers[i].closed_at or at, i))
        offers[index] = offers[index].model_copy(
            update={"offered_at": at, "expires_at": expires_at}
        )
        return
    offer = OfferRecord(agent_id=event.agent_id, offered_at=at, expires_at=expires_at)
    if call.ended_at is not None and call.ended_at >= at:
        offer = offer.model_copy(
            update={
                "outcome": OfferOutcome.ENDED,
                "reason": call.end_reason,
                "closed_at": call.ended_at,
            }
        )
    offers.append(offer)


def _fold_offers(
    offers: list[OfferRecord], event: CallEvent, call: CallRecord
) -> list[OfferRecord]:
    at = utc(event.at)
    match event:
        case CallOffered():
            _offer(offers, event, call)
        case CallAnswered():
            _close(offers, event.agent_id, at, OfferOutcome.ANSWERED, None)
        case CallTransferred():
            _close(offers, event.from_agent_id, at, offer_outcome(event.reason), event.reason)
        case CallEnded():
            closed = {"outcome": OfferOutcome.ENDED, "reason": event.reason, "closed_at": at}
            offers = [o.model_copy(update=closed) if o.outcome is None else o for o in offers]
        case _:
            pass
    return offers


def decision_record(event: CallRouted) -> DecisionRecord:
    """The trail entry for one decision; `seq` is set when it joins the call's trail."""
    decision = event.decision
    return DecisionRecord(
        seq=0,
        trigger=event.trigger,
        outcome=event.outcome,
        policy=decision.policy,
        expression=decision.expression,
        queue=decision.queue,
        priority=decision.priority,
        strategy=str(decision.strategy),
        step=decision.step,
        agent_id=event.agent_id,
        required_skills=dict(decision.required_skills),
        candidates=list(decision.candidates),
        rejected=dict(decision.rejected),
        reason=decision.reason,
        decided_at=utc(decision.decided_at),
    )
