"""The ring buffer of a track's recent audio: reads across the wrap, trimming, restarts."""

from __future__ import annotations

import numpy as np
import pytest

from loopline.media.history import SampleHistory


def ramp(first: int, count: int) -> np.ndarray:
    return np.arange(first, first + count, dtype=np.float32)


def filled(capacity: int, chunks: list[int]) -> SampleHistory:
    history = SampleHistory(capacity)
    for count in chunks:
        history.append(ramp(history.end, count))
    return history


@pytest.mark.parametrize(
    ("capacity", "chunks", "read", "expected"),
    [
        (10, [4, 4], (0, 8), list(range(8))),  # nothing dropped yet
        (10, [4, 4, 4], (0, 12), list(range(2, 12))),  # the oldest two are gone
        (10, [4, 4, 4], (6, 11), list(range(6, 11))),  # across the wrap
        (10, [4, 4, 4], (10, 12), [10, 11]),  # the newest, at the front of the buffer
        (10, [5, 5], (5, 10), list(range(5, 10))),  # ends exactly at the buffer's end
        (10, [5, 5, 5], (5, 15), list(range(5, 15))),
        (10, [25], (0, 25), list(range(15, 25))),  # one chunk longer than the buffer
        (10, [4], (4, 9), []),  # nothing there yet
        (10, [4, 4, 4], (0, 1), []),  # long gone
    ],
)
def test_read(capacity: int, chunks: list[int], read: tuple[int, int], expected: list[int]) -> None:
    history = filled(capacity, chunks)
    assert history.read(*read).tolist() == [float(x) for x in expected]


def test_bounds_and_restart() -> None:
    history = filled(10, [4, 4, 4])
    assert (history.start, history.end) == (2, 12)
    history.restart(100)
    assert (history.start, history.end) == (100, 100)
    history.append(ramp(100, 3))
    assert history.read(90, 200).tolist() == [100.0, 101.0, 102.0]


def test_a_read_is_a_copy() -> None:
    history = filled(10, [4])
    out = history.read(0, 4)
    history.append(ramp(4, 10))  # overwrites the buffer
    assert out.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SampleHistory(0)
