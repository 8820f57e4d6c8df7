"""The QA scorecard on transcripts: each item passed, failed or not applicable, with words."""

from __future__ import annotations

import pytest

from loopline.attribution.qa import Scorecard
from loopline.config.attribution import AttributionConfig
from tests.attribution.conftest import T0
from tests.attribution.transcripts import transcript

CARD = Scorecard(list(AttributionConfig().qa))

GOOD = transcript(
    "agent: Thank you for calling Harbor, this is Ana. This call may be recorded for quality.",
    "caller: Hi, I need to check my bill.",
    "agent: Sure. Can you verify your date of birth?",
    "caller: March third, 1980.",
    "agent: Thanks. Your balance is 120 dollars. May I place you on hold while I check a discount?",
    "caller: Sure.",
    "agent: Thank you for holding. I can offer you a 10 percent discount.",
    "agent: Is there anything else I can help with?",
)


def results(t: object) -> dict[str, bool | None]:
    score = CARD.score("c1", t, T0)  # type: ignore[arg-type]
    return {i.id: i.passed for i in score.items}


def test_a_good_call_passes_every_item() -> None:
    score = CARD.score("c1", GOOD, T0)
    assert all(i.passed for i in score.items)
    assert score.score == 100.0
    greeting = next(i for i in score.items if i.id == "greeting")
    span = greeting.evidence[0].span
    assert span is not None and GOOD.text[span[0] : span[1]] == "Thank you for calling"


@pytest.mark.parametrize(
    ("said", "item", "passed"),
    [
        (("agent: hello", "caller: hi"), "greeting", False),
        # greeting 20 s in: too late for a 15 s window
        (
            (
                "agent: um",
                "caller: hi",
                "agent: err",
                "caller: ?",
                "agent: ok",
                "agent: thanks for calling",
            ),
            "greeting",
            False,
        ),
        (("agent: this call is being recorded",), "recording_disclosure", True),
        (("agent: hello",), "recording_disclosure", False),
        (
            ("agent: your balance is 40 dollars", "agent: can you confirm your address"),
            "identity_verified",
            False,
        ),
        (
            ("agent: please confirm your date of birth", "agent: your balance is 40"),
            "identity_verified",
            True,
        ),
        (("agent: how can I help",), "identity_verified", None),
        (("agent: calm down please",), "no_prohibited", False),
        (("agent: happy to help",), "no_prohibited", True),
        (("agent: you're all set",), "resolution", True),
        (("agent: goodbye",), "resolution", False),
        (("agent: I'll put you on hold", "agent: thanks for waiting"), "hold_etiquette", False),
        (("agent: can I put you on hold?", "agent: back"), "hold_etiquette", False),
        (("agent: can I put you on hold?", "agent: thanks for holding"), "hold_etiquette", True),
        (("agent: hello",), "hold_etiquette", None),
        (("caller: hello? anyone?",), "greeting", None),  # the agent never spoke
    ],
)
def test_items(said: tuple[str, ...], item: str, passed: bool | None) -> None:
    assert results(transcript(*said))[item] is passed


def test_inapplicable_items_do_not_count() -> None:
    score = CARD.score(
        "c1",
        transcript("agent: thanks for calling, this call is recorded", "agent: you're all set"),
        T0,
    )
    applicable = [i for i in score.items if i.passed is not None]
    assert {i.id for i in applicable} == {
        "greeting",
        "recording_disclosure",
        "no_prohibited",
        "resolution",
    }
    assert score.score == 100.0 and score.max_points == 5.0  # no_prohibited weighs 2
