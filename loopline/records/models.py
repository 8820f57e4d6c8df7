"""What the records room hands back: one call with its decision and offer trails."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from loopline.domain.calls import CallStatus, Candidate
from loopline.domain.events import Redaction, SentimentView


class OfferOutcome(StrEnum):
    ANSWERED = "answered"
    REJECTED = "rejected"
    EXPIRED = "expired"
    NO_ANSWER = "no-answer"
    ENDED = "ended"  # the call ended while the offer was still ringing


class DecisionRecord(BaseModel):
    """One routing decision of a call; `seq` counts them from 1 in decision-time order."""

    id: int | None = None
    seq: int
    trigger: str
    outcome: str
    policy: str
    expression: str | None = None
    queue: str
    priority: int = 0
    strategy: str
    step: int = 0
    agent_id: str | None = None
    required_skills: dict[str, int] = Field(default_factory=dict)
    candidates: list[Candidate] = Field(default_factory=list)
    rejected: dict[str, str] = Field(default_factory=dict)
    reason: str = ""
    decided_at: datetime


class OfferRecord(BaseModel):
    """One offer of the call to one agent.

    `offered_at` is None while only the offer's close has been seen: events reach the records
    from several nodes, so `call.answered` may be applied before the `call.offered` it closes.
    """

    id: int | None = None
    agent_id: str
    offered_at: datetime | None = None
    expires_at: datetime | None = None
    outcome: OfferOutcome | None = None
    reason: str | None = None
    closed_at: datetime | None = None


class UtteranceRecord(BaseModel):
    """One final utterance of a call, redacted, as the transcript keeps it."""

    track: str
    speaker: str
    text: str
    start_ms: int
    end_ms: int
    redactions: list[Redaction] = Field(default_factory=list)
    sentiment: SentimentView | None = None
    at: datetime


class CallRecord(BaseModel):
    """A call as the durable records hold it.

    `received_at` is the `call.received` time; until that event is applied it is the earliest
    time any event of the call carried. `status_at` is the time of the event that set `status`.
    """

    call_id: str
    provider_call_id: str | None = None
    caller_number: str | None = None
    dialed: str | None = None
    campaign: str | None = None
    status: CallStatus = CallStatus.RECEIVED
    status_at: datetime | None = None
    queue: str | None = None
    policy: str | None = None
    agent_id: str | None = None
    received_at: datetime
    queued_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    duration_s: float | None = None
    end_reason: str | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    updated_at: datetime
    decisions: list[DecisionRecord] = Field(default_factory=list)
    offers: list[OfferRecord] = Field(default_factory=list)
    transcript: list[UtteranceRecord] = Field(default_factory=list)
