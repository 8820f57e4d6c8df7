"""A track's recent audio on its timeline, in one ring buffer. Pure.

The VAD reads the newest windows of every track every few tens of milliseconds and the ASR
reads utterances back: both are slices of one array, not a walk over the frames kept.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float32]


class SampleHistory:
    """The last `capacity` samples of a timeline (sample indices grow without bound)."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self._buf: Floats = np.zeros(capacity, dtype=np.float32)
        self._start = 0  # timeline index of the oldest sample kept
        self._end = 0  # just past the newest

    @property
    def start(self) -> int:
        return self._start

    @property
    def end(self) -> int:
        return self._end

    def restart(self, at: int) -> None:
        """Forget everything; the timeline goes on from `at`."""
        self._start = self._end = at

    def append(self, samples: Floats) -> None:
        """Samples that follow `end` on the timeline."""
        cap = len(self._buf)
        if len(samples) >= cap:
            samples = samples[-cap:]
            self._start = self._end + len(samples) - cap
        head = self._end % cap
        first = min(len(samples), cap - head)
        self._buf[head : head + first] = samples[:first]
        if first < len(samples):
            self._buf[: len(samples) - first] = samples[first:]
        self._end += len(samples)
        self._start = max(self._start, self._end - cap)

    def read(self, start: int, end: int) -> Floats:
        """Samples [start, end) that are still kept (a copy; empty if none)."""
        start, end = max(start, self._start), min(end, self._end)
        if end <= start:
            return np.zeros(0, dtype=np.float32)
        cap = len(self._buf)
        a, b = start % cap, end % cap
        if a < b or b == 0:
            return self._buf[a : b or cap].copy()
        return np.concatenate((self._buf[a:], self._buf[:b]))
