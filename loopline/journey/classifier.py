"""The trainable intent classifier: `loopline train intent` / `eval intent` and the node's
wrapper. The model is `intent_model.FusedIntentModel` (MiniLM views and TF-IDF n-grams, one
vote); the file helpers and metrics are the shared ones of `loopline.text.classifier`.
Everything here blocks: code on the event loop calls it in a worker.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loopline.journey.intent_model import EMBED_C, TEXT_C, FusedIntentModel, fit
from loopline.text.classifier import load_examples as load_examples
from loopline.text.classifier import metrics as metrics
from loopline.text.embedder import MiniLmEmbedder
from loopline.text.finetune import Prefix, TuneSettings, views_of

IntentModel = FusedIntentModel


def train_and_save(
    texts: Sequence[str],
    labels: Sequence[str],
    out: str | Path,
    *,
    embed_c: float | None = None,
    text_c: float | None = None,
    tune: TuneSettings | None = None,
    log: Any = sys.stderr,
) -> dict[str, Any]:
    """Fit and write the model. Without `embed_c`/`text_c`, cross-validation on these
    examples chooses them (and the vote's weight) among `EMBED_C` and `TEXT_C`; then the
    encoder's top layers are fine-tuned (`tune`; `epochs=0`: the encoder stays frozen).
    Progress goes to `log`."""
    tune = tune or TuneSettings()
    embedder = MiniLmEmbedder()
    started = time.perf_counter()

    def say(event: dict[str, float]) -> None:
        print(f"fine-tuning: epoch {event['epoch']:.0f} of {event['of']:.0f}, "
              f"{time.perf_counter() - started:.0f} s", file=log, flush=True)  # fmt: skip

    hidden, views = embedder.prefix(texts, tune.layers)
    print(f"encoded {len(texts)} examples, {time.perf_counter() - started:.0f} s", file=log)
    model = fit(
        texts,
        labels,
        views,
        embed_c=EMBED_C if embed_c is None else (embed_c,),
        text_c=TEXT_C if text_c is None else (text_c,),
        hidden=hidden if tune.epochs > 0 else None,
        base_layers=[
            embedder.block(embedder.layers() - tune.layers + i) for i in range(tune.layers)
        ],
        tune=tune,
        progress=say,
    )
    model.save(out)
    tuned_views = (
        views_of(model.tuned_layers, Prefix(hidden, views), len(model.tuned_layers))
        if model.tuned_layers
        else views
    )
    train = metrics(labels, [label for label, _ in model.predict(tuned_views, texts)])
    return {"model": str(out), "labels": len(model.labels), "examples": len(texts),
            "train_accuracy": train["accuracy"], "settings": model.settings}  # fmt: skip


def evaluate(
    model: FusedIntentModel, texts: Sequence[str], labels: Sequence[str], embedder: MiniLmEmbedder
) -> dict[str, Any]:
    views = model.encoder(embedder).views(texts)
    predicted = [label for label, _ in model.predict(views, texts)]
    return metrics(labels, predicted)


def evaluate_file(model_path: str | Path, data: str | Path) -> dict[str, Any]:
    texts, labels = load_examples(data)
    return evaluate(FusedIntentModel.load(model_path), texts, labels, MiniLmEmbedder())


class TextIntentClassifier:
    """A trained model with its embedder, for the node: `classify` blocks (run it in a
    worker thread)."""

    def __init__(self, model_path: str | Path) -> None:
        self.model = FusedIntentModel.load(model_path)
        self.embedder = self.model.encoder()

    def classify(self, text: str) -> tuple[str, float]:
        return self.model.predict(self.embedder.views([text]), [text])[0]
