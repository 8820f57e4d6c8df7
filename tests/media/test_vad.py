"""Silero VAD (real model, onnxruntime) batched across streams, and the pure segmenter."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from loopline.media.vad import (
    WINDOW,
    SileroVad,
    SpeechBoundary,
    VadSegmenter,
    VadStreamState,
    silero_model_path,
)

Floats = npt.NDArray[np.float32]


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return SileroVad()


def windows(samples: Floats) -> Floats:
    count = len(samples) // WINDOW
    return samples[: count * WINDOW].reshape(count, WINDOW)


def test_the_model_file_is_found() -> None:
    assert silero_model_path().name == "silero_vad.onnx"


def test_speech_is_found_where_it_is(vad: SileroVad, ldc: Floats) -> None:
    silence = np.zeros(8000, dtype=np.float32)
    audio = np.concatenate([silence, ldc, silence])
    (probs,), _ = vad.run([windows(audio)], [VadStreamState()])
    segmenter = VadSegmenter()
    bounds = segmenter.feed(probs.tolist(), 0) + segmenter.close(len(audio))
    assert [b.kind for b in bounds] == ["start", "end"]
    start_s, end_s = bounds[0].sample / 8000, bounds[1].sample / 8000
    assert 0.8 <= start_s <= 1.4
    assert 3.4 <= end_s <= 4.3
    assert probs[: 8000 // WINDOW - 2].max() < 0.3  # the leading silence


def test_a_batch_gives_what_each_stream_gives_alone(vad: SileroVad, ldc: Floats) -> None:
    streams = [windows(ldc), windows(ldc[4000:]), windows(ldc[:9000])]
    alone = [vad.run([w], [VadStreamState()])[0][0] for w in streams]
    together, states = vad.run(streams, [VadStreamState() for _ in streams])
    for a, b in zip(alone, together, strict=True):
        assert np.allclose(a, b, atol=1e-4)
    assert all(s.state.shape == (2, 128) for s in states)


def test_state_carries_across_calls(vad: SileroVad, ldc: Floats) -> None:
    w = windows(ldc)
    (whole,), _ = vad.run([w], [VadStreamState()])
    (first,), (state,) = vad.run([w[:40]], [VadStreamState()])
    (rest,), _ = vad.run([w[40:]], [state])
    assert np.allclose(whole, np.concatenate([first, rest]), atol=1e-4)


def seg(probs: list[float], **kw: int) -> list[tuple[str, int]]:
    segmenter = VadSegmenter(**kw)
    out = segmenter.feed(probs, 0)
    return [(b.kind, b.sample) for b in out]


@pytest.mark.parametrize(
    ("probs", "expected"),
    [
        ([0.0] * 20, []),
        ([0.9] * 2 + [0.0] * 20, []),  # too short to be speech
        # 3 windows (96 ms) of speech start it; 7 windows (224 ms) of silence end it.
        (
            [0.0] * 10 + [0.9] * 20 + [0.0] * 12,
            [("start", 10 * WINDOW - 1536), ("end", 30 * WINDOW + 1536)],
        ),
        # A dip that is short, or not low enough, does not end it.
        ([0.0] * 10 + [0.9] * 10 + [0.1] * 5 + [0.9] * 10 + [0.4] * 20, [("start", 1024)]),
    ],
)
def test_segmenter(probs: list[float], expected: list[tuple[str, int]]) -> None:
    assert seg(probs) == expected


def test_a_monologue_is_cut_at_the_maximum_and_goes_on() -> None:
    segmenter = VadSegmenter(max_speech_ms=1_000, pad_ms=0)
    out = segmenter.feed([0.9] * 100, 0)
    kinds = [b.kind for b in out]
    assert kinds[:3] == ["start", "end", "start"]
    lengths = [e.sample - s.sample for s, e in zip(out[::2], out[1::2], strict=False)]
    assert all(length <= 8_000 + WINDOW for length in lengths)


def test_close_ends_an_open_utterance() -> None:
    segmenter = VadSegmenter()
    segmenter.feed([0.9] * 10, 0)
    assert segmenter.close(5000) == [SpeechBoundary("end", 5000)]
    assert segmenter.close(6000) == []
