"""Sentiment per utterance (VADER), a rolling score per track and the caller's alert. The
rolling score and the alert rule are pure; VADER runs on the speech workers with the ASR."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Final, Literal

Label = Literal["positive", "neutral", "negative"]

# VADER's own convention for its compound score.
POSITIVE_AT: Final = 0.05
NEGATIVE_AT: Final = -0.05


def label_for(score: float) -> Label:
    if score >= POSITIVE_AT:
        return "positive"
    if score <= NEGATIVE_AT:
        return "negative"
    return "neutral"


class VaderScorer:
    """VADER's compound score in [-1, 1]. Loading reads its lexicon: build it on a worker."""

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()

    def score(self, text: str) -> float:
        if not text.strip():
            return 0.0
        return float(self._analyzer.polarity_scores(text)["compound"])


@dataclass(frozen=True, slots=True)
class RollingUpdate:
    rolling: float
    trend: float
    alert: bool


@dataclass
class RollingSentiment:
    """An exponentially weighted score per track; `trend` is its change over recent utterances.

    The alert fires once when the rolling score is below `alert_below` and has fallen by at
    least `alert_drop` over the last `trend_span` utterances; it re-arms when the score climbs
    back above `rearm_above`. Neutral utterances (fillers, "okay") weigh less than felt ones.
    """

    alpha: float = 0.4
    trend_span: int = 3
    alert_below: float = -0.2
    alert_drop: float = 0.2
    rearm_above: float = 0.0
    rolling: float = 0.0
    armed: bool = True
    _history: deque[float] = field(default_factory=lambda: deque(maxlen=8))

    def update(self, score: float) -> RollingUpdate:
        weight = self.alpha if abs(score) >= POSITIVE_AT else self.alpha / 3
        self.rolling = (1 - weight) * self.rolling + weight * score
        self._history.append(self.rolling)
        span = min(self.trend_span, len(self._history) - 1)
        trend = self.rolling - self._history[-1 - span] if span > 0 else self.rolling
        alert = False
        if self.armed and self.rolling <= self.alert_below and trend <= -self.alert_drop:
            alert = True
            self.armed = False
        elif not self.armed and self.rolling >= self.rearm_above:
            self.armed = True
        return RollingUpdate(round(self.rolling, 4), round(trend, 4), alert)
