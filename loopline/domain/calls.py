"""Calls: what arrives, the context routing reads, and the call's live state."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from loopline.domain.consent import ConsentDecision, OptOutVia
from loopline.domain.intent import Intent
from loopline.domain.journey import JourneyMatch


class InboundCall(BaseModel):
    """A new call as a provider reports it, in our terms."""

    provider: str = "twilio"
    provider_call_id: str  # Twilio CallSid
    from_number: str  # as the provider sent it
    to_number: str
    caller_name: str | None = None
    from_country: str | None = None
    from_state: str | None = None
    received_at: datetime
    digits: str | None = None  # keys the caller pressed in a greeting's <Gather>


class Caller(BaseModel):
    number: str  # E.164 when it parses; the raw value otherwise
    valid: bool = False
    country: str | None = None
    region: str | None = None  # state/province code from the number or the provider
    name: str | None = None


class QueueStats(BaseModel):
    waiting: int = 0
    longest_wait_s: float = 0.0
    agents_available: int = 0


class TimeFacts(BaseModel):
    hour: int
    weekday: int  # 0 = Monday
    in_business_hours: bool
    iso: str


class CallContext(BaseModel):
    """Everything routing policies may read about one call (the CEL variables)."""

    call_id: str
    caller: Caller
    dialed: str
    campaign: str | None = None
    crm: dict[str, Any] = Field(default_factory=dict)
    # How the CRM look-up went; "over_budget": the call was routed without it.
    crm_status: Literal["ok", "unknown", "over_budget", "failed"] = "ok"
    journey: JourneyMatch | None = None
    intent: Intent = Field(default_factory=Intent)
    time: TimeFacts
    queues: dict[str, QueueStats] = Field(default_factory=dict)

    def cel_vars(self) -> dict[str, Any]:
        """The context as plain CEL variables (`caller.number`, `crm.tier`, `intent.name`...)."""
        data = self.model_dump(mode="json")
        return {
            "call": {"id": self.call_id, "dialed": self.dialed, "campaign": self.campaign or ""},
            "caller": data["caller"],
            "crm": data["crm"],
            "journey": data["journey"],
            "intent": data["intent"],
            "time": data["time"],
            "queues": data["queues"],
        }


class Strategy(StrEnum):
    LONGEST_IDLE = "longest-idle"
    MOST_PROFICIENT = "most-proficient"
    ROUND_ROBIN = "round-robin"
    STICKY = "sticky"
    BEST_MATCH = "best-match"


class Candidate(BaseModel):
    agent_id: str
    score: float
    why: str = ""


class Decision(BaseModel):
    """What the policies decided for one call, and why."""

    call_id: str
    policy: str  # the policy name, or "default"
    expression: str | None = None  # the CEL `when` that matched
    queue: str
    priority: int = 0
    strategy: Strategy
    timeout_s: int = 20
    step: int = 0  # which relaxation step was in force
    required_skills: dict[str, int] = Field(default_factory=dict)
    candidates: list[Candidate] = Field(default_factory=list)
    rejected: dict[str, str] = Field(default_factory=dict)  # agent id -> why not eligible
    reason: str = ""
    decided_at: datetime


class CallStatus(StrEnum):
    RECEIVED = "received"
    OFFERED = "offered"  # an agent is reserved and ringing
    QUEUED = "queued"
    ANSWERED = "answered"
    ENDED = "ended"
    FALLBACK = "fallback"  # answered with the overflow number (degraded)


class CallState(BaseModel):
    """A live call as every node sees it (kept in the state store)."""

    call_id: str
    provider_call_id: str
    status: CallStatus = CallStatus.RECEIVED
    context: CallContext
    decision: Decision | None = None
    agent_id: str | None = None
    tried_agents: list[str] = Field(default_factory=list)
    queued_at: datetime | None = None
    received_at: datetime
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    consent: ConsentDecision | None = None  # disclosure and streaming, with its basis
    admt_opt_out: OptOutVia | None = None  # routed without automated decision-making


class QueuedCall(BaseModel):
    call_id: str
    queue: str
    priority: int
    enqueued_at: datetime


class Reservation(BaseModel):
    call_id: str
    agent_id: str
    expires_at: datetime
