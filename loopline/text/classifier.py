"""A trainable text classifier: frozen MiniLM sentence embeddings and a multinomial logistic
regression trained here in numpy. Journey intents and media sentiment both use it.

`loopline train intent|sentiment --data FILE.jsonl --out MODEL.npz` and `loopline eval ...`;
lines are `{"text": ..., "label": ...}`. Fifty to two hundred examples per label are enough:
the embeddings carry the language, the regression only learns where each label sits.
Everything here is CPU-bound and blocking: code on the event loop calls it in a worker.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from loopline.text.embedder import MiniLmEmbedder

Array = npt.NDArray[np.float32]


def load_examples(path: str | Path) -> tuple[list[str], list[str]]:
    texts: list[str] = []
    labels: list[str] = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                text, label = row["text"], row["label"]
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f'{path}:{n}: expected {{"text": ..., "label": ...}}') from exc
            if not isinstance(text, str) or not isinstance(label, str):
                raise ValueError(f"{path}:{n}: text and label must be strings")
            texts.append(text)
            labels.append(label)
    if not texts:
        raise ValueError(f"{path}: no examples")
    return texts, labels


def fit_softmax(
    x: Array, y: npt.NDArray[np.int64], classes: int, *, c: float = 10.0, epochs: int = 400
) -> tuple[Array, Array]:
    """Multinomial logistic regression, L2 penalty 1/(2c) |W|^2 per example, full-batch Adam."""
    n, d = x.shape
    w = np.zeros((d, classes), dtype=np.float32)
    b = np.zeros(classes, dtype=np.float32)
    onehot = np.zeros((n, classes), dtype=np.float32)
    onehot[np.arange(n), y] = 1.0
    lam = 1.0 / (c * n)
    m_w, v_w = np.zeros_like(w), np.zeros_like(w)
    m_b, v_b = np.zeros_like(b), np.zeros_like(b)
    lr, beta1, beta2, eps = 0.05, 0.9, 0.999, 1e-8
    for step in range(1, epochs + 1):
        logits = x @ w + b
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / n
        gw = x.T @ g + lam * w
        gb = g.sum(0)
        m_w = beta1 * m_w + (1 - beta1) * gw
        v_w = beta2 * v_w + (1 - beta2) * gw * gw
        m_b = beta1 * m_b + (1 - beta1) * gb
        v_b = beta2 * v_b + (1 - beta2) * gb * gb
        corr1, corr2 = 1 - beta1**step, 1 - beta2**step
        w -= lr * (m_w / corr1) / (np.sqrt(v_w / corr2) + eps)
        b -= lr * (m_b / corr1) / (np.sqrt(v_b / corr2) + eps)
    return w, b


@dataclass
class SoftmaxTextModel:
    labels: list[str]
    weights: Array
    bias: Array
    scale: float = 1.0  # embeddings are unit length; scaling them speeds the regression up

    def probabilities(self, vectors: Array) -> Array:
        logits = (vectors * self.scale) @ self.weights + self.bias
        logits -= logits.max(1, keepdims=True)
        p: Array = np.exp(logits)
        p /= p.sum(1, keepdims=True)
        return p

    def predict_vectors(self, vectors: Array) -> list[tuple[str, float]]:
        p = self.probabilities(vectors)
        best = p.argmax(1)
        return [(self.labels[i], float(p[row, i])) for row, i in enumerate(best)]

    def save(self, path: str | Path) -> None:
        with open(path, "wb") as fh:
            np.savez(
                fh,
                weights=self.weights,
                bias=self.bias,
                labels=np.array(self.labels),
                scale=np.array(self.scale),
                embedder=np.array("all-MiniLM-L6-v2"),
            )

    @classmethod
    def load(cls, path: str | Path) -> SoftmaxTextModel:
        with np.load(path, allow_pickle=False) as data:
            return cls(
                labels=[str(s) for s in data["labels"]],
                weights=data["weights"].astype(np.float32),
                bias=data["bias"].astype(np.float32),
                scale=float(data["scale"]),
            )


SCALE = 8.0


def train(
    texts: Sequence[str],
    labels: Sequence[str],
    embedder: MiniLmEmbedder,
    *,
    c: float = 10.0,
    vectors: Array | None = None,
) -> SoftmaxTextModel:
    """`vectors`: the texts' embeddings when the caller already has them."""
    names = sorted(set(labels))
    if len(names) < 2:
        raise ValueError("training needs at least two labels")
    index = {name: i for i, name in enumerate(names)}
    y = np.array([index[label] for label in labels], dtype=np.int64)
    from threadpoolctl import threadpool_limits

    x = (embedder.embed(texts) if vectors is None else vectors) * SCALE
    with threadpool_limits(limits=1, user_api="blas"):  # small matrices: threads only cost
        w, b = fit_softmax(x, y, len(names), c=c)
    return SoftmaxTextModel(names, w, b, SCALE)


def metrics(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    labels = sorted(set(truth) | set(predicted))
    per: dict[str, dict[str, float]] = {}
    for label in labels:
        tp = sum(1 for t, p in zip(truth, predicted, strict=True) if t == p == label)
        fp = sum(1 for t, p in zip(truth, predicted, strict=True) if p == label and t != label)
        fn = sum(1 for t, p in zip(truth, predicted, strict=True) if t == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per[label] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support": tp + fn,
        }
    scored = [label for label in labels if per[label]["support"] > 0]
    correct = sum(1 for t, p in zip(truth, predicted, strict=True) if t == p)
    return {
        "n": len(truth),
        "accuracy": round(correct / len(truth), 4) if truth else 0.0,
        "macro_f1": round(sum(per[label]["f1"] for label in scored) / len(scored), 4)
        if scored
        else 0.0,
        "per_label": per,
    }


def evaluate(
    model: SoftmaxTextModel, texts: Sequence[str], labels: Sequence[str], embedder: MiniLmEmbedder
) -> dict[str, Any]:
    predicted = [label for label, _ in model.predict_vectors(embedder.embed(texts))]
    return metrics(labels, predicted)


def train_and_save(
    texts: Sequence[str], labels: Sequence[str], out: str | Path, *, c: float = 10.0
) -> dict[str, Any]:
    embedder = MiniLmEmbedder()
    vectors = embedder.embed(texts)  # once: the fit and the training accuracy both read them
    model = train(texts, labels, embedder, c=c, vectors=vectors)
    model.save(out)
    fit = metrics(labels, [label for label, _ in model.predict_vectors(vectors)])
    return {"model": str(out), "labels": len(model.labels), "examples": len(texts),
            "train_accuracy": fit["accuracy"]}  # fmt: skip


def evaluate_file(model_path: str | Path, data: str | Path) -> dict[str, Any]:
    texts, labels = load_examples(data)
    return evaluate(SoftmaxTextModel.load(model_path), texts, labels, MiniLmEmbedder())
