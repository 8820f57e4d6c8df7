"""Voice activity: Silero VAD run with onnxruntime (batched across streams) and a pure segmenter.

Silero's ONNX model keeps a recurrent state of shape [2, B, 128], one row per stream, so the
windows of many streams go through one model call. At 8 kHz a window is 256 samples (32 ms)
and the model also reads the 32 samples before it (its "context").

The `silero-vad` package is installed without its dependencies (it declares torch, which the
ONNX file does not need, and importing the package imports torch): we only locate the file.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from loopline.media.codec import TWILIO_RATE
from loopline.media.models import ModelMissing

WINDOW: Final = 256  # samples at 8 kHz
CONTEXT: Final = 32
WINDOW_MS: Final = WINDOW * 1000 // TWILIO_RATE  # 32
STATE_SHAPE: Final = (2, 128)
SILERO_FIX: Final = "pip install --no-deps silero-vad==6.2.3  (make install does this)"

Floats = npt.NDArray[np.float32]


def silero_model_path() -> Path:
    """The `silero_vad.onnx` shipped in the `silero-vad` package, found without importing it."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing(f"Silero VAD is not installed: {SILERO_FIX}")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise ModelMissing(f"Silero VAD model file is missing ({path}): {SILERO_FIX}")
    return path


@dataclass
class VadStreamState:
    """One stream's recurrent state and context between windows."""

    state: Floats = field(default_factory=lambda: np.zeros(STATE_SHAPE, dtype=np.float32))
    context: Floats = field(default_factory=lambda: np.zeros(CONTEXT, dtype=np.float32))


class SileroVad:
    """The model, loaded once per node. `run` is blocking CPU work: call it on a worker."""

    def __init__(self, path: Path | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # One thread: the pool decides parallelism, and onnxruntime's own threads would fight
        # Whisper's for the same cores.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            str(path or silero_model_path()), options, providers=["CPUExecutionProvider"]
        )
        self._rate = np.array(TWILIO_RATE, dtype=np.int64)

    def run(
        self, windows: Sequence[Floats], states: Sequence[VadStreamState]
    ) -> tuple[list[Floats], list[VadStreamState]]:
        """Speech probabilities for each stream's windows ([k_i, 256] each), step by step.

        Step j runs the j-th window of every stream that has one, as one batch. Returns each
        stream's probabilities ([k_i]) and its new state; the inputs are not modified.
        """
        count = len(windows)
        probs = [np.zeros(len(w), dtype=np.float32) for w in windows]
        state = np.stack([s.state for s in states], axis=1) if count else np.zeros((2, 0, 128))
        context = np.stack([s.context for s in states]) if count else np.zeros((0, CONTEXT))
        state = state.astype(np.float32)
        context = context.astype(np.float32)
        steps = max((len(w) for w in windows), default=0)
        for step in range(steps):
            rows = [i for i in range(count) if len(windows[i]) > step]
            x = np.empty((len(rows), CONTEXT + WINDOW), dtype=np.float32)
            x[:, :CONTEXT] = context[rows]
            for r, i in enumerate(rows):
                x[r, CONTEXT:] = windows[i][step]
            out, new_state = self._session.run(
                None, {"input": x, "state": state[:, rows, :], "sr": self._rate}
            )
            state[:, rows, :] = new_state
            context[rows] = x[:, -CONTEXT:]
            for r, i in enumerate(rows):
                probs[i][step] = out[r, 0]
        new_states = [
            VadStreamState(state=state[:, i, :].copy(), context=context[i].copy())
            for i in range(count)
        ]
        return probs, new_states


@dataclass(frozen=True, slots=True)
class SpeechBoundary:
    kind: Literal["start", "end"]
    sample: int  # on the track's timeline (8 kHz samples)


@dataclass
class VadSegmenter:
    """Speech start/end from per-window probabilities, with hysteresis. Pure.

    Speech starts when `min_speech_ms` of windows are above `threshold`; it ends after
    `min_silence_ms` below `neg_threshold`, or when an utterance reaches `max_speech_ms` (Whisper
    reads at most 30 s at once, and a long monologue still deserves timely finals).
    """

    threshold: float = 0.5
    neg_threshold: float = 0.35
    min_speech_ms: int = 96
    # 224 ms: every millisecond here is latency (pipecat 1.14 closes after 200 ms), but at 192 ms
    # the pauses between the groups of a card number read out split it and tiny.en garbled the
    # digits (tests/e2e/test_media_call.py: no [CARD]); 224 ms keeps them in one utterance.
    min_silence_ms: int = 224
    max_speech_ms: int = 15_000
    pad_ms: int = 192
    speaking: bool = False
    start_sample: int = 0
    _above: int = 0
    _below: int = 0

    def feed(self, probs: Sequence[float], first_sample: int) -> list[SpeechBoundary]:
        """Windows of `WINDOW` samples starting at `first_sample`, in order."""
        out: list[SpeechBoundary] = []
        min_speech = max(1, self.min_speech_ms // WINDOW_MS)
        min_silence = max(1, self.min_silence_ms // WINDOW_MS)
        pad = self.pad_ms * TWILIO_RATE // 1000
        max_samples = self.max_speech_ms * TWILIO_RATE // 1000
        for k, p in enumerate(probs):
            start = first_sample + k * WINDOW
            end = start + WINDOW
            if not self.speaking:
                self._above = self._above + 1 if p >= self.threshold else 0
                if self._above >= min_speech:
                    self.speaking = True
                    self._below = 0
                    first = end - self._above * WINDOW
                    self.start_sample = max(0, first - pad)
                    out.append(SpeechBoundary("start", self.start_sample))
                continue
            self._below = self._below + 1 if p < self.neg_threshold else 0
            too_long = end - self.start_sample >= max_samples
            if too_long and self._below < min_silence:
                # Cut a monologue here and carry straight on with the next utterance.
                out.append(SpeechBoundary("end", end))
                out.append(SpeechBoundary("start", end))
                self.start_sample = end
                self._below = 0
                continue
            if self._below >= min_silence:
                # The speech ended where the silence began; keep a little of it as padding.
                stop = end - self._below * WINDOW + pad
                self.speaking = False
                self._above = 0
                self._below = 0
                out.append(SpeechBoundary("end", min(stop, end)))
        return out

    def close(self, last_sample: int) -> list[SpeechBoundary]:
        """The stream ended: close an open utterance."""
        if not self.speaking:
            return []
        self.speaking = False
        return [SpeechBoundary("end", last_sample)]
