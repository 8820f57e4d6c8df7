"""Speech recognition behind one interface, and the short windows that make Whisper affordable.

faster-whisper pads every input to Whisper's 30-second window, and the encoder's cost grows
faster than the window (attention): tiny.en took 0.66 s for 30 s, 0.16 s for 15 s, 0.10 s for
10 s on one core here. So each utterance gets its own window, only as long as it needs (its
audio plus a second, at least `WINDOW_MIN_S`: shorter windows make tiny.en repeat itself), and
the utterances of one pass are encoded and decoded as one batch. A clip whose text still looks
wrong (no words, or more than anyone says in its time) is run again alone in a full window.

`pack` and `split_words` are the earlier approach, kept for the full-window path: utterances
laid end to end with half a second of silence between them, words handed back by their own
timestamps.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
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
WINDOW_MIN_S: Final = 8.0  # measured: at 6 s tiny.en loops on some clips, at 8 s none did
WINDOW_PAD_S: Final = 1.0  # silence after the clip inside its window
WINDOW_MAX_S: Final = 30.0
# Decoding stops at this many tokens for a clip (speech is 3-5 tokens a second): a window the
# decoder loops on costs a bounded time before the clip is run again in a full window.
TOKENS_PER_S: Final = 10.0  # with the timestamp tokens
TOKENS_EXTRA: Final = 12
TEXT_SHARE: Final = 0.7  # more text tokens than this share of the cap: a loop, not speech


@dataclass(frozen=True, slots=True)
class Word:
    text: str  # as the model wrote it, with its leading space
    start_s: float  # from the start of its utterance
    end_s: float


@dataclass(frozen=True, slots=True)
class Transcript:
    words: tuple[Word, ...]
    # False when the word times are only spread over the clip, not aligned to the audio (text
    # that needs no redaction span skips the alignment).
    timed: bool = True

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


_DIGIT_RUN = re.compile(r"\d(?:[\s.,-]?\d)*")
_WORD = re.compile(r"[a-z']+")
# Nobody says more digits in a row than a card number has (19); Whisper looping on digits does.
MAX_DIGIT_RUN: Final = 20
PHRASE_COPIES: Final = 5


def looped(text: str) -> bool:
    """Text Whisper produced by repeating itself: a run of digits longer than any card or
    phone number, or the same phrase (one to six words) said five times in a row."""
    for run in _DIGIT_RUN.finditer(text):
        if sum(ch.isdigit() for ch in run.group()) > MAX_DIGIT_RUN:
            return True
    said = _WORD.findall(text.lower())
    for size in range(1, 7):
        repeats = 0
        for i in range(size, len(said) - size + 1):
            if said[i : i + size] == said[i - size : i]:
                repeats += 1
                if repeats > (PHRASE_COPIES - 2) * size:
                    return True
            else:
                repeats = 0
    return False


def spoken_tokens(
    ids: Sequence[int], *, eot: int, timestamp_begin: int, duration_s: float, step_s: float = 0.02
) -> list[int]:
    """The text tokens of a decoding with timestamps, without the segments that begin after the
    clip's audio ended: in a padded window Whisper may say the clip again over the silence, and
    it stamps that repeat past the end."""
    kept: list[int] = []
    segment: list[int] = []
    start: float | None = None
    for token in ids:
        if token >= timestamp_begin:
            stamp = (token - timestamp_begin) * step_s
            if start is None:
                start = stamp
                continue
            if start < duration_s - 0.1:
                kept.extend(segment)
            segment, start = [], None
        elif token < eot:
            segment.append(token)
    if segment and (start is None or start < duration_s - 0.1):
        kept.extend(segment)
    return kept


def spread_words(texts: Sequence[str], duration_s: float) -> Transcript:
    """Words whose times are not known, spread evenly over the clip (marked untimed)."""
    if not texts:
        return Transcript(())
    step = duration_s / len(texts)
    return Transcript(
        tuple(Word(t, round(i * step, 3), round((i + 1) * step, 3)) for i, t in enumerate(texts)),
        timed=False,
    )


def window_seconds(duration_s: float) -> float:
    """The window a clip of `duration_s` is encoded in: its audio and a pad, at least the
    minimum, rounded up to half a second (so clips of a pass share few distinct shapes)."""
    wanted = max(WINDOW_MIN_S, duration_s + WINDOW_PAD_S)
    return min(WINDOW_MAX_S, math.ceil(wanted * 2.0) / 2.0)


def window_batches(durations_s: Sequence[float], max_waste: float = 1.5) -> list[list[int]]:
    """Indices of clips grouped into batches that share one window length: clips sorted by
    length, a new batch whenever the window would grow past `max_waste` times the batch's
    first window (every clip of a batch is padded to the longest)."""
    order = sorted(range(len(durations_s)), key=lambda i: durations_s[i])
    batches: list[list[int]] = []
    first = 0.0
    for index in order:
        window = window_seconds(durations_s[index])
        if batches and window <= first * max_waste:
            batches[-1].append(index)
        else:
            batches.append([index])
            first = window
    return batches


class WhisperEngine(AsrEngine):
    """faster-whisper (CTranslate2, int8 on CPU): one model shared by `workers` threads.

    A pass encodes its clips in short windows as one batch (`window_batches`), decodes them
    greedily as one batch, and aligns the words to the audio (cross-attention, as
    faster-whisper's word timestamps do) for the redaction spans: only the clips whose text
    `times_wanted` says may hold one (the alignment is 13-16% of a pass); the others' words
    get times spread evenly over the clip."""

    def __init__(
        self,
        model_dir: str,
        *,
        workers: int = 1,
        threads_per_worker: int = 1,
        times_wanted: Callable[[str], bool] | None = None,
    ) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        self._model = WhisperModel(
            model_dir,
            device="cpu",
            compute_type="int8",
            cpu_threads=threads_per_worker,
            num_workers=workers,
        )
        self._times_wanted = times_wanted or (lambda _text: True)
        self._tokenizer = Tokenizer(
            self._model.hf_tokenizer,
            self._model.model.is_multilingual,
            task="transcribe",
            language="en",
        )
        from threadpoolctl import ThreadpoolController

        # The mel filter product is the only BLAS call of a pass; OpenBLAS's extra threads
        # spin on the other core for nothing (10-20% of a pass's CPU, measured). Made once:
        # the controller scans the loaded libraries when built.
        self._threads = ThreadpoolController()

    def transcribe(self, clips: Sequence[Floats]) -> list[Transcript]:
        if not clips:
            return []
        with self._threads.limit(limits=1, user_api="blas"):
            return self._transcribe(clips)

    def _transcribe(self, clips: Sequence[Floats]) -> list[Transcript]:
        wide = [resample(c, TWILIO_RATE, ASR_RATE) for c in clips]
        out: list[Transcript] = [Transcript(())] * len(wide)
        durations = [len(c) / ASR_RATE for c in wide]
        looped: set[int] = set()
        for batch in window_batches(durations):
            for index, transcript in zip(
                batch, self._windowed([wide[i] for i in batch]), strict=True
            ):
                if transcript is None:
                    looped.add(index)
                else:
                    out[index] = transcript
        for i, clip in enumerate(wide):
            if i in looped or doubtful(out[i], durations[i]):
                self.retried_total += 1
                out[i] = self._pass([clip])[0]
        return out

    def _windowed(self, wide: Sequence[Floats]) -> list[Transcript | None]:
        """One batch: every clip in a window of the batch's length. None for a clip whose
        decoding ran to the token cap (a loop: Whisper repeating digits or a phrase)."""
        import ctranslate2

        model, tokenizer = self._model, self._tokenizer
        longest = max(len(c) for c in wide) / ASR_RATE
        seconds = window_seconds(longest)
        frames = int(round(seconds * 100))  # 10 ms mel frames
        features = np.stack([self._features(c, seconds, frames) for c in wide])
        encoded = model.model.encode(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(features)), to_cpu=False
        )
        prompt = list(tokenizer.sot_sequence)  # with timestamps: see `spoken_tokens`
        caps = [int(TOKENS_PER_S * len(c) / ASR_RATE) + TOKENS_EXTRA for c in wide]
        results = model.model.generate(
            encoded,
            [prompt] * len(wide),
            beam_size=1,
            max_length=min(448, len(prompt) + max(caps)),
            suppress_blank=True,
            suppress_tokens=[-1],
        )
        tokens = [
            spoken_tokens(
                r.sequences_ids[0],
                eot=tokenizer.eot,
                timestamp_begin=tokenizer.timestamp_begin,
                duration_s=len(c) / ASR_RATE,
            )
            for r, c in zip(results, wide, strict=True)
        ]
        loops = [
            len(t) >= TEXT_SHARE * cap or looped(tokenizer.decode(t))
            for t, cap in zip(tokens, caps, strict=True)
        ]
        tokens = [[] if loop else t for t, loop in zip(tokens, loops, strict=True)]
        timed = [bool(t) and self._times_wanted(tokenizer.decode(t)) for t in tokens]
        content = [max(1, min(frames, len(c) * 100 // ASR_RATE)) for c in wide]
        out: list[Transcript | None] = []
        wanted = [t if w else [] for t, w in zip(tokens, timed, strict=True)]
        aligned = self._align(encoded, wanted, content)
        for clip, words, loop, toks, align in zip(wide, aligned, loops, tokens, timed, strict=True):
            if loop:
                out.append(None)
                continue
            duration = len(clip) / ASR_RATE
            if not align:
                texts, _ = tokenizer.split_to_word_tokens(toks + [tokenizer.eot])
                out.append(spread_words([w for w in texts if w], duration))
                continue
            out.append(
                Transcript(
                    tuple(
                        Word(text, min(start, duration), min(max(start, end), duration))
                        for text, start, end in words
                    )
                )
            )
        return out

    def _features(self, clip: Floats, seconds: float, frames: int) -> Floats:
        padded = np.zeros(max(len(clip), int(seconds * ASR_RATE)), dtype=np.float32)
        padded[: len(clip)] = clip
        mel: Floats = self._model.feature_extractor(padded)
        if mel.shape[1] < frames:
            mel = np.pad(mel, ((0, 0), (0, frames - mel.shape[1])), mode="edge")
        return mel[:, :frames].astype(np.float32, copy=False)

    def _align(
        self, encoded: Any, tokens: list[list[int]], content_frames: list[int]
    ) -> list[list[tuple[str, float, float]]]:
        """Words with their times, from the decoder's cross-attention (DTW over the frames)."""
        spoken = [i for i, t in enumerate(tokens) if t]
        out: list[list[tuple[str, float, float]]] = [[] for _ in tokens]
        if not spoken:
            return out
        if len(spoken) < len(tokens):
            # Align only the clips with text: a batch of the encoder rows that have some.
            import ctranslate2

            rows = np.asarray(encoded)[spoken]
            encoded = ctranslate2.StorageView.from_array(np.ascontiguousarray(rows))
        found = self._model.find_alignment(
            self._tokenizer,
            [tokens[i] for i in spoken],
            encoded,
            max(content_frames[i] for i in spoken),
        )
        for i, words in zip(spoken, found, strict=True):
            out[i] = [(str(w["word"]), float(w["start"]), float(w["end"])) for w in words]
        return out

    def _pass(self, wide: Sequence[Floats]) -> list[Transcript]:
        """Clips packed into one full 30 s window (faster-whisper's own path)."""
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
