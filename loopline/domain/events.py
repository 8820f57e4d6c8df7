"""Typed events on the bus. Each carries `type`, `call_id`, `at` and a schema version `v`.

The bus carries their JSON; `parse_event` turns it back into the right model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from loopline.domain.agents import Presence
from loopline.domain.calls import Decision
from loopline.domain.consent import ConsentDecision, OptOutVia
from loopline.domain.intent import Intent
from loopline.domain.journey import JourneyMatch
from loopline.domain.outcomes import Evidence, QaItemScore

SCHEMA_VERSION = 1


class EventBase(BaseModel):
    call_id: str | None = None
    at: datetime
    v: int = SCHEMA_VERSION


class CallerView(BaseModel):
    number: str
    name: str | None = None


class DecisionView(BaseModel):
    policy: str
    queue: str
    reason: str


class CallReceived(EventBase):
    type: Literal["call.received"] = "call.received"
    provider_call_id: str
    caller: CallerView
    dialed: str
    campaign: str | None = None
    consent: ConsentDecision | None = None
    admt_opt_out: OptOutVia | None = None


class CallRouted(EventBase):
    """A decision was made (first routing, a re-route or a dequeue)."""

    type: Literal["call.routed"] = "call.routed"
    decision: Decision
    outcome: Literal["offered", "queued", "fallback"]
    agent_id: str | None = None
    trigger: Literal["webhook", "reroute", "dequeue", "expired"] = "webhook"


class CallOffered(EventBase):
    """The screen-pop: pushed to the reserved agent's desktop at once."""

    type: Literal["call.offered"] = "call.offered"
    agent_id: str
    caller: CallerView
    crm: dict[str, Any] = Field(default_factory=dict)
    journey: JourneyMatch | None = None
    intent: Intent = Field(default_factory=Intent)
    decision: DecisionView
    expires_at: datetime


class CallAnswered(EventBase):
    type: Literal["call.answered"] = "call.answered"
    agent_id: str


class CallQueued(EventBase):
    type: Literal["call.queued"] = "call.queued"
    queue: str
    priority: int


class CallTransferred(EventBase):
    """An offer fell through (rejected, no answer, expired) and the call moves on."""

    type: Literal["call.transferred"] = "call.transferred"
    from_agent_id: str
    reason: str


class CallEnded(EventBase):
    type: Literal["call.ended"] = "call.ended"
    agent_id: str | None = None
    reason: str = "completed"
    duration_s: float = 0.0


class AgentStateChanged(EventBase):
    type: Literal["agent.state"] = "agent.state"
    agent_id: str
    presence: Presence
    load: int = 0


class Redaction(BaseModel):
    kind: str  # card, cvv, expiry, ssn, dob, email, phone, ...
    start_ms: int
    end_ms: int


class SentimentView(BaseModel):
    label: Literal["positive", "neutral", "negative"]
    score: float  # -1 .. 1


class UtteranceEvent(EventBase):
    """One utterance of one track, already redacted: partial while spoken, then final."""

    type: Literal["utterance.partial", "utterance.final"]
    track: Literal["inbound", "outbound"]
    speaker: Literal["caller", "agent"]
    text: str
    start_ms: int
    end_ms: int
    redactions: list[Redaction] = Field(default_factory=list)
    sentiment: SentimentView | None = None
    agent_id: str | None = None  # the call's agent, so the hub can reach their desktop


class SentimentUpdated(EventBase):
    type: Literal["sentiment.updated"] = "sentiment.updated"
    track: Literal["inbound", "outbound"]
    rolling: float  # -1 .. 1
    trend: float
    alert: bool = False
    agent_id: str | None = None


class SentimentAlert(EventBase):
    """The caller's rolling sentiment has turned negative (once, until it recovers)."""

    type: Literal["sentiment.alert"] = "sentiment.alert"
    track: Literal["inbound", "outbound"] = "inbound"
    rolling: float  # -1 .. 1
    trend: float
    agent_id: str | None = None


class ComplianceFlagged(EventBase):
    type: Literal["compliance.flagged"] = "compliance.flagged"
    kind: str
    detail: str = ""
    agent_id: str | None = None


class MediaLag(EventBase):
    """Speech recognition is behind real time on a node (supervisors see a warning)."""

    type: Literal["media.lag"] = "media.lag"
    node: str
    lag_s: float


class SessionTouched(EventBase):
    type: Literal["session.touched"] = "session.touched"
    session_id: str
    kind: str  # pageview, event, heartbeat, ...
    url: str | None = None


class LeaseGranted(EventBase):
    type: Literal["lease.granted"] = "lease.granted"
    session_id: str
    number: str
    pool: str
    fallback: bool = False


class OutcomeClassified(EventBase):
    type: Literal["outcome.classified"] = "outcome.classified"
    label: str
    confidence: float
    source: str  # disposition | rules | classifier | default
    evidence: list[Evidence] = Field(default_factory=list)
    value: float | None = None
    currency: str | None = None
    agent_id: str | None = None


class QaScored(EventBase):
    type: Literal["qa.scored"] = "qa.scored"
    score: float
    items: list[QaItemScore] = Field(default_factory=list)
    agent_id: str | None = None


class ConversionCreated(EventBase):
    type: Literal["conversion.created"] = "conversion.created"
    conversion_id: str
    name: str
    value: float
    currency: str
    destinations: list[str] = Field(default_factory=list)


class ConversionDelivered(EventBase):
    type: Literal["conversion.delivered"] = "conversion.delivered"
    conversion_id: str
    destination: str
    attempts: int


class ConversionFailed(EventBase):
    """A delivery attempt failed; `dead` when the conversion moved to the dead-letter list."""

    type: Literal["conversion.failed"] = "conversion.failed"
    conversion_id: str
    destination: str
    attempts: int
    error: str
    dead: bool = False


Event = Annotated[
    CallReceived
    | CallRouted
    | CallOffered
    | CallAnswered
    | CallQueued
    | CallTransferred
    | CallEnded
    | AgentStateChanged
    | UtteranceEvent
    | SentimentUpdated
    | SentimentAlert
    | ComplianceFlagged
    | MediaLag
    | SessionTouched
    | LeaseGranted
    | OutcomeClassified
    | QaScored
    | ConversionCreated
    | ConversionDelivered
    | ConversionFailed,
    Field(discriminator="type"),
]

_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(raw: str | bytes) -> Event:
    """Parse one event from its JSON; raises `pydantic.ValidationError` on bad input."""
    return _EVENT_ADAPTER.validate_json(raw)


def dump_event(event: Event) -> str:
    return event.model_dump_json()
