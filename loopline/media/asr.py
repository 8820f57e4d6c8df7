"""Speech recognition behind one interface, and the packing that makes Whisper affordable.

Whisper's encoder always reads a 30-second window, so one short utterance costs as much as
30 s of audio. `pack` lays utterances from several calls end to end with half a second of
silence between them; `split_words` hands the words back to their utterances by the words' own
timestamps (segment timestamps run across the gaps and cannot be trusted for this).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from loopline.media.codec import ASR_RATE, TWILIO_RATE, resample

Floats = npt.NDArray[np.float32]
PACK_GAP_S: Final = 0.5
PACK_MAX_S: Final = 28.0  # under Whisper's 30 s window, with room for the gaps
# Read speech runs at 2–4 words a second; far more in one clip of a pack means it was given
# the words of a neighbour (Whisper merges near-identical neighbours and repeats itself).
MAX_WORDS_PER_S: Final = 6.0


@dataclass(frozen=True, slots=True)
class Word:
    text: str  # as the model wrote it, with its leading space
    start_s: float  # from the start of its utterance
    end_s: float


@dataclass(frozen=True, slots=True)
class Transcript:
    words: tuple[Word, ...]

    @property
    def text(self) -> str:
        return "".join(w.text for w in self.words).strip()


class AsrEngine(ABC):
    """Turns clips of 8 kHz audio into words. Blocking CPU work: call it on a worker thread;
    several threads may call `transcribe` at once."""

    retried_total: int = 0  # clips run again on their own after a doubtful packed pass

    @abstractmethod
    def transcribe(self, clips: Sequence[Floats]) -> list[Transcript]:
        """One transcript per clip, in order."""


@dataclass(frozen=True, slots=True)
class Packed:
    audio: Floats
    offsets_s: tuple[float, ...]
    durations_s: tuple[float, ...]


def pack(clips: Sequence[Floats], rate: int, gap_s: float = PACK_GAP_S) -> Packed:
    """Clips end to end with `gap_s` of silence after each."""
    gap = np.zeros(int(gap_s * rate), dtype=np.float32)
    parts: list[Floats] = []
    offsets: list[float] = []
    durations: list[float] = []
    cursor = 0
    for clip in clips:
        offsets.append(cursor / rate)
        durations.append(len(clip) / rate)
        parts.append(clip.astype(np.float32, copy=False))
        parts.append(gap)
        cursor += len(clip) + len(gap)
    audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    return Packed(audio, tuple(offsets), tuple(durations))


def split_words(
    words: Sequence[tuple[str, float, float]], packed: Packed, gap_s: float = PACK_GAP_S
) -> list[Transcript]:
    """Give each word (text, start, end in the packed audio) to the clip its middle falls in.

    A clip owns its own time and half of the silence on either side of it; times come back
    relative to the clip's start.
    """
    buckets: list[list[Word]] = [[] for _ in packed.offsets_s]
    if not buckets:
        return []
    for text, start, end in words:
        middle = (start + end) / 2
        index = 0
        for i, offset in enumerate(packed.offsets_s):
            if middle >= offset - gap_s / 2:
                index = i
        offset = packed.offsets_s[index]
        duration = packed.durations_s[index]
        local_start = min(max(0.0, start - offset), duration)
        local_end = min(max(local_start, end - offset), duration)
        buckets[index].append(Word(text, local_start, local_end))
    return [Transcript(tuple(b)) for b in buckets]


def pack_groups(durations_s: Sequence[float], max_items: int, max_s: float = PACK_MAX_S) -> int:
    """How many of the clips (in order) fit one pack."""
    total = 0.0
    for count, duration in enumerate(durations_s):
        if count >= max_items or (count and total + duration + PACK_GAP_S > max_s):
            return count
        total += duration + PACK_GAP_S
    return len(durations_s)


def doubtful(transcript: Transcript, duration_s: float) -> bool:
    """A clip of a pack whose text was probably lost to, or taken from, another clip: no word
    at all for a clip the VAD heard as speech, or more words than anyone says in its time."""
    count = len(transcript.words)
    if count == 0:
        return duration_s >= 0.8
    return count > max(4.0, MAX_WORDS_PER_S * duration_s)


class WhisperEngine(AsrEngine):
    """faster-whisper (CTranslate2, int8 on CPU): one model shared by `workers` threads."""

    def __init__(self, model_dir: str, *, workers: int = 1, threads_per_worker: int = 1) -> None:
        from faster_whisper import WhisperModel

        self._model = WhisperModel(
            model_dir,
            device="cpu",
            compute_type="int8",
            cpu_threads=threads_per_worker,
            num_workers=workers,
        )

    def transcribe(self, clips: Sequence[Floats]) -> list[Transcript]:
        if not clips:
            return []
        wide = [resample(c, TWILIO_RATE, ASR_RATE) for c in clips]
        out = self._pass(wide)
        if len(wide) > 1:
            for i, clip in enumerate(wide):
                if doubtful(out[i], len(clip) / ASR_RATE):
                    self.retried_total += 1
                    out[i] = self._pass([clip])[0]
        return out

    def _pass(self, wide: Sequence[Floats]) -> list[Transcript]:
        packed = pack(wide, ASR_RATE)
        segments, _info = self._model.transcribe(
            packed.audio,
            language="en",
            beam_size=1,
            best_of=1,
            temperature=0.0,  # one pass: a fallback at higher temperature costs another window
            condition_on_previous_text=False,
            word_timestamps=True,
            vad_filter=False,
            without_timestamps=False,
        )
        words: list[tuple[str, float, float]] = []
        for segment in segments:
            seg_words: Any = segment.words or []
            words.extend((w.word, float(w.start), float(w.end)) for w in seg_words)
        return split_words(words, packed)
