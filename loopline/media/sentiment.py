"""Sentiment per utterance, a rolling score per track and the caller's alert.

Two scorers, chosen by `media.sentiment`: VADER (the lexicon baseline) and a classifier trained
with `loopline train sentiment` on the MiniLM sentence embeddings the intent classifier uses.
Both run on the speech workers with the ASR, a pack's texts at once. The rolling score and the
alert rule are pure.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, Protocol, get_args

Label = Literal["positive", "neutral", "negative"]
LABELS: Final[tuple[Label, ...]] = get_args(Label)

# VADER's own convention for its compound score.
POSITIVE_AT: Final = 0.05
NEGATIVE_AT: Final = -0.05


def label_for(score: float) -> Label:
    if score >= POSITIVE_AT:
        return "positive"
    if score <= NEGATIVE_AT:
        return "negative"
    return "neutral"


class SentimentScorer(Protocol):
    """Blocking CPU work, on a speech worker: a label and a score in [-1, 1] per text."""

    def judge(self, texts: Sequence[str]) -> list[tuple[Label, float]]: ...


class SentimentModelMissing(RuntimeError):
    """The configured sentiment model file is missing or is not a sentiment model."""


class VaderScorer:
    """VADER's compound score in [-1, 1]. Loading reads its lexicon: build it on a worker."""

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()

    def score(self, text: str) -> float:
        if not text.strip():
            return 0.0
        return float(self._analyzer.polarity_scores(text)["compound"])

    def judge(self, texts: Sequence[str]) -> list[tuple[Label, float]]:
        scores = [self.score(t) for t in texts]
        return [(label_for(s), s) for s in scores]


class TrainedSentiment:
    """A model from `loopline train sentiment` (labels: positive, neutral, negative or a subset)
    with the MiniLM embedder. Its score is P(positive) − P(negative); its label the likeliest."""

    def __init__(self, path: str | Path) -> None:
        from loopline.text.classifier import SoftmaxTextModel
        from loopline.text.embedder import MiniLmEmbedder

        if not Path(path).is_file():
            raise SentimentModelMissing(
                f"sentiment model {path} not found: train one with `loopline train sentiment"
                f" --data FILE.jsonl --out {path}` or set media.sentiment: vader"
            )
        self.model = SoftmaxTextModel.load(path)
        unknown = set(self.model.labels) - set(LABELS)
        if unknown or "positive" not in self.model.labels or "negative" not in self.model.labels:
            raise SentimentModelMissing(
                f"{path} is not a sentiment model: its labels must be positive, negative and"
                " optionally neutral"
            )
        self._embedder = MiniLmEmbedder()
        self._pos = self.model.labels.index("positive")
        self._neg = self.model.labels.index("negative")

    def judge(self, texts: Sequence[str]) -> list[tuple[Label, float]]:
        if not texts:
            return []
        probs = self.model.probabilities(self._embedder.embed(list(texts)))
        out: list[tuple[Label, float]] = []
        for row, text in zip(probs, texts, strict=True):
            if not text.strip():
                out.append(("neutral", 0.0))
                continue
            label: Label = self.model.labels[int(row.argmax())]  # type: ignore[assignment]
            out.append((label, float(row[self._pos] - row[self._neg])))
        return out


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
