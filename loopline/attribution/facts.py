"""What the attribution room reads of one call, taken from its record. Pure."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from loopline.domain.calls import CallState
from loopline.domain.journey import JourneyMatch
from loopline.records.models import CallRecord


class CallFacts(BaseModel):
    call_id: str
    received_at: datetime
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    duration_s: float | None = None
    end_reason: str | None = None
    agent_id: str | None = None
    caller_number: str | None = None
    campaign: str | None = None
    intent: str | None = None
    journey: JourneyMatch | None = None
    offers: int = 0
    offered_agents: list[str] = Field(default_factory=list)

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    @property
    def speed_to_answer_s(self) -> float | None:
        if self.answered_at is None:
            return None
        return max(0.0, (self.answered_at - self.received_at).total_seconds())

    @property
    def handle_s(self) -> float | None:
        if self.answered_at is None or self.ended_at is None:
            return None
        return max(0.0, (self.ended_at - self.answered_at).total_seconds())

    @property
    def transferred(self) -> bool:
        """Offered to more than one agent: the call moved on from someone."""
        return len(set(self.offered_agents)) > 1

    @property
    def source(self) -> str | None:
        return self.journey.source if self.journey else None

    @property
    def keyword(self) -> str | None:
        return self.journey.keyword if self.journey else None

    @property
    def effective_campaign(self) -> str | None:
        return self.campaign or (self.journey.campaign if self.journey else None)

    def day(self, zone: str) -> date:
        return self.received_at.astimezone(ZoneInfo(zone)).date()


def facts_from_record(record: CallRecord) -> CallFacts:
    context: dict[str, Any] = record.context or {}
    journey_raw = context.get("journey")
    journey = JourneyMatch.model_validate(journey_raw) if isinstance(journey_raw, dict) else None
    intent_raw = context.get("intent")
    intent = intent_raw.get("name") if isinstance(intent_raw, dict) else None
    caller_raw = context.get("caller")
    caller = record.caller_number
    if caller is None and isinstance(caller_raw, dict):
        caller = caller_raw.get("number")
    offered = [o.agent_id for o in record.offers if o.offered_at is not None]
    return CallFacts(
        call_id=record.call_id,
        received_at=record.received_at,
        answered_at=record.answered_at,
        ended_at=record.ended_at,
        duration_s=record.duration_s,
        end_reason=record.end_reason,
        agent_id=record.agent_id,
        caller_number=caller,
        campaign=record.campaign or (journey.campaign if journey else None),
        intent=intent if intent and intent != "unknown" else None,
        journey=journey,
        offers=len(offered),
        offered_agents=offered,
    )


def facts_from_live(call: CallState) -> CallFacts:
    """Facts of a call still in progress (a disposition given before the call ended)."""
    context = call.context
    journey = context.journey
    return CallFacts(
        call_id=call.call_id,
        received_at=call.received_at,
        answered_at=call.answered_at,
        ended_at=call.ended_at,
        agent_id=call.agent_id,
        caller_number=context.caller.number,
        campaign=context.campaign or (journey.campaign if journey else None),
        intent=context.intent.name if context.intent.name != "unknown" else None,
        journey=journey,
        offers=len(call.tried_agents),
        offered_agents=list(call.tried_agents),
    )
