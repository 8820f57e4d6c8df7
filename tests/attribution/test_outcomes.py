"""Outcome rules, the model's answer and the disposition: tables of calls, one outcome each."""

from __future__ import annotations

from datetime import timedelta

import pytest

from loopline.attribution.facts import CallFacts
from loopline.attribution.outcomes import OutcomeRules, Prediction, disposition_outcome
from loopline.attribution.transcript import Transcript
from loopline.config.attribution import AttributionConfig, OutcomeRule
from tests.attribution.conftest import T0
from tests.attribution.transcripts import transcript

RULES = OutcomeRules(AttributionConfig())


def call(answered: bool = True, duration_s: float = 240.0, reason: str = "completed") -> CallFacts:
    return CallFacts(
        call_id="c1",
        received_at=T0,
        answered_at=T0 + timedelta(seconds=6) if answered else None,
        ended_at=T0 + timedelta(seconds=duration_s),
        duration_s=duration_s,
        end_reason=reason,
        agent_id="ana" if answered else None,
    )


EMPTY = Transcript.of([])


@pytest.mark.parametrize(
    ("facts", "said", "label", "source"),
    [
        (call(answered=False, duration_s=30), EMPTY, "missed", "rules"),
        (call(duration_s=4), EMPTY, "spam", "rules"),
        (call(), transcript("caller: sorry, wrong number"), "spam", "rules"),
        (
            call(),
            transcript("agent: great, your payment went through", "caller: thanks"),
            "sale",
            "rules",
        ),
        (
            call(),
            transcript("agent: I've booked you in for Tuesday at ten"),
            "appointment_booked",
            "rules",
        ),
        (
            call(),
            transcript("caller: how much would a policy for my condo be?"),
            "quote_requested",
            "rules",
        ),
        (call(), transcript("caller: I have a question about my claim"), "support", "rules"),
        # "my claim" counts only when the caller says it
        (call(), transcript("agent: let me look at my claim notes"), "not_a_lead", "default"),
        (call(), transcript("caller: hello?", "agent: hi"), "not_a_lead", "default"),
        # a sale said in passing beats a quote: the surer rule wins
        (
            call(),
            transcript("caller: I wanted a quote", "agent: welcome aboard, you're covered"),
            "sale",
            "rules",
        ),
    ],
)
def test_rules(facts: CallFacts, said: Transcript, label: str, source: str) -> None:
    outcome = RULES.classify(facts, said, None, T0)
    assert (outcome.label, outcome.source) == (label, source)
    assert outcome.evidence


def test_phrase_evidence_points_at_the_words() -> None:
    said = transcript("caller: hi there", "agent: Great news, your PAYMENT  went through today")
    outcome = RULES.classify(call(), said, None, T0)
    [phrase] = [e for e in outcome.evidence if e.kind == "phrase"]
    assert phrase.span is not None and phrase.speaker == "agent"
    assert said.text[phrase.span[0] : phrase.span[1]] == "PAYMENT  went through"


@pytest.mark.parametrize(
    ("prediction", "label", "source"),
    [
        (Prediction("sale", 0.9, (("sale", 0.9), ("quote_requested", 0.05))), "sale", "classifier"),
        # not sure enough: the rules' answer stands
        (Prediction("sale", 0.5, (("sale", 0.5),)), "quote_requested", "rules"),
        # surer than the rule (0.6), and above the threshold
        (Prediction("support", 0.65, (("support", 0.65),)), "support", "classifier"),
        (Prediction("nonsense", 0.99, (("nonsense", 0.99),)), "quote_requested", "rules"),
    ],
)
def test_the_model_wins_only_when_sure_and_surer(
    prediction: Prediction, label: str, source: str
) -> None:
    said = transcript("caller: I'd like a quote for my house")
    outcome = RULES.classify(call(), said, prediction, T0)
    assert (outcome.label, outcome.source) == (label, source)


def test_the_model_never_overrides_a_missed_call() -> None:
    outcome = RULES.classify(call(answered=False), EMPTY, Prediction("sale", 0.99), T0)
    assert outcome.label == "missed"


def test_custom_rules_on_end_reason_and_duration() -> None:
    config = AttributionConfig(
        rules=[
            OutcomeRule(label="missed", end_reasons=["voicemail"], confidence=0.9),
            OutcomeRule(label="support", min_duration_s=60, max_duration_s=120, confidence=0.5),
        ]
    )
    rules = OutcomeRules(config)
    assert rules.classify(call(reason="voicemail"), EMPTY, None, T0).label == "missed"
    assert rules.classify(call(duration_s=90), EMPTY, None, T0).label == "support"
    assert rules.classify(call(duration_s=200), EMPTY, None, T0).label == "not_a_lead"


def test_a_disposition_is_certain_and_says_who() -> None:
    outcome = disposition_outcome(
        "c1",
        "sale",
        value=450.0,
        currency="USD",
        notes="home policy",
        agent_id="ana",
        decided_by="agent:ana",
        now=T0,
    )
    assert (outcome.confidence, outcome.source, outcome.value) == (1.0, "disposition", 450.0)
    assert outcome.evidence[0].kind == "disposition"


@pytest.mark.parametrize(
    "config",
    [
        {"default_label": "nope"},
        {"rules": [{"label": "nope"}]},
        {"conversions": [{"outcome": "sale", "name": "S", "destinations": ["ghost"]}]},
        {"conversions": [{"outcome": "ghost", "name": "S"}]},
        {"labels": ["a", "a"], "default_label": "a", "rules": []},
    ],
)
def test_config_refuses_dangling_names(config: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        AttributionConfig.model_validate(config)
