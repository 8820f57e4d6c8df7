"""The `journey:` section of the deployment file: number pools, swap rules, intent rules."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from loopline.journey.pool import ZONE_WINDOW

E164 = Annotated[str, Field(pattern=r"^\+[1-9]\d{6,14}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from exc
    return value


class PoolConfig(_Strict):
    """Session-level numbers: one per active visitor, reused least recently released first."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    numbers: list[E164] = Field(min_length=1)
    fallback_number: E164 | None = None  # shown when every number is held
    idle_hold_s: float = Field(default=180, ge=61, le=86400)  # > the 60 s heartbeat
    history: int = Field(default=8, ge=1, le=64)
    # Zone-diverse reuse: how many of the least recently released numbers a visitor of known
    # zone may take from (journey/pool.py); 1 (the default) is plain least recently released.
    zone_window: int = Field(default=ZONE_WINDOW, ge=1, le=64)


class ReferrerRule(_Strict):
    """A referrer host or URL matching `pattern` swaps in the tracking number of `campaign`."""

    pattern: str
    campaign: str

    _check = field_validator("pattern")(_regex)


class CallTimingConfig(_Strict):
    during_share: float = Field(default=0.4, ge=0, le=1)
    visit_mean_s: float = Field(default=250, gt=0)
    delay_median_s: float = Field(default=300, gt=0)
    delay_sigma: float = Field(default=1.2, gt=0)


class IntentRuleConfig(_Strict):
    """One signal: when its condition holds, `weight` counts toward `intent`.

    Exactly one condition: `url` (regex over pages seen), `event` (a marked page event),
    `keyword` (regex over campaign, keyword, UTM terms and page titles), `campaign` (regex over
    the call's campaign), or `crm` (a CRM field compared with `equals`, `gte` or `lte`)."""

    intent: str = Field(pattern=r"^[a-z0-9_-]{1,40}$")
    weight: float = Field(default=1.0, gt=0, le=100)
    url: str | None = None
    event: str | None = None
    keyword: str | None = None
    campaign: str | None = None
    crm: str | None = None
    equals: Any = None
    gte: float | None = None
    lte: float | None = None

    @model_validator(mode="after")
    def _one_condition(self) -> IntentRuleConfig:
        given = [k for k in ("url", "event", "keyword", "campaign", "crm") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "an intent rule needs exactly one of url, event, keyword, campaign, crm"
            )
        for name in ("url", "keyword", "campaign"):
            value = getattr(self, name)
            if value:
                _regex(value)
        if self.crm and self.equals is None and self.gte is None and self.lte is None:
            raise ValueError("a crm rule needs equals, gte or lte")
        return self


class RateLimitConfig(_Strict):
    per_visitor_per_min: int = Field(default=60, ge=1)
    per_address_per_min: int = Field(default=600, ge=1)


class JourneyConfig(_Strict):
    """Optional: without pools and rules the journey room stays idle and calls route as before."""

    sites: list[str] = Field(default_factory=list)  # origins allowed to post touches (CORS)
    default_number: E164 | None = None
    pools: list[PoolConfig] = Field(default_factory=list)
    landing_param: str = Field(default="ll_campaign", pattern=r"^[A-Za-z0-9_-]{1,40}$")
    referrer_rules: list[ReferrerRule] = Field(default_factory=list)
    timing: CallTimingConfig = Field(default_factory=CallTimingConfig)
    max_since_s: float | None = Field(default=None, gt=0)
    max_body_bytes: int = Field(default=16_384, ge=1024, le=1_048_576)
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)
    intent_rules: list[IntentRuleConfig] = Field(default_factory=list)
    intent_model: str | None = None  # a trained text classifier (loopline train intent)
    state_prefix: str = "loopline:journey:"
    enabled: Literal["auto", "on", "off"] = "auto"

    @model_validator(mode="after")
    def _unique(self) -> JourneyConfig:
        names = [p.name for p in self.pools]
        if len(names) != len(set(names)):
            raise ValueError("journey.pools: duplicate pool name")
        numbers = [n for p in self.pools for n in p.numbers]
        if len(numbers) != len(set(numbers)):
            raise ValueError("journey.pools: a number is in more than one pool")
        return self

    @property
    def active(self) -> bool:
        if self.enabled == "auto":
            return bool(self.pools or self.intent_rules or self.intent_model)
        return self.enabled == "on"
