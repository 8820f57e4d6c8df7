"""VADER per utterance and the caller's rolling score and alert."""

from __future__ import annotations

import pytest

from loopline.media.sentiment import RollingSentiment, VaderScorer, label_for


@pytest.fixture(scope="module")
def vader() -> VaderScorer:
    return VaderScorer()


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Thank you so much, that's great!", "positive"),
        ("This is terrible, I am really angry and upset.", "negative"),
        ("The letter came on Tuesday.", "neutral"),
        ("", "neutral"),
    ],
)
def test_vader_labels(vader: VaderScorer, text: str, label: str) -> None:
    assert label_for(vader.score(text)) == label


def test_the_alert_fires_once_when_the_caller_turns_negative() -> None:
    rolling = RollingSentiment()
    scores = [0.5, 0.4, 0.0, -0.6, -0.8, -0.7, -0.9, 0.1]
    alerts = [rolling.update(s).alert for s in scores]
    assert alerts.count(True) == 1
    assert alerts.index(True) in (4, 5)


def test_a_steadily_negative_call_alerts_once_and_rearms_after_recovery() -> None:
    rolling = RollingSentiment()
    alerts = [rolling.update(s).alert for s in [-0.8] * 5 + [0.9] * 6 + [-0.9] * 5]
    assert alerts.count(True) == 2


def test_neutral_fillers_barely_move_the_score() -> None:
    rolling = RollingSentiment()
    rolling.update(0.8)
    before = rolling.rolling
    update = rolling.update(0.0)
    assert update.rolling > before * 0.8
