"""A scripted `AsrEngine` for tests of the pool and the session: it stands in for Whisper
(not under test there) and can be held busy to simulate load."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from loopline.media.asr import AsrEngine, Transcript, Word


class ScriptedEngine(AsrEngine):
    """Answers each clip with the next scripted line, its words spread over the clip."""

    def __init__(self, lines: Sequence[str] = (), *, default: str = "hello there") -> None:
        self.lines = list(lines)
        self.default = default
        self.packs: list[int] = []
        self.gate = threading.Event()
        self.gate.set()
        self._lock = threading.Lock()

    def transcribe(self, clips: Sequence[npt.NDArray[np.float32]]) -> list[Transcript]:
        self.gate.wait(timeout=30)
        out = []
        with self._lock:
            self.packs.append(len(clips))
            for clip in clips:
                text = self.lines.pop(0) if self.lines else self.default
                out.append(spread(text, len(clip) / 8000))
        return out


def spread(text: str, duration_s: float) -> Transcript:
    tokens = text.split()
    if not tokens:
        return Transcript(())
    step = duration_s / len(tokens)
    return Transcript(
        tuple(
            Word(" " + t, round(i * step, 3), round((i + 1) * step, 3))
            for i, t in enumerate(tokens)
        )
    )
