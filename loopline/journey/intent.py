"""The caller's intent from what is known before they speak. Pure.

Each rule that holds adds its weight to its intent; the intent with the most weight wins.
Confidence is `best / (total + 1)`: one rule of weight 2 alone gives 0.67, two agreeing rules
more, rivals less; the `+ 1` keeps a single weak signal from claiming certainty. The signals
behind the winner go to the screen-pop and the policies (`intent.name == "cancel"`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from loopline.domain.intent import Intent, Signal
from loopline.domain.journey import JourneyMatch

Condition = Literal["url", "event", "keyword", "campaign", "crm"]


@dataclass(frozen=True)
class IntentRule:
    intent: str
    condition: Condition
    pattern: str  # a regex, an event name, or the CRM field
    weight: float = 1.0
    equals: Any = None
    gte: float | None = None
    lte: float | None = None
    _regex: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.condition in ("url", "keyword", "campaign"):
            object.__setattr__(self, "_regex", re.compile(self.pattern, re.IGNORECASE))

    def detail(
        self, journey: JourneyMatch | None, crm: Mapping[str, Any], campaign: str | None
    ) -> str | None:
        """What made the rule hold, or None when it does not."""
        check: Callable[..., str | None] = getattr(self, f"_{self.condition}")
        return check(journey, crm, campaign)

    def _url(
        self, journey: JourneyMatch | None, crm: Mapping[str, Any], campaign: str | None
    ) -> str | None:
        if journey is None:
            return None
        pages = [*journey.pages, *([journey.landing_page] if journey.landing_page else [])]
        for page in pages:
            if self._search(page):
                return f"visited {page}"
        return None

    def _event(
        self, journey: JourneyMatch | None, crm: Mapping[str, Any], campaign: str | None
    ) -> str | None:
        events = journey.extra.get("events", []) if journey else []
        return f"event {self.pattern}" if self.pattern in events else None

    def _keyword(
        self, journey: JourneyMatch | None, crm: Mapping[str, Any], campaign: str | None
    ) -> str | None:
        if journey is None:
            return None
        texts = [journey.keyword, journey.campaign, *journey.extra.get("titles", [])]
        for text in texts:
            if text and self._search(str(text)):
                return f"keyword {text!r}"
        return None

    def _campaign(
        self, journey: JourneyMatch | None, crm: Mapping[str, Any], campaign: str | None
    ) -> str | None:
        name = campaign or (journey.campaign if journey else None)
        return f"campaign {name}" if name and self._search(name) else None

    def _crm(
        self, journey: JourneyMatch | None, crm: Mapping[str, Any], campaign: str | None
    ) -> str | None:
        if self.pattern not in crm:
            return None
        value = crm[self.pattern]
        if self.equals is not None and value != self.equals:
            return None
        if self.gte is not None or self.lte is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            if self.gte is not None and value < self.gte:
                return None
            if self.lte is not None and value > self.lte:
                return None
        return f"crm {self.pattern}={value}"

    def _search(self, text: str) -> bool:
        return self._regex is not None and self._regex.search(text) is not None


def score(
    rules: Sequence[IntentRule],
    journey: JourneyMatch | None,
    crm: Mapping[str, Any],
    campaign: str | None,
) -> Intent:
    totals: dict[str, float] = {}
    signals: dict[str, list[Signal]] = {}
    for rule in rules:
        detail = rule.detail(journey, crm, campaign)
        if detail is None:
            continue
        totals[rule.intent] = totals.get(rule.intent, 0.0) + rule.weight
        source = (
            "crm"
            if rule.condition == "crm"
            else ("campaign" if rule.condition == "campaign" else "journey")
        )
        signals.setdefault(rule.intent, []).append(
            Signal(source=source, detail=detail, weight=rule.weight)
        )
    text = journey.extra.get("text_intent") if journey is not None else None
    if isinstance(text, dict) and text.get("name") and float(text.get("confidence", 0)) > 0:
        # The page-text classifier counts as one signal weighted by its own probability.
        name, weight = str(text["name"]), float(text["confidence"])
        totals[name] = totals.get(name, 0.0) + weight
        signals.setdefault(name, []).append(
            Signal(source="text", detail=f"page text reads as {name}", weight=round(weight, 4))
        )
    if not totals:
        return Intent()
    # Ties go to the intent whose first rule comes first in the configuration.
    best = max(totals, key=lambda name: totals[name])
    confidence = totals[best] / (sum(totals.values()) + 1.0)
    return Intent(name=best, confidence=round(confidence, 4), signals=signals[best])


class RuleIntentScorer:
    """The router's `IntentScorer` over configured rules."""

    def __init__(self, rules: Sequence[IntentRule]) -> None:
        self._rules = list(rules)

    def score(
        self, journey: JourneyMatch | None, crm: dict[str, Any], caller: str, campaign: str | None
    ) -> Intent:
        return score(self._rules, journey, crm, campaign)
