"""The trainable intent classifier: `loopline train intent` / `eval intent` and the node's
wrapper. The model is `intent_model.FusedIntentModel` (MiniLM views and TF-IDF n-grams, one
vote); the file helpers and metrics are the shared ones of `loopline.text.classifier`.
Everything here blocks: code on the event loop calls it in a worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loopline.journey.intent_model import EMBED_C, TEXT_C, FusedIntentModel, fit
from loopline.text.classifier import load_examples as load_examples
from loopline.text.classifier import metrics as metrics
from loopline.text.embedder import MiniLmEmbedder

IntentModel = FusedIntentModel


def train_and_save(
    texts: Sequence[str],
    labels: Sequence[str],
    out: str | Path,
    *,
    embed_c: float | None = None,
    text_c: float | None = None,
) -> dict[str, Any]:
    """Fit and write the model. Without `embed_c`/`text_c`, cross-validation on these
    examples chooses them (and the vote's weight) among `EMBED_C` and `TEXT_C`."""
    views = MiniLmEmbedder().views(texts)
    model = fit(
        texts,
        labels,
        views,
        embed_c=EMBED_C if embed_c is None else (embed_c,),
        text_c=TEXT_C if text_c is None else (text_c,),
    )
    model.save(out)
    train = metrics(labels, [label for label, _ in model.predict(views, texts)])
    return {"model": str(out), "labels": len(model.labels), "examples": len(texts),
            "train_accuracy": train["accuracy"], "settings": model.settings}  # fmt: skip


def evaluate(
    model: FusedIntentModel, texts: Sequence[str], labels: Sequence[str], embedder: MiniLmEmbedder
) -> dict[str, Any]:
    predicted = [label for label, _ in model.predict(embedder.views(texts), texts)]
    return metrics(labels, predicted)


def evaluate_file(model_path: str | Path, data: str | Path) -> dict[str, Any]:
    texts, labels = load_examples(data)
    return evaluate(FusedIntentModel.load(model_path), texts, labels, MiniLmEmbedder())


class TextIntentClassifier:
    """A trained model with its embedder, for the node: `classify` blocks (run it in a
    worker thread)."""

    def __init__(self, model_path: str | Path) -> None:
        self.model = FusedIntentModel.load(model_path)
        self.embedder = MiniLmEmbedder()

    def classify(self, text: str) -> tuple[str, float]:
        return self.model.predict(self.embedder.views([text]), [text])[0]
