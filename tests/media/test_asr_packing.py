"""Packing utterances of several calls into one Whisper window, and splitting the words back."""

from __future__ import annotations

import numpy as np
import pytest

from loopline.media.asr import Transcript, Word, doubtful, pack, pack_groups, split_words


def clip(seconds: float, rate: int = 16000) -> np.ndarray:
    return np.ones(int(seconds * rate), dtype=np.float32)


def test_pack_lays_clips_end_to_end_with_gaps() -> None:
    packed = pack([clip(1.0), clip(2.0), clip(0.5)], 16000)
    assert packed.offsets_s == (0.0, 1.5, 4.0)
    assert packed.durations_s == (1.0, 2.0, 0.5)
    assert len(packed.audio) == int((1.0 + 2.0 + 0.5 + 3 * 0.5) * 16000)
    assert packed.audio[16000:24000].max() == 0.0  # the gap is silence


def test_words_go_back_to_their_clip_by_their_middle() -> None:
    packed = pack([clip(1.0), clip(2.0), clip(0.5)], 16000)
    words = [
        (" hello", 0.1, 0.5),
        (" there", 0.6, 1.2),  # runs into the gap: still the first clip's
        (" second", 1.6, 2.0),
        (" one", 3.1, 3.6),
        (" third", 4.05, 4.4),
    ]
    out = split_words(words, packed)
    assert [t.text for t in out] == ["hello there", "second one", "third"]
    assert out[1].words[0] == Word(" second", pytest.approx(0.1), pytest.approx(0.5))  # type: ignore[arg-type]
    assert out[0].words[1].end_s == 1.0  # clamped to its clip


def test_a_clip_with_no_words_gets_an_empty_transcript() -> None:
    packed = pack([clip(1.0), clip(1.0)], 16000)
    assert split_words([(" only", 0.2, 0.4)], packed) == [
        Transcript((Word(" only", 0.2, 0.4),)),
        Transcript(()),
    ]


@pytest.mark.parametrize(
    ("durations", "max_items", "fits"),
    [
        ([1.0] * 10, 8, 8),
        ([1.0] * 3, 8, 3),
        ([10.0, 10.0, 10.0], 8, 2),
        ([27.0, 1.0], 8, 1),
        ([40.0], 8, 1),  # never fewer than one
        ([], 8, 0),
    ],
)
def test_pack_groups(durations: list[float], max_items: int, fits: int) -> None:
    assert pack_groups(durations, max_items) == fits


def said(count: int) -> Transcript:
    return Transcript(tuple(Word(f" w{i}", i * 0.1, i * 0.1 + 0.1) for i in range(count)))


@pytest.mark.parametrize(
    ("words", "duration_s", "retry"),
    [
        (0, 2.0, True),  # the VAD heard speech, the pack gave it nothing
        (0, 0.5, False),  # a cough or a click may well be no words
        (6, 2.0, False),  # three words a second: ordinary speech
        (15, 2.0, True),  # a neighbour's sentence repeated into it
        (4, 0.3, False),  # short clips get a floor of four words
        (5, 0.3, True),
    ],
)
def test_a_doubtful_packed_clip_is_run_again(words: int, duration_s: float, retry: bool) -> None:
    assert doubtful(said(words), duration_s) is retry
