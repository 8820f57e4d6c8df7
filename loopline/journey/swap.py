"""Which number a visit is shown. Pure.

Precedence: a landing-page parameter naming a campaign, then referrer rules, then source-level
numbers set to always swap (matching the visit's UTM source and medium), then the session pool.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from loopline.journey.session import url_params

SwapKind = Literal["param", "referrer", "source", "pool", "default"]


@dataclass(frozen=True)
class SourceNumber:
    number: str
    campaign: str
    source: str | None = None
    medium: str | None = None
    always_swap: bool = False


@dataclass(frozen=True)
class SwapRules:
    sources: Sequence[SourceNumber] = ()
    landing_param: str = "ll_campaign"
    referrer_rules: Sequence[tuple[str, str]] = ()  # (regex, campaign)
    pool: str | None = None
    _by_campaign: Mapping[str, SourceNumber] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_campaign", {s.campaign: s for s in self.sources})

    def number_of(self, campaign: str) -> SourceNumber | None:
        return self._by_campaign.get(campaign)


@dataclass(frozen=True)
class SwapChoice:
    kind: SwapKind
    number: str | None = None  # None with kind "pool": lease one; with "default": keep the page's
    campaign: str | None = None


def choose_swap(landing: str | None, referrer: str | None, rules: SwapRules) -> SwapChoice:
    params = url_params(landing)
    wanted = params.get(rules.landing_param)
    if wanted and (src := rules.number_of(wanted)):
        return SwapChoice("param", src.number, src.campaign)
    if referrer:
        for pattern, campaign in rules.referrer_rules:
            if re.search(pattern, referrer) and (src := rules.number_of(campaign)):
                return SwapChoice("referrer", src.number, src.campaign)
    source, medium = params.get("utm_source"), params.get("utm_medium")
    for src in rules.sources:
        if not src.always_swap or src.source is None:
            continue
        if src.source == source and (src.medium is None or src.medium == medium):
            return SwapChoice("source", src.number, src.campaign)
    if rules.pool is not None:
        return SwapChoice("pool")
    return SwapChoice("default")
