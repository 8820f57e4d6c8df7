"""The trainable intent classifier: the shared softmax text model (`loopline.text.classifier`,
media's sentiment uses it too) under the names the journey room has always used, and the
node's wrapper. Everything here blocks: code on the event loop calls it in a worker.
"""

from __future__ import annotations

from pathlib import Path

from loopline.text.classifier import SCALE as SCALE
from loopline.text.classifier import SoftmaxTextModel
from loopline.text.classifier import evaluate as evaluate
from loopline.text.classifier import evaluate_file as evaluate_file
from loopline.text.classifier import fit_softmax as fit_softmax
from loopline.text.classifier import load_examples as load_examples
from loopline.text.classifier import metrics as metrics
from loopline.text.classifier import train as train
from loopline.text.classifier import train_and_save as train_and_save
from loopline.text.embedder import MiniLmEmbedder

IntentModel = SoftmaxTextModel


class TextIntentClassifier:
    """A trained model with its embedder, for the node: `classify` blocks (run it in a
    worker thread)."""

    def __init__(self, model_path: str | Path) -> None:
        self.model = IntentModel.load(model_path)
        self.embedder = MiniLmEmbedder()

    def classify(self, text: str) -> tuple[str, float]:
        return self.model.predict_vectors(self.embedder.embed([text]))[0]
