"""Fine-tuning MiniLM's top transformer layers with a softmax head, in numpy.

The lower layers stay frozen, so their output is computed once per training text (`Prefix`)
and an epoch runs only the top `k` layers forward and back. The backward pass is written out
by hand (post-layer-norm BERT block: fused query/key/value, softmax attention, output
projection, residual + LayerNorm, GELU feed-forward, residual + LayerNorm) and checked against
finite differences in tests/text/test_finetune.py. The pooled views are those of
`MiniLmEmbedder.view_names`: L2-normalised means of the last four layers, the last layer's
[CLS] and its max over tokens; the views of frozen layers come from the prefix.

Everything here is CPU-bound and blocking, and works in float32 (float64 for the gradient
check: the functions keep their inputs' dtype).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from loopline.text.embedder import _erf, _gelu

Array = npt.NDArray[Any]  # float32 in use, float64 in the gradient check
Index = npt.NDArray[np.int64]
Block = list[Array]  # the 12 arrays of `MiniLmEmbedder._block`, in its order
HEADS = 12
LN_EPS = 1e-12


# -- one layer, forward and back ----------------------------------------------------------------


@dataclass
class _LnCache:
    xhat: Array
    rstd: Array
    gain: Array


def _ln_forward(x: Array, gain: Array, bias: Array) -> tuple[Array, _LnCache]:
    mean = x.mean(-1, keepdims=True)
    centred = x - mean
    rstd = 1.0 / np.sqrt((centred * centred).mean(-1, keepdims=True) + LN_EPS)
    xhat = centred * rstd
    return xhat * gain + bias, _LnCache(xhat, rstd, gain)


def _ln_backward(dy: Array, c: _LnCache) -> tuple[Array, Array, Array]:
    dgain = (dy * c.xhat).sum(axis=(0, 1))
    dbias = dy.sum(axis=(0, 1))
    dxhat = dy * c.gain
    dx = c.rstd * (
        dxhat - dxhat.mean(-1, keepdims=True) - c.xhat * (dxhat * c.xhat).mean(-1, keepdims=True)
    )
    return dx, dgain, dbias


def _gelu_grad(x: Array) -> Array:
    """d/dx of x * Phi(x): Phi(x) + x * phi(x) (with the embedder's polynomial erf)."""
    z: Array = x * (1.0 / math.sqrt(2.0))
    cdf = 0.5 + 0.5 * _erf(z)
    pdf = np.exp(-0.5 * x * x) * (1.0 / math.sqrt(2.0 * math.pi))
    out: Array = cdf + x * pdf
    return out


@dataclass
class _LayerCache:
    x: Array
    q: Array
    k: Array
    v: Array
    p: Array
    ctx: Array
    ln1: _LnCache
    h1: Array
    f: Array
    g: Array
    ln2: _LnCache


def layer_forward(block: Block, x: Array, bias: Array | None) -> tuple[Array, _LayerCache]:
    """One encoder layer on `x` (n, t, d); `bias` (n, 1, 1, t) is -1e9 on padding, or None.
    The same arithmetic as `MiniLmEmbedder`'s forward pass, keeping what the backward needs."""
    wqkv, bqkv, wo, bo, g1, b1, wi, bi, wo2, bo2, g2, b2 = block
    n, t, d = x.shape
    hd = d // HEADS
    scale = x.dtype.type(1.0 / math.sqrt(hd))
    qkv = (x @ wqkv + bqkv).reshape(n, t, 3, HEADS, hd)
    q = qkv[:, :, 0].transpose(0, 2, 1, 3) * scale
    k = qkv[:, :, 1].transpose(0, 2, 1, 3)
    v = qkv[:, :, 2].transpose(0, 2, 1, 3)
    s = q @ k.transpose(0, 1, 3, 2)
    if bias is not None:
        s = s + bias
    s -= s.max(-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(-1, keepdims=True)
    ctx = (p @ v).transpose(0, 2, 1, 3).reshape(n, t, d)
    h1, ln1 = _ln_forward(ctx @ wo + bo + x, g1, b1)
    f = h1 @ wi + bi
    z: Array = f / math.sqrt(2.0)
    g = _gelu(f) if f.dtype == np.float32 else f * (0.5 + 0.5 * _erf(z))
    y, ln2 = _ln_forward(g @ wo2 + bo2 + h1, g2, b2)
    return y, _LayerCache(x, q, k, v, p, ctx, ln1, h1, f, g, ln2)


def _flat(a: Array) -> Array:
    return a.reshape(-1, a.shape[-1])


def layer_backward(block: Block, c: _LayerCache, dy: Array) -> tuple[Array, Block]:
    """The gradient of the loss with respect to the layer's input and to each of its 12
    weights, given the gradient `dy` with respect to its output."""
    wqkv, _, wo, _, _, _, wi, _, wo2, _, _, _ = block
    n, t, d = c.x.shape
    hd = d // HEADS
    scale = c.x.dtype.type(1.0 / math.sqrt(hd))
    do, dg2, db2 = _ln_backward(dy, c.ln2)
    dwo2 = _flat(c.g).T @ _flat(do)
    dbo2 = do.sum(axis=(0, 1))
    df = (do @ wo2.T) * _gelu_grad(c.f)
    dwi = _flat(c.h1).T @ _flat(df)
    dbi = df.sum(axis=(0, 1))
    dh1 = do + df @ wi.T
    da, dg1, db1 = _ln_backward(dh1, c.ln1)
    dwo = _flat(c.ctx).T @ _flat(da)
    dbo = da.sum(axis=(0, 1))
    dctx = (da @ wo.T).reshape(n, t, HEADS, hd).transpose(0, 2, 1, 3)
    dp = dctx @ c.v.transpose(0, 1, 3, 2)
    dv = c.p.transpose(0, 1, 3, 2) @ dctx
    ds = c.p * (dp - (dp * c.p).sum(-1, keepdims=True))
    dq = (ds @ c.k) * scale  # q in the cache is already scaled
    dk = ds.transpose(0, 1, 3, 2) @ c.q
    dqkv = np.stack([a.transpose(0, 2, 1, 3) for a in (dq, dk, dv)], axis=2).reshape(n, t, 3 * d)
    dwqkv = _flat(c.x).T @ _flat(dqkv)
    dbqkv = dqkv.sum(axis=(0, 1))
    dx = da + dqkv @ wqkv.T
    return dx, [dwqkv, dbqkv, dwo, dbo, dg1, db1, dwi, dbi, dwo2, dbo2, dg2, db2]


# -- pooling --------------------------------------------------------------------------------


def _unit(p: Array) -> tuple[Array, Array]:
    norm = np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12)
    return p / norm, norm


def _unit_backward(du: Array, u: Array, norm: Array) -> Array:
    out: Array = (du - u * (du * u).sum(1, keepdims=True)) / norm
    return out


@dataclass
class _PoolCache:
    mask: Array
    count: Array
    units: list[Array]
    norms: list[Array]
    argmax: npt.NDArray[np.int64]


def pool_forward(states: list[Array], mask: Array) -> tuple[Array, _PoolCache]:
    """The trainable part of the views from the top layers' outputs `states` (oldest first;
    the last is the final layer): [mean of each, newest first] + [CLS, max] of the last."""
    w = mask[:, :, None]
    count = np.maximum(mask.sum(1, keepdims=True), 1e-9)
    last = states[-1]
    raw = [(s * w).sum(1) / count for s in reversed(states)]
    raw.append(last[:, 0])
    masked = np.where(w > 0, last, -np.inf)
    argmax = masked.argmax(1)
    raw.append(np.take_along_axis(last, argmax[:, None, :], 1)[:, 0])
    units, norms = zip(*(_unit(r) for r in raw), strict=True)
    return np.concatenate(units, axis=1), _PoolCache(mask, count, list(units), list(norms), argmax)


def pool_backward(dviews: Array, c: _PoolCache, shape: tuple[int, ...]) -> list[Array]:
    """Gradients with respect to each of `states` (oldest first)."""
    d = shape[-1]
    parts = [
        _unit_backward(dviews[:, i * d : (i + 1) * d], u, nrm)
        for i, (u, nrm) in enumerate(zip(c.units, c.norms, strict=True))
    ]
    layers = len(parts) - 2
    w = c.mask[:, :, None]
    grads = [np.broadcast_to((p / c.count)[:, None, :], shape) * w for p in parts[:layers]]
    grads.reverse()
    last = grads[-1]
    last[:, 0] += parts[layers]
    n = shape[0]
    np.add.at(last, (np.arange(n)[:, None], c.argmax, np.arange(d)[None, :]), parts[layers + 1])
    return grads


# -- the model being trained ----------------------------------------------------------------


@dataclass
class Prefix:
    """What the frozen layers give, once per text: the hidden states entering the first
    trainable layer (each (tokens, 384), no padding) and all six pooled views (the frozen
    views are read from them; the trainable ones are recomputed)."""

    hidden: list[npt.NDArray[np.float32]]
    views: npt.NDArray[np.float32]


def _trainable_columns(trainable: int, dim: int) -> npt.NDArray[np.int64]:
    """The view columns the trainable layers change (views 0..3 are the means of layers 6, 5, 4,
    3; views 4, 5 are CLS and max of layer 6); the others are read from the prefix."""
    order = [*range(trainable), 4, 5]
    return np.concatenate([np.arange(i * dim, (i + 1) * dim) for i in order]).astype(np.int64)


def batch_forward(
    blocks: Sequence[Block], x: Array, mask: Array, frozen: Array, trainable_cols: Index
) -> tuple[Array, list[_LayerCache], _PoolCache]:
    """The views of a padded batch: top layers run on `x`, frozen views filled in."""
    bias = None if mask.min() > 0 else ((1.0 - mask) * x.dtype.type(-1e9))[:, None, None, :]
    caches = []
    states = []
    h = x
    for block in blocks:
        h, cache = layer_forward(block, h, bias)
        caches.append(cache)
        states.append(h)
    pooled, pool_cache = pool_forward(states, mask)
    views = frozen.copy()
    views[:, trainable_cols] = pooled
    return views, caches, pool_cache


def batch_backward(
    blocks: Sequence[Block],
    caches: list[_LayerCache],
    pool_cache: _PoolCache,
    dviews: Array,
    trainable_cols: Index,
) -> list[Block]:
    shape = caches[-1].x.shape
    dstates = pool_backward(dviews[:, trainable_cols], pool_cache, shape)
    grads: list[Block] = [[] for _ in blocks]
    dh = np.zeros(shape, dtype=dviews.dtype)
    for i in range(len(blocks) - 1, -1, -1):
        dh, grads[i] = layer_backward(blocks[i], caches[i], dh + dstates[i])
    return grads


def _pad(hidden: Sequence[npt.NDArray[np.float32]]) -> tuple[Array, Array]:
    t = max(len(h) for h in hidden)
    x = np.zeros((len(hidden), t, hidden[0].shape[1]), dtype=np.float32)
    mask = np.zeros((len(hidden), t), dtype=np.float32)
    for i, h in enumerate(hidden):
        x[i, : len(h)] = h
        mask[i, : len(h)] = 1.0
    return x, mask


@dataclass
class TuneSettings:
    layers: int = 1  # how many of the top layers learn (1 to 4: the views read layers 3-6)
    epochs: int = 3
    lr: float = 3e-4  # the encoder layers' Adam step
    head_lr: float = 1e-3
    batch: int = 32
    smoothing: float = 0.1
    head_decay: float = 1e-4  # L2 on the head, per example
    warmup: float = 0.1  # share of the steps with a rising step size
    seed: int = 0
    start_head: bool = True  # start from the frozen views' regression, not from zero


@dataclass
class Tuned:
    blocks: list[Block]
    weights: npt.NDArray[np.float32]  # (views, labels)
    bias: npt.NDArray[np.float32]
    history: list[dict[str, float]] = field(default_factory=list)


def _log_softmax(z: Array) -> Array:
    z = z - z.max(1, keepdims=True)
    out: Array = z - np.log(np.exp(z).sum(1, keepdims=True))
    return out


def views_of(
    tuned_blocks: Sequence[Block], prefix: Prefix, trainable: int, batch: int = 64
) -> npt.NDArray[np.float32]:
    """Every text's views through `tuned_blocks` (no gradient)."""
    dim = prefix.hidden[0].shape[1]
    cols = _trainable_columns(trainable, dim)
    out = prefix.views.copy()
    order = sorted(range(len(prefix.hidden)), key=lambda i: len(prefix.hidden[i]))
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        x, mask = _pad([prefix.hidden[i] for i in idx])
        views, _, _ = batch_forward(tuned_blocks, x, mask, prefix.views[idx], cols)
        out[idx] = views
    return out


def tune(
    blocks: Sequence[Block],
    prefix: Prefix,
    y: npt.NDArray[np.int64],
    classes: int,
    settings: TuneSettings,
    *,
    head: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None = None,
    on_epoch: Callable[[int, Tuned], dict[str, float]] | None = None,
) -> Tuned:
    """Train copies of the top `len(blocks)` layers and a softmax head on the views with
    label-smoothed cross-entropy and Adam (linear warm-up, then linear decay to zero).
    `on_epoch(epoch, tuned)` may report figures (say, accuracy on a held-out slice), which
    are kept in `history`."""
    rng = np.random.default_rng(settings.seed)
    trainable = len(blocks)
    dim = prefix.hidden[0].shape[1]
    cols = _trainable_columns(trainable, dim)
    params: list[Array] = [np.array(a, dtype=np.float32, copy=True) for b in blocks for a in b]
    if head is None:
        w = np.zeros((prefix.views.shape[1], classes), dtype=np.float32)
        b = np.zeros(classes, dtype=np.float32)
    else:
        w, b = (np.array(a, dtype=np.float32, copy=True) for a in head)
    params += [w, b]
    lrs = [settings.lr] * (len(params) - 2) + [settings.head_lr] * 2
    m = [np.zeros_like(a) for a in params]
    v = [np.zeros_like(a) for a in params]
    n = len(y)
    lengths = np.array([len(h) for h in prefix.hidden])
    steps = settings.epochs * math.ceil(n / settings.batch)
    warm = max(1, int(steps * settings.warmup))
    step = 0
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    eps_smooth = settings.smoothing
    tuned = Tuned([params[i * 12 : (i + 1) * 12] for i in range(trainable)], w, b)
    for epoch in range(1, settings.epochs + 1):
        # Texts of like length together (little padding), batches in random order.
        order = np.argsort(lengths + rng.uniform(0, 3, n), kind="stable")
        batches = [order[i : i + settings.batch] for i in range(0, n, settings.batch)]
        rng.shuffle(batches)
        loss_sum = 0.0
        for idx in batches:
            x, mask = _pad([prefix.hidden[i] for i in idx])
            layer_params = tuned.blocks
            views, caches, pool_cache = batch_forward(
                layer_params, x, mask, prefix.views[idx], cols
            )
            logp = _log_softmax(views @ w + b)
            target = np.full(logp.shape, eps_smooth / classes, dtype=np.float32)
            target[np.arange(len(idx)), y[idx]] += 1.0 - eps_smooth
            loss_sum += float(-(target * logp).sum())
            dlogits = (np.exp(logp) - target) / len(idx)
            dw = views.T @ dlogits + settings.head_decay * w
            db = dlogits.sum(0)
            dviews = dlogits @ w.T
            grads = batch_backward(layer_params, caches, pool_cache, dviews, cols)
            flat = [g for block in grads for g in block] + [dw, db]
            step += 1
            scale = step / warm if step <= warm else max(0.0, (steps - step) / (steps - warm))
            c1, c2 = 1 - beta1**step, 1 - beta2**step
            for a, g, ma, va, lr in zip(params, flat, m, v, lrs, strict=True):
                ma *= beta1
                ma += (1 - beta1) * g
                va *= beta2
                va += (1 - beta2) * (g * g)
                a -= (lr * scale / c1) * ma / (np.sqrt(va / c2) + eps)
        record = {"epoch": float(epoch), "loss": round(loss_sum / n, 4)}
        if on_epoch is not None:
            record.update(on_epoch(epoch, tuned))
        tuned.history.append(record)
    return tuned
