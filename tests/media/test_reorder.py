"""Per-track reorder buffers: chunks back in order, holes filled with silence."""

from __future__ import annotations

import pytest

from loopline.media.reorder import TrackReorderBuffer

SILENCE = b"\xff" * 160


def frame(n: int) -> bytes:
    return bytes([n % 256]) * 160


def play(
    arrivals: list[int], max_hold: int = 3
) -> tuple[list[int], list[bool], TrackReorderBuffer]:
    buffer = TrackReorderBuffer(max_hold=max_hold)
    out = []
    for n in arrivals:
        out.extend(buffer.push(n, frame(n)))
    out.extend(buffer.flush())
    return [n for n, _ in out], [p == SILENCE for _, p in out], buffer


@pytest.mark.parametrize(
    ("arrivals", "order", "filled", "late", "duplicate"),
    [
        ([1, 2, 3, 4], [1, 2, 3, 4], 0, 0, 0),
        ([2, 1, 3], [1, 2, 3], 0, 0, 0),
        ([1, 3, 2, 4], [1, 2, 3, 4], 0, 0, 0),
        ([1, 2, 2, 3], [1, 2, 3], 0, 1, 0),  # already played: a late copy
        ([1, 3, 3, 2], [1, 2, 3], 0, 0, 1),  # still held: a duplicate
        ([1, 3, 4, 5, 6, 2], [1, 2, 3, 4, 5, 6], 1, 1, 0),  # 2 waited too long, then came late
        ([1, 5], [1, 2, 3, 4, 5], 3, 0, 0),  # the end of the stream fills the hole
        ([3, 4, 5], [1, 2, 3, 4, 5], 2, 0, 0),  # the first chunks never came
    ],
)
def test_order_and_counts(
    arrivals: list[int], order: list[int], filled: int, late: int, duplicate: int
) -> None:
    played, silent, buffer = play(arrivals)
    assert played == order
    assert sum(silent) == filled == buffer.stats.filled
    assert buffer.stats.late == late
    assert buffer.stats.duplicate == duplicate


def test_holds_early_chunks_until_the_hole_fills() -> None:
    buffer = TrackReorderBuffer(max_hold=3)
    assert [n for n, _ in buffer.push(1, frame(1))] == [1]
    assert buffer.push(3, frame(3)) == []
    assert buffer.held == 1
    assert [n for n, _ in buffer.push(2, frame(2))] == [2, 3]


def test_a_huge_jump_resyncs_instead_of_inventing_silence() -> None:
    buffer = TrackReorderBuffer(max_hold=3, max_gap=50)
    buffer.push(1, frame(1))
    out = buffer.push(10_000_000, frame(7))
    assert [n for n, _ in out] == [10_000_000]
    assert buffer.stats.resync == 1 and buffer.stats.filled == 0
