"""The intent text model: frozen MiniLM views and TF-IDF n-grams, two linear models, one vote.

Two views of an utterance that fail differently. The sentence encoder knows that "my card
hasn't come" and "still waiting on the card" mean the same; word and character n-grams catch
the exact product words ("top-up", "SEPA", "PIN") that embeddings blur. Each gets its own
multinomial logistic regression; their log-probabilities are mixed with a
weight `alpha`. Both regularisation strengths and `alpha` are chosen by k-fold cross-validation
on the training data only (`choose`). On banking77 this beats either view alone by 1 to 4
points (docs/journey.md, bench/bench_journey_intent.py).

Then the encoder learns: MiniLM's top layer and the embeddings' head are fine-tuned together
on the training texts (`loopline.text.finetune`, a numpy backward pass; the lower layers are
run once per text and cached), and the tuned layer is saved in the model file and used by
`encoder()` at prediction. Its settings (`TuneSettings`) were chosen on a slice of banking77's
training part, never on the bench's held-out part.

Training uses scikit-learn; prediction needs only numpy, the vocabularies and scikit-learn's
analyzers, and the model file is an `.npz` read with `allow_pickle=False`. Blocking, CPU-bound.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from loopline.text import finetune
from loopline.text.embedder import MiniLmEmbedder

Array = npt.NDArray[np.float32]
FORMAT = "loopline-intent-fused-2"
FORMATS = ("loopline-intent-fused-1", FORMAT)  # 1: frozen encoder, no tuned layers

# The n-gram families: words and bigrams, and characters within word boundaries.
WORD = {"analyzer": "word", "ngram_range": (1, 2), "min_df": 1}
CHAR = {"analyzer": "char_wb", "ngram_range": (2, 5), "min_df": 2}

EMBED_C = (1.0, 3.0, 10.0, 30.0)
TEXT_C = (10.0, 50.0)
ALPHAS = (0.3, 0.4, 0.5, 0.6, 0.7)


def _analyzer(spec: dict[str, Any]) -> Callable[[str], list[str]]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer=spec["analyzer"], ngram_range=spec["ngram_range"])
    analyze: Callable[[str], list[str]] = vectorizer.build_analyzer()
    return analyze


@dataclass
class NgramBlock:
    """One TF-IDF family: sublinear term frequency, idf weights, unit length (as fitted)."""

    spec: dict[str, Any]
    vocabulary: dict[str, int]
    idf: Array
    _analyze: Callable[[str], list[str]] | None = field(default=None, repr=False)

    def features(self, text: str) -> tuple[npt.NDArray[np.int64], Array]:
        """The text's non-zero columns and values, as `TfidfVectorizer.transform` gives them."""
        if self._analyze is None:
            self._analyze = _analyzer(self.spec)
        counts: dict[int, int] = {}
        for gram in self._analyze(text):
            column = self.vocabulary.get(gram)
            if column is not None:
                counts[column] = counts.get(column, 0) + 1
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        columns = np.fromiter(counts, dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
        values = (1.0 + np.log(tf)) * self.idf[columns]
        values /= max(float(np.linalg.norm(values)), 1e-12)
        return columns, values.astype(np.float32)


@dataclass
class FusedIntentModel:
    labels: list[str]
    embed_weights: Array  # (views, labels)
    embed_bias: Array
    blocks: list[NgramBlock]
    text_weights: Array  # (all n-gram columns, labels)
    text_bias: Array
    alpha: float  # the embeddings' share of the vote
    settings: dict[str, float] = field(default_factory=dict)
    # The encoder's fine-tuned top layers (12 arrays each, `MiniLmEmbedder.block`'s order);
    # empty: the encoder is used as shipped.
    tuned_layers: list[list[Array]] = field(default_factory=list)

    def encoder(self, base: MiniLmEmbedder | None = None) -> MiniLmEmbedder:
        """The embedder whose `views` this model reads: `base` (or a new one) with the
        fine-tuned top layers in place."""
        base = base or MiniLmEmbedder()
        return base.with_top_layers(self.tuned_layers) if self.tuned_layers else base

    def text_logits(self, texts: Sequence[str]) -> Array:
        out = np.tile(self.text_bias, (len(texts), 1)).astype(np.float32)
        offset = 0
        for block in self.blocks:
            for row, text in enumerate(texts):
                columns, values = block.features(text)
                if len(columns):
                    out[row] += values @ self.text_weights[offset + columns]
            offset += len(block.vocabulary)
        return out

    def probabilities(self, views: Array, texts: Sequence[str]) -> Array:
        fused = self.alpha * _log_softmax(views @ self.embed_weights + self.embed_bias) + (
            1 - self.alpha
        ) * _log_softmax(self.text_logits(texts))
        return np.exp(_log_softmax(fused)).astype(np.float32)

    def predict(self, views: Array, texts: Sequence[str]) -> list[tuple[str, float]]:
        p = self.probabilities(views, texts)
        best = p.argmax(1)
        return [(self.labels[i], float(p[row, i])) for row, i in enumerate(best)]

    def save(self, path: str | Path) -> None:
        arrays: dict[str, Any] = {
            "format": np.array(FORMAT),
            "labels": np.array(self.labels),
            "embed_weights": self.embed_weights,
            "embed_bias": self.embed_bias,
            "text_weights": self.text_weights,
            "text_bias": self.text_bias,
            "alpha": np.array(self.alpha),
            "settings": np.array(sorted(f"{k}={v}" for k, v in self.settings.items())),
        }
        for i, layer in enumerate(self.tuned_layers):
            for j, weight in enumerate(layer):
                arrays[f"tuned{i}_{j}"] = weight
        for i, block in enumerate(self.blocks):
            grams = sorted(block.vocabulary, key=block.vocabulary.__getitem__)
            arrays[f"block{i}_grams"] = np.array(grams)
            arrays[f"block{i}_idf"] = block.idf
            arrays[f"block{i}_spec"] = np.array(
                [block.spec["analyzer"], *map(str, block.spec["ngram_range"])]
            )
        with open(path, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> FusedIntentModel:
        with np.load(path, allow_pickle=False) as data:
            if "format" not in data.files or str(data["format"]) not in FORMATS:
                raise ValueError(f"{Path(path).name}: not an intent model (train it again)")
            blocks = []
            i = 0
            while f"block{i}_grams" in data.files:
                analyzer, low, high = (str(s) for s in data[f"block{i}_spec"])
                grams = [str(g) for g in data[f"block{i}_grams"]]
                blocks.append(
                    NgramBlock(
                        {"analyzer": analyzer, "ngram_range": (int(low), int(high))},
                        {g: n for n, g in enumerate(grams)},
                        data[f"block{i}_idf"].astype(np.float32),
                    )
                )
                i += 1
            settings = {}
            for item in data["settings"]:
                key, _, value = str(item).partition("=")
                settings[key] = float(value)
            tuned: list[list[Array]] = []
            while f"tuned{len(tuned)}_0" in data.files:
                i = len(tuned)
                tuned.append([data[f"tuned{i}_{j}"].astype(np.float32) for j in range(12)])
            return cls(
                labels=[str(s) for s in data["labels"]],
                embed_weights=data["embed_weights"].astype(np.float32),
                embed_bias=data["embed_bias"].astype(np.float32),
                blocks=blocks,
                text_weights=data["text_weights"].astype(np.float32),
                text_bias=data["text_bias"].astype(np.float32),
                alpha=float(data["alpha"]),
                settings=settings,
                tuned_layers=tuned,
            )


def _log_softmax(logits: Array) -> Array:
    shifted = logits - logits.max(1, keepdims=True)
    out: Array = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    return out


# -- training (scikit-learn) ---------------------------------------------------------------


def _fit(x: Any, y: npt.NDArray[np.int64], c: float, warm: Any = None) -> Any:
    """Multinomial logistic regression; `warm`, a model fitted on the same data with a smaller
    C, starts the solver near the answer (the grid is fitted in C order). Not class-weighted:
    on banking77 at 100 per label, balancing cost 0.25 points of accuracy; a looser tolerance
    (1e-3) cost 0.7 points."""
    from sklearn.linear_model import LogisticRegression

    model = warm or LogisticRegression(max_iter=3000, tol=1e-4, warm_start=True)
    return model.set_params(C=c).fit(x, y)


def _ngrams(texts: Sequence[str]) -> tuple[list[Any], Any]:
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizers = [
        TfidfVectorizer(sublinear_tf=True, dtype=np.float32, **spec) for spec in (WORD, CHAR)
    ]
    matrix = hstack([v.fit_transform(texts) for v in vectorizers]).tocsr()
    return vectorizers, matrix


def _transform(vectorizers: list[Any], texts: Sequence[str]) -> Any:
    from scipy.sparse import hstack

    return hstack([v.transform(texts) for v in vectorizers]).tocsr()


def _log_proba(model: Any, x: Any, classes: int) -> Array:
    """Log-probabilities over every class, also those missing from a fold's training part."""
    out = np.full((x.shape[0], classes), -30.0, dtype=np.float32)
    out[:, model.classes_] = np.log(np.maximum(model.predict_proba(x), 1e-12))
    return out


def _folds(y: npt.NDArray[np.int64], k: int, seed: int) -> list[npt.NDArray[np.int64]]:
    """Stratified folds: each label's examples dealt round-robin after a seeded shuffle."""
    rng = np.random.default_rng(seed)
    fold_of = np.zeros(len(y), dtype=np.int64)
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        rng.shuffle(members)
        fold_of[members] = np.arange(len(members)) % k
    return [np.flatnonzero(fold_of == f) for f in range(k)]


def choose(
    texts: Sequence[str],
    y: npt.NDArray[np.int64],
    views: Array,
    classes: int,
    *,
    folds: int = 3,
    seed: int = 7,
    embed_c: Sequence[float] = EMBED_C,
    text_c: Sequence[float] = TEXT_C,
    alphas: Sequence[float] = ALPHAS,
) -> dict[str, float]:
    """`embed_c`, `text_c` and `alpha` with the best cross-validated accuracy on this data."""
    texts_arr = np.array(texts, dtype=object)
    k = max(2, min(folds, int(np.bincount(y).min())))
    out_of_fold_e = {c: np.zeros((len(y), classes), np.float32) for c in embed_c}
    out_of_fold_t = {c: np.zeros((len(y), classes), np.float32) for c in text_c}
    for held in _folds(y, k, seed):
        train = np.setdiff1d(np.arange(len(y)), held)
        vectorizers, x_text = _ngrams(list(texts_arr[train]))
        held_text = _transform(vectorizers, list(texts_arr[held]))
        model = None
        for c in sorted(embed_c):
            model = _fit(views[train], y[train], c, model)
            out_of_fold_e[c][held] = _log_proba(model, views[held], classes)
        model = None
        for c in sorted(text_c):
            model = _fit(x_text, y[train], c, model)
            out_of_fold_t[c][held] = _log_proba(model, held_text, classes)
    best: tuple[float, float, float, float] | None = None
    for ce, ct, alpha in itertools.product(embed_c, text_c, alphas):
        fused = alpha * out_of_fold_e[ce] + (1 - alpha) * out_of_fold_t[ct]
        accuracy = float((fused.argmax(1) == y).mean())
        # Ties go to the first (most regularised, embeddings-leaning) setting.
        if best is None or accuracy > best[0] + 1e-9:
            best = (accuracy, ce, ct, alpha)
    assert best is not None
    return {"cv_accuracy": round(best[0], 4), "embed_c": best[1], "text_c": best[2],
            "alpha": best[3], "folds": float(k)}  # fmt: skip


def fit(
    texts: Sequence[str],
    labels: Sequence[str],
    views: Array,
    *,
    settings: dict[str, float] | None = None,
    embed_c: Sequence[float] = EMBED_C,
    text_c: Sequence[float] = TEXT_C,
    hidden: Sequence[Array] | None = None,
    base_layers: Sequence[list[Array]] = (),
    tune: finetune.TuneSettings | None = None,
    progress: Callable[[dict[str, float]], None] | None = None,
) -> FusedIntentModel:
    """Train on `texts` (with their `views` from `MiniLmEmbedder.views`). Without `settings`,
    cross-validation picks them among `embed_c`, `text_c` and `ALPHAS`.

    With `hidden` (the states entering the top layers, `MiniLmEmbedder.prefix`) and
    `base_layers` (those layers' weights), the top layers and the embeddings' head are then
    fine-tuned together (`finetune.tune`, from the cross-validated regression as the head), and
    the model carries the tuned layers; `progress` hears of each epoch."""
    names = sorted(set(labels))
    if len(names) < 2:
        raise ValueError("training needs at least two labels")
    index = {name: i for i, name in enumerate(names)}
    y = np.array([index[label] for label in labels], dtype=np.int64)
    if settings is None:
        settings = choose(texts, y, views, len(names), embed_c=embed_c, text_c=text_c)
    embed = _fit(views, y, settings["embed_c"])
    embed_weights = np.ascontiguousarray(embed.coef_.T, dtype=np.float32)
    embed_bias = embed.intercept_.astype(np.float32)
    tuned_layers: list[list[Array]] = []
    if hidden is not None and base_layers:
        tune = tune or finetune.TuneSettings()

        def on_epoch(epoch: int, state: finetune.Tuned) -> dict[str, float]:
            if progress is not None:
                progress({"epoch": float(epoch), "of": float(tune.epochs)})
            return {}

        with threadpool_limits(limits=1, user_api="blas"):
            tuned = finetune.tune(
                base_layers,
                finetune.Prefix(list(hidden), views),
                y,
                len(names),
                tune,
                head=(embed_weights, embed_bias) if tune.start_head else None,
                on_epoch=on_epoch,
            )
        embed_weights, embed_bias = tuned.weights, tuned.bias
        tuned_layers = [[np.asarray(a, dtype=np.float32) for a in b] for b in tuned.blocks]
        settings = {**settings, "tuned_layers": float(len(tuned_layers)),
                    "epochs": float(tune.epochs), "lr": tune.lr}  # fmt: skip
    vectorizers, x_text = _ngrams(texts)
    text = _fit(x_text, y, settings["text_c"])
    blocks = [
        NgramBlock(
            dict(spec),
            {str(g): int(n) for g, n in v.vocabulary_.items()},
            v.idf_.astype(np.float32),
        )
        for spec, v in zip((WORD, CHAR), vectorizers, strict=True)
    ]
    return FusedIntentModel(
        labels=names,
        embed_weights=embed_weights,
        embed_bias=embed_bias,
        blocks=blocks,
        text_weights=np.ascontiguousarray(text.coef_.T, dtype=np.float32),
        text_bias=text.intercept_.astype(np.float32),
        alpha=settings["alpha"],
        settings=settings,
        tuned_layers=tuned_layers,
    )
