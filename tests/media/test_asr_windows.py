"""Short Whisper windows: how long each clip's window is, how clips share a batch, and the real
model transcribing committed speech in them (tiny.en ships in a package: no network)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from loopline.compliance.redaction import may_redact
from loopline.media.asr import (
    WINDOW_MIN_S,
    WhisperEngine,
    looped,
    spoken_tokens,
    window_batches,
    window_seconds,
)
from loopline.media.codec import resample
from loopline.media.models import resolve_whisper
from loopline.media.wer import edit_distance, words

AUDIO = Path(__file__).parents[1] / "fixtures" / "audio"


@pytest.mark.parametrize(
    ("duration_s", "window_s"),
    [
        (0.4, WINDOW_MIN_S),  # short clips get the minimum: shorter windows make tiny.en loop
        (6.9, WINDOW_MIN_S),
        (7.2, 8.5),  # the clip and a second of pad, rounded up to half a second
        (11.0, 12.0),
        (29.5, 30.0),  # never past Whisper's own window
        (40.0, 30.0),
    ],
)
def test_window_seconds(duration_s: float, window_s: float) -> None:
    assert window_seconds(duration_s) == window_s


def test_window_batches_group_clips_of_like_length() -> None:
    durations = [2.0, 14.0, 3.0, 6.0, 20.0, 11.0]
    batches = window_batches(durations)
    # every clip once, short ones together, a long one not padding the short ones' window
    assert sorted(i for b in batches for i in b) == list(range(len(durations)))
    assert batches == [[0, 2, 3, 5], [1, 4]]
    for batch in batches:
        windows = [window_seconds(durations[i]) for i in batch]
        assert max(windows) <= 1.5 * min(windows)


def test_window_batches_of_nothing() -> None:
    assert window_batches([]) == []


@pytest.mark.parametrize(
    ("text", "loop"),
    [
        ("my card is 4242 4242 4242 4242 thanks", False),  # 16 digits: a card, said
        ("call 555-123-4567 or 555 987 6543", False),  # two numbers, not one run
        ("4242.424242424242424242424242", True),  # Whisper looping on digits
        ("no no no no", False),  # people do say that
        ("no no no no no no", True),
        ("a b a b a b a b a", False),
        ("a b a b a b a b a b", True),  # a two-word phrase five times
        ("Had he married a more amiable woman, he might have been made still more", False),
    ],
)
def test_looped(text: str, loop: bool) -> None:
    assert looped(text) is loop


EOT, TS = 100, 1000  # token ids: below EOT text, from TS on timestamps of 20 ms steps


@pytest.mark.parametrize(
    ("ids", "duration_s", "kept"),
    [
        ([TS, 1, 2, TS + 100, EOT], 3.0, [1, 2]),  # one segment, 0-2 s
        # the clip said again over the padding, stamped after its end: dropped
        ([TS, 1, 2, TS + 145, TS + 150, 1, 2, TS + 300, EOT], 3.0, [1, 2]),
        ([TS, 1, TS + 50, TS + 50, 2, TS + 140, EOT], 3.0, [1, 2]),  # two segments inside
        ([1, 2, EOT], 3.0, [1, 2]),  # no timestamps at all: all kept
        ([TS, 1, 2, TS + 100, TS + 149, 3], 3.0, [1, 2]),  # an open segment at the end
        ([TS, 1, 2, TS + 100, TS + 120, 3], 3.0, [1, 2, 3]),
    ],
)
def test_spoken_tokens(ids: list[int], duration_s: float, kept: list[int]) -> None:
    assert spoken_tokens(ids, eot=EOT, timestamp_begin=TS, duration_s=duration_s) == kept


def load(name: str, channel: int | None = None) -> np.ndarray:
    audio, rate = soundfile.read(AUDIO / name, dtype="float32", always_2d=True)
    mono = audio[:, channel] if channel is not None else audio.mean(axis=1)
    return resample(np.ascontiguousarray(mono, dtype=np.float32), rate, 8000)


@pytest.fixture(scope="module")
def engine() -> WhisperEngine:
    return WhisperEngine(resolve_whisper("tiny.en"))


def test_short_windows_transcribe_real_speech_in_one_batch(engine: WhisperEngine) -> None:
    manifest = json.loads((AUDIO / "manifest.json").read_text())
    clips = [
        (load("ldc93s1_8k.wav"), manifest["ldc93s1_8k.wav"]["text"]),
        (load("stereo_diarization_8k.wav", 0), manifest["stereo_diarization_8k.wav"]["left"]),
        (load("stereo_diarization_8k.wav", 1), manifest["stereo_diarization_8k.wav"]["right"]),
    ]
    out = engine.transcribe([c for c, _ in clips])
    edits = sum(
        edit_distance(words(t), words(o.text)) for (_, t), o in zip(clips, out, strict=True)
    )
    total = sum(len(words(t)) for _, t in clips)
    assert edits / total <= 0.15, [o.text for o in out]
    for (clip, _), transcript in zip(clips, out, strict=True):
        duration = len(clip) / 8000
        times = [(w.start_s, w.end_s) for w in transcript.words]
        assert times and all(0.0 <= s <= e <= duration for s, e in times)
        assert times == sorted(times)
    assert engine.retried_total == 0  # no clip looped in its short window


def test_silence_gives_no_words(engine: WhisperEngine) -> None:
    out = engine.transcribe([np.zeros(8000 * 2, dtype=np.float32)])
    assert len(out) == 1 and len(out[0].words) <= 2


def test_only_text_that_may_be_redacted_is_aligned(engine: WhisperEngine) -> None:
    hinted = WhisperEngine(resolve_whisper("tiny.en"), times_wanted=may_redact)
    plain, card = load("ldc93s1_8k.wav"), load("caller_card_espeak.wav")
    aligned = engine.transcribe([plain, card])
    out = hinted.transcribe([plain, card])
    assert [t.text for t in out] == [t.text for t in aligned]
    assert [t.timed for t in out] == [False, True]
    assert out[1].words == aligned[1].words  # the card's words keep their aligned times
    duration = len(plain) / 8000
    spread = [(w.start_s, w.end_s) for w in out[0].words]
    assert spread[0][0] == 0.0 and abs(spread[-1][1] - duration) < 0.01
