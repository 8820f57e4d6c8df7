"""The caller's intent, as scored from the journey, the CRM and (later) their words."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Signal(BaseModel):
    """One piece of evidence behind an intent."""

    source: str  # "journey", "crm", "campaign", "speech", ...
    detail: str
    weight: float = 1.0


class Intent(BaseModel):
    name: str = "unknown"
    confidence: float = Field(default=0.0, ge=0, le=1)
    signals: list[Signal] = Field(default_factory=list)
