"""The `compliance:` section: consent, automated-decision opt-out, retention, redaction."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# US states that require every party's consent to record a call (a common reading of state
# wiretap laws; deployments should confirm with counsel and may override the list).
ALL_PARTY_STATES = ("CA", "CT", "DE", "FL", "IL", "MD", "MA", "MI", "MT", "NV", "NH", "PA", "WA")


class ConsentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # notify: every caller hears the disclosure before the stream starts.
    # all-party: only callers from all-party-consent states (or of unknown location) hear it.
    # no-stream-all-party: callers from those states are not streamed or transcribed at all.
    # off: no disclosure (one-party-consent deployments).
    mode: Literal["notify", "all-party", "no-stream-all-party", "off"] = "notify"
    disclosure: str = "This call may be recorded and transcribed for quality and training."
    disclosure_audio_url: str | None = None  # <Play> this instead of <Say>
    all_party_states: list[str] = Field(default_factory=lambda: list(ALL_PARTY_STATES))
    # Callers whose state cannot be told from their number count as all-party callers.
    unknown_location_is_all_party: bool = True
    # QA checks that the agent also said a disclosure (some policies require it).
    agent_disclosure_required: bool = False


class AdmtConfig(BaseModel):
    """California ADMT: callers may opt out of automated decision-making."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dtmf_key: str | None = Field(default=None, pattern=r"^[0-9*#]$")
    greeting: str = "To have your call routed without automated decision-making, press {key} now."
    gather_timeout_s: int = Field(default=3, ge=1, le=10)
    crm_flag: str = "admt_opt_out"  # a truthy CRM field opts the caller out
    journey_flag: str = "admt_opt_out"  # a consent flag the site set on the web session


class RetentionConfig(BaseModel):
    """Days each kind of data is kept; null keeps it until deleted by hand."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    transcripts_days: int | None = Field(default=90, ge=1)
    recordings_days: int | None = Field(default=30, ge=1)
    journeys_days: int | None = Field(default=90, ge=1)
    calls_days: int | None = Field(default=730, ge=1)
    conversions_days: int | None = Field(default=730, ge=1)
    audit_days: int | None = Field(default=2555, ge=1)
    batch_size: int = Field(default=500, ge=10, le=100_000)
    sweep_interval_s: int = Field(default=3600, ge=10)


class ComplianceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    consent: ConsentConfig = Field(default_factory=ConsentConfig)
    admt: AdmtConfig = Field(default_factory=AdmtConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    # Which kinds are redacted: PCI (card data) always; add "phi" for health deployments.
    redact_phi: bool = False
