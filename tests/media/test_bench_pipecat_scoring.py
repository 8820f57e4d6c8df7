"""The pipecat side-by-side bench's scoring: which text belongs to which turn, and capacity."""

from __future__ import annotations

import numpy as np
import pytest

from bench.bench_media_pipecat import most_within, score, summarise, vad_stop_to_text
from bench.media_audio import Clip, Conversation, Turn


def _turn(track: str, text: str, start: float, end: float) -> Turn:
    clip = Clip(text, np.zeros(8, dtype=np.float32), text, 0.0, end - start)
    return Turn(track, clip, start, start, end)


TALK = Conversation(
    tracks={"inbound": np.zeros(8, dtype=np.float32), "outbound": np.zeros(8, dtype=np.float32)},
    turns=[
        _turn("inbound", "hello there", 1.0, 2.0),
        _turn("outbound", "how can I help", 3.0, 4.0),
        _turn("inbound", "my card", 5.0, 6.0),
    ],
)


def _text(stream: str, at: float, text: str) -> dict[str, object]:
    return {"stream": stream, "kind": "text", "t": 100.0 + at, "text": text}


def test_each_text_goes_to_the_latest_started_turn_of_its_track() -> None:
    texts = [
        _text("c0:inbound", 1.8, "hello"),
        _text("c0:inbound", 2.5, "there"),  # a second segment of the same turn: latency 0.5
        _text("c0:outbound", 4.7, "how can I help"),
        _text("c0:inbound", 6.9, "my card"),
    ]
    result = score([TALK], {"c0": 100.0}, texts)
    assert result["utterances"] == 3
    assert result["missed"] == 0
    assert result["wer"] == 0.0
    assert result["latency_max_s"] == pytest.approx(0.9)
    assert result["latency_p50_s"] == pytest.approx(0.7)


def test_a_turn_whose_text_never_comes_is_missed_and_counts_all_its_words() -> None:
    texts = [_text("c0:inbound", 2.4, "hello there"), _text("c0:outbound", 4.3, "how can I help")]
    result = score([TALK], {"c0": 100.0}, texts)
    assert result["utterances"] == 2
    assert result["missed"] == 1
    assert result["wer"] == pytest.approx(2 / 8)  # "my card" of 8 reference words


def test_vad_stop_to_text_pairs_only_streams_where_every_segment_gave_text() -> None:
    events = [
        {"stream": "a", "kind": "vad_stop", "t": 1.0},
        {"stream": "a", "kind": "text", "t": 1.4, "text": "x"},
        {"stream": "a", "kind": "vad_stop", "t": 2.0},
        {"stream": "a", "kind": "text", "t": 2.6, "text": "y"},
        {"stream": "b", "kind": "vad_stop", "t": 1.0},
    ]
    result = vad_stop_to_text(events)
    assert result["streams_paired"] == "1/2"
    assert result["vad_stop_to_text_p95_s"] == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("runs", "bound", "expected"),
    [
        ([{"calls": 1, "latency_p95_s": 0.9, "missed": 0}], 1.0, 1),
        ([{"calls": 1, "latency_p95_s": 1.01, "missed": 0}], 1.0, 0),
        ([{"calls": 2, "latency_p95_s": 0.5, "missed": 1}], 1.0, 0),
        ([{"calls": 2, "latency_p95_s": None, "missed": 6}], 1.0, 0),
        (
            [
                {"calls": 2, "latency_p95_s": 0.8, "missed": 0},
                {"calls": 4, "latency_p95_s": 1.2, "missed": 0},
            ],
            1.5,
            4,
        ),
    ],
)
def test_most_within(runs: list[dict[str, object]], bound: float, expected: int) -> None:
    assert most_within(runs, bound) == expected


def test_ratio_is_undefined_when_pipecat_keeps_no_call() -> None:
    sections = {
        "pipecat": {"runs": [{"calls": 1, "latency_p95_s": 1.2, "missed": 0}]},
        "loopline": {"runs": [{"calls": 4, "latency_p95_s": 0.9, "missed": 0}]},
    }
    ratios = summarise(sections)["ratio_loopline_to_pipecat"]
    assert ratios["1.0"] is None
    assert ratios["1.5"] == 4.0
