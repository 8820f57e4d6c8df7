"""Rule-based intent: a table of journeys and CRM facts, and the intent each gives."""

from __future__ import annotations

from typing import Any

import pytest

from loopline.domain.journey import JourneyMatch
from loopline.journey.intent import IntentRule, score

RULES = [
    IntentRule("cancel", "url", r"/cancel|/close-account", weight=2),
    IntentRule("cancel", "crm", "churn_risk", weight=1.5, gte=0.7),
    IntentRule("billing", "event", "pay_bill_click", weight=2),
    IntentRule("billing", "crm", "balance_due", weight=1, gte=0.01),
    IntentRule("quote", "url", r"/quote|/pricing", weight=1),
    IntentRule("quote", "keyword", r"\bquote|insurance\b", weight=1),
    IntentRule("support", "crm", "open_ticket", weight=1.5, equals=True),
    IntentRule("sales", "campaign", r"^spring-sale", weight=0.5),
]


def j(**kw: Any) -> JourneyMatch:
    return JourneyMatch(session_id="s1", confidence="active", **kw)


@pytest.mark.parametrize(
    ("journey", "crm", "campaign", "name", "confidence", "details"),
    [
        (None, {}, None, "unknown", 0.0, []),
        (j(pages=["/cancel"]), {}, None, "cancel", 0.6667, ["visited /cancel"]),
        (
            j(pages=["/cancel"]),
            {"churn_risk": 0.82},
            None,
            "cancel",
            0.7778,
            ["visited /cancel", "crm churn_risk=0.82"],
        ),
        (None, {"churn_risk": 0.5}, None, "unknown", 0.0, []),
        (None, {"churn_risk": "high"}, None, "unknown", 0.0, []),  # not a number: no signal
        (
            j(pages=["/pricing"], keyword="home insurance quote"),
            {},
            None,
            "quote",
            0.6667,
            ["visited /pricing", "keyword 'home insurance quote'"],
        ),
        (
            j(extra={"events": ["pay_bill_click"]}),
            {"balance_due": 412.5},
            None,
            "billing",
            0.75,
            ["event pay_bill_click", "crm balance_due=412.5"],
        ),
        (None, {"open_ticket": True}, None, "support", 0.6, ["crm open_ticket=True"]),
        (None, {"open_ticket": False}, None, "unknown", 0.0, []),
        (None, {}, "spring-sale-es", "sales", 0.3333, ["campaign spring-sale-es"]),
        # rivals: quote (2) against sales (0.5): quote wins with less confidence
        (
            j(pages=["/quote"], extra={"titles": ["Get a Quote"]}),
            {},
            "spring-sale",
            "quote",
            0.5714,
            ["visited /quote", "keyword 'Get a Quote'"],
        ),
    ],
)
def test_score(journey, crm, campaign, name, confidence, details) -> None:  # type: ignore[no-untyped-def]
    intent = score(RULES, journey, crm, campaign)
    assert intent.name == name
    assert intent.confidence == pytest.approx(confidence, abs=1e-4)
    assert [s.detail for s in intent.signals] == details


def test_page_text_classifier_is_one_signal_weighted_by_its_probability() -> None:
    journey = j(pages=["/pricing"], extra={"text_intent": {"name": "cancel", "confidence": 0.9}})
    intent = score(RULES, journey, {}, None)
    # quote: 1 (page) against cancel: 0.9 (text) → quote, with the rival lowering confidence
    assert intent.name == "quote" and intent.confidence == pytest.approx(1 / 2.9, abs=1e-4)
    journey = j(extra={"text_intent": {"name": "cancel", "confidence": 0.9}})
    intent = score(RULES, journey, {"churn_risk": 0.9}, None)
    assert intent.name == "cancel"
    assert [s.source for s in intent.signals] == ["crm", "text"]
