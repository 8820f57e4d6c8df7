"""A small transcript classifier a team trains on its own calls: TF-IDF over words and word
pairs, then multinomial logistic regression, in numpy. CPU work: callers run `predict` and
`train` in a worker thread, never on the event loop.

50 to 200 labelled calls per outcome is the scale it is made for; the model file is JSON
(vocabulary, idf, weights), a few hundred kilobytes, readable and diffable.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from loopline.attribution.outcomes import Prediction

_TOKEN = re.compile(r"[a-z0-9']+")
FORMAT = "loopline-outcome-tfidf-logreg/1"

Floats = npt.NDArray[np.float64]


def tokens(text: str) -> list[str]:
    words = _TOKEN.findall(text.lower().replace("\u2019", "'"))
    return words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]


@dataclass
class OutcomeModel:
    labels: list[str]
    vocabulary: dict[str, int]
    idf: Floats
    weights: Floats  # (features, labels)
    bias: Floats  # (labels,)

    # -- use ---------------------------------------------------------------------------------
    def vector(self, text: str) -> tuple[npt.NDArray[np.int64], Floats]:
        """The document's TF-IDF vector, L2-normalised, as (feature indices, values)."""
        counts = Counter(t for t in tokens(text) if t in self.vocabulary)
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        index = np.fromiter((self.vocabulary[t] for t in counts), dtype=np.int64)
        tf = np.fromiter((1.0 + math.log(c) for c in counts.values()), dtype=np.float64)
        values = tf * self.idf[index]
        norm = float(np.linalg.norm(values))
        return index, values / norm if norm else values

    def predict(self, text: str) -> Prediction:
        index, values = self.vector(text)
        logits = self.bias + values @ self.weights[index]
        probs = _softmax(logits[None, :])[0]
        order = np.argsort(-probs)
        ranked = tuple((self.labels[i], round(float(probs[i]), 4)) for i in order)
        return Prediction(ranked[0][0], ranked[0][1], ranked)

    # -- files -------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        data = {
            "format": FORMAT,
            "labels": self.labels,
            "vocabulary": sorted(self.vocabulary, key=self.vocabulary.__getitem__),
            "idf": [round(float(x), 6) for x in self.idf],
            "weights": [[round(float(x), 6) for x in row] for row in self.weights],
            "bias": [round(float(x), 6) for x in self.bias],
        }
        Path(path).write_text(json.dumps(data, separators=(",", ":")))

    @classmethod
    def load(cls, path: str | Path) -> OutcomeModel:
        data = json.loads(Path(path).read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"{path}: not an outcome model ({data.get('format')!r})")
        vocabulary = {term: i for i, term in enumerate(data["vocabulary"])}
        return cls(
            labels=list(data["labels"]),
            vocabulary=vocabulary,
            idf=np.asarray(data["idf"], dtype=np.float64),
            weights=np.asarray(data["weights"], dtype=np.float64).reshape(len(vocabulary), -1),
            bias=np.asarray(data["bias"], dtype=np.float64),
        )


def _softmax(logits: Floats) -> Floats:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    result: Floats = exp / exp.sum(axis=1, keepdims=True)
    return result


def train(
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    max_features: int = 5000,
    min_df: int = 2,
    l2: float = 1e-3,
    epochs: int = 300,
    learning_rate: float = 2.0,
) -> OutcomeModel:
    """Fit TF-IDF and logistic regression by full-batch gradient descent (deterministic)."""
    if len(texts) != len(labels) or not texts:
        raise ValueError("need as many labels as texts, and at least one of each")
    names = sorted(set(labels))
    if len(names) < 2:
        raise ValueError("need at least two different labels")
    docs = [Counter(tokens(t)) for t in texts]
    df: Counter[str] = Counter()
    for doc in docs:
        df.update(doc.keys())
    kept = [term for term, n in df.items() if n >= min(min_df, len(texts))]
    kept.sort(key=lambda term: (-df[term], term))
    vocabulary = {term: i for i, term in enumerate(kept[:max_features])}
    n_docs = len(texts)
    idf = np.ones(len(vocabulary))
    for term, i in vocabulary.items():
        idf[i] = math.log((1 + n_docs) / (1 + df[term])) + 1.0
    model = OutcomeModel(
        names, vocabulary, idf, np.zeros((len(vocabulary), len(names))), np.zeros(len(names))
    )
    x = np.zeros((n_docs, len(vocabulary)))
    for row, text in enumerate(texts):
        index, values = model.vector(text)
        x[row, index] = values
    y = np.zeros((n_docs, len(names)))
    y[np.arange(n_docs), [names.index(label) for label in labels]] = 1.0
    w = np.zeros((len(vocabulary), len(names)))
    b = np.zeros(len(names))
    for _ in range(epochs):
        probs = _softmax(x @ w + b)
        error = (probs - y) / n_docs
        w -= learning_rate * (x.T @ error + l2 * w)
        b -= learning_rate * error.sum(axis=0)
    model.weights, model.bias = w, b
    return model


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    macro_f1: float
    per_label: dict[str, dict[str, float]]
    confusion: dict[str, dict[str, int]]
    n: int


def evaluate(model: OutcomeModel, texts: Sequence[str], labels: Sequence[str]) -> Evaluation:
    predicted = [model.predict(t).label for t in texts]
    names = sorted(set(labels) | set(predicted))
    confusion = {a: dict.fromkeys(names, 0) for a in names}
    for truth, guess in zip(labels, predicted, strict=True):
        confusion[truth][guess] += 1
    per_label: dict[str, dict[str, float]] = {}
    for name in names:
        tp = confusion[name][name]
        fp = sum(confusion[o][name] for o in names if o != name)
        fn = sum(confusion[name][o] for o in names if o != name)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[name] = {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn}
    in_truth = [n for n in names if per_label[n]["support"]]
    correct = sum(1 for t, p in zip(labels, predicted, strict=True) if t == p)
    return Evaluation(
        accuracy=correct / len(labels) if labels else 0.0,
        macro_f1=sum(per_label[n]["f1"] for n in in_truth) / len(in_truth) if in_truth else 0.0,
        per_label=per_label,
        confusion=confusion,
        n=len(labels),
    )
