"""What a call came to: its outcome, its QA score and the conversions it earned."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

OutcomeSource = Literal["disposition", "rules", "classifier", "default"]


class Evidence(BaseModel):
    """Why an outcome or a QA item came out as it did.

    `span` is a character range in the transcript text the scorer read (`start`, `end`), so a
    supervisor can see the words; facts (duration, answered) have no span.
    """

    kind: Literal["fact", "phrase", "model", "disposition"]
    detail: str
    span: tuple[int, int] | None = None
    speaker: str | None = None


class Outcome(BaseModel):
    call_id: str
    label: str
    confidence: float = Field(ge=0, le=1)
    source: OutcomeSource
    evidence: list[Evidence] = Field(default_factory=list)
    value: float | None = None
    currency: str | None = None
    notes: str | None = None
    agent_id: str | None = None
    decided_by: str | None = None  # who gave the disposition
    at: datetime


class QaItemScore(BaseModel):
    id: str
    title: str
    passed: bool | None  # None: the item does not apply to this call
    points: float
    max_points: float
    evidence: list[Evidence] = Field(default_factory=list)


class QaScore(BaseModel):
    call_id: str
    score: float  # 0..100 over the items that apply
    points: float
    max_points: float
    items: list[QaItemScore] = Field(default_factory=list)
    at: datetime


class Conversion(BaseModel):
    """One conversion to report: what, how much, when, and whom it can be matched to."""

    id: str  # stable: the same call and rule always give the same id (the dedupe key)
    call_id: str
    name: str
    value: float
    currency: str
    occurred_at: datetime
    call_started_at: datetime | None = None
    caller_number: str | None = None  # E.164
    email: str | None = None
    click_ids: dict[str, str] = Field(default_factory=dict)  # gclid, gbraid, wbraid, fbclid...
    client_id: str | None = None  # GA4 client id of the visitor
    fbc: str | None = None
    fbp: str | None = None
    campaign: str | None = None
    source: str | None = None
    outcome: str
    destinations: list[str] = Field(default_factory=list)
