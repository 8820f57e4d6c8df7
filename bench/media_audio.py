"""The real speech the media benches play: committed clips through an 8 kHz μ-law phone line,
where each utterance's speech really starts and ends, and conversations built from them.

Every call of a load bench gets its own conversation (its own order of clips and its own
pauses): the same clip in every call at once would put identical audio side by side in one
Whisper pack, which no real node sees and which makes Whisper merge them.
"""

from __future__ import annotations

import json
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from loopline.media.codec import resample, to_float, to_pcm, ulaw_decode, ulaw_encode
from loopline.media.simulate import read_audio
from loopline.media.wer import edit_distance, words

AUDIO = Path(__file__).parents[1] / "tests" / "fixtures" / "audio"
MANIFEST = json.loads((AUDIO / "manifest.json").read_text())
Floats = npt.NDArray[np.float32]
RATE = 8000


@dataclass(frozen=True)
class Clip:
    name: str
    samples: Floats  # 8 kHz, after μ-law
    text: str
    speech_start_s: float
    speech_end_s: float


def phone_line(name: str, channel: int | None = None) -> Floats:
    samples, rate = read_audio(AUDIO / name)
    mono = samples.mean(axis=1) if channel is None else samples[:, channel]
    return to_float(ulaw_decode(ulaw_encode(to_pcm(resample(mono, rate, RATE)))))


def speech_bounds(samples: Floats, below_peak_db: float = 35.0) -> tuple[float, float]:
    """First and last 10 ms frame within `below_peak_db` of the clip's loudest frame.

    Relative to the clip's own peak: a fixed level in dBFS cuts the soft first words of a
    quiet recording (TIMIT's "She had ..." starts 20 dB below its peak).
    """
    frames = samples[: len(samples) // 80 * 80].reshape(-1, 80)
    level = 20 * np.log10(np.sqrt((frames**2).mean(axis=1)) + 1e-9)
    loud = np.nonzero(level > max(level.max() - below_peak_db, -60.0))[0]
    return float(loud[0] * 0.01), float((loud[-1] + 1) * 0.01)


def real_speech() -> list[Clip]:
    """The real-speech clips (the synthesised card line is left out), trimmed to 0.2 s of
    silence either side of their speech."""
    sources: list[tuple[str, int | None, str]] = [
        ("ldc93s1_8k.wav", None, "text"),
        ("stereo_diarization_8k.wav", 0, "left"),
        ("stereo_diarization_8k.wav", 1, "right"),
        ("jfk_8k.flac", None, "text"),
        ("librispeech_2412-153948-0000.flac", None, "text"),
    ]
    sources += [(n, None, "text") for n in sorted(MANIFEST) if n.startswith("librivox_")]
    clips = []
    for name, channel, key in sources:
        samples = phone_line(name, channel)
        first, last = speech_bounds(samples)
        lo = max(0, int((first - 0.2) * RATE))
        hi = min(len(samples), int((last + 0.2) * RATE))
        label = name if channel is None else f"{name}[{key}]"
        clips.append(
            Clip(label, samples[lo:hi], MANIFEST[name][key], first - lo / RATE, last - lo / RATE)
        )
    return clips


@dataclass(frozen=True)
class Turn:
    track: str  # "inbound" (caller) or "outbound" (agent)
    clip: Clip
    start_s: float  # where the clip is placed on the call's timeline
    speech_start_s: float
    speech_end_s: float


@dataclass(frozen=True)
class Conversation:
    tracks: dict[str, Floats]
    turns: list[Turn]

    @property
    def duration_s(self) -> float:
        return len(self.tracks["inbound"]) / RATE


def conversation(clips: list[Clip], seed: int, turns: int = 6) -> Conversation:
    """Caller and agent take turns with clips in a seeded order, 0.3–1.2 s between turns."""
    rng = random.Random(seed)
    order = rng.sample(clips, k=min(turns, len(clips)))
    cursor = rng.uniform(0.2, 1.0)
    placed: list[Turn] = []
    for i, clip in enumerate(order):
        track = "inbound" if i % 2 == 0 else "outbound"
        placed.append(
            Turn(track, clip, cursor, cursor + clip.speech_start_s, cursor + clip.speech_end_s)
        )
        cursor += len(clip.samples) / RATE + rng.uniform(0.1, 1.0)
    total = int((cursor + 1.5) * RATE)
    audio = {t: np.zeros(total, dtype=np.float32) for t in ("inbound", "outbound")}
    for turn in placed:
        at = int(turn.start_s * RATE)
        audio[turn.track][at : at + len(turn.clip.samples)] = turn.clip.samples
    return Conversation(audio, placed)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, int(round(q * len(ordered))) - 1)]


@dataclass
class TurnScores:
    """Latency and WER over the turns of the conversations, however each bench heard them."""

    latencies: list[float] = field(default_factory=list)
    edits: int = 0
    ref_words: int = 0
    missed: int = 0

    def add(self, reference: str, heard: Sequence[tuple[float, str]], speech_end: float) -> None:
        """One turn: its texts in spoken order with the time each arrived, and when its speech
        ended (same clock); a turn nothing was heard for is missed (all its words are errors)."""
        expected = words(reference)
        self.ref_words += len(expected)
        if not heard:
            self.missed += 1
            self.edits += len(expected)
            return
        self.latencies.append(max(at for at, _ in heard) - speech_end)
        self.edits += edit_distance(expected, words(" ".join(text for _, text in heard)))

    def figures(self) -> dict[str, Any]:
        lat = self.latencies
        p95 = percentile(lat, 0.95)
        return {
            "utterances": len(lat),
            "missed": self.missed,
            "latency_min_s": round(min(lat), 3) if lat else None,
            "latency_p50_s": round(statistics.median(lat), 3) if lat else None,
            "latency_p95_s": round(p95, 3) if p95 is not None else None,
            "latency_max_s": round(max(lat), 3) if lat else None,
            "wer": round(self.edits / max(1, self.ref_words), 3),
        }
