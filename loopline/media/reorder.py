"""Per-track reorder buffer: Twilio chunks back in order, gaps filled with silence.

Chunks of one track are numbered from 1, each 20 ms. Over a real network they can arrive out
of order, twice, or not at all. The buffer holds early chunks for a few frames, releases them in
order, and when the hole it waits on is still open after `max_hold` frames it gives up on it
and fills it with silence, so the track's timeline (chunk n starts at (n - 1) × 20 ms) stays true.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

FRAME_BYTES: Final = 160  # 20 ms of 8 kHz μ-law
SILENCE_BYTE: Final = 0xFF


@dataclass
class ReorderStats:
    frames: int = 0
    late: int = 0  # arrived after their place was played out (dropped)
    duplicate: int = 0
    filled: int = 0  # frames of silence put in for chunks that never came
    resync: int = 0  # jumps too far ahead to fill


@dataclass
class TrackReorderBuffer:
    """Feed `(chunk, payload)`; get back `(chunk, payload)` in order with no holes."""

    max_hold: int = 5
    max_gap: int = 250  # 5 s: a bigger jump is a resync, not silence to invent
    frame_bytes: int = FRAME_BYTES
    next_chunk: int = 1
    stats: ReorderStats = field(default_factory=ReorderStats)
    _held: dict[int, bytes] = field(default_factory=dict)

    def push(self, chunk: int, payload: bytes) -> list[tuple[int, bytes]]:
        if chunk < self.next_chunk:
            self.stats.late += 1
            return []
        if chunk in self._held:
            self.stats.duplicate += 1
            return []
        if chunk - self.next_chunk > self.max_gap:
            # Nothing sane lies between: start over from here rather than invent minutes.
            self.stats.resync += 1
            released = self.flush()
            self.next_chunk = chunk
            self._held[chunk] = payload
            return released + self._release()
        self._held[chunk] = payload
        return self._release()

    def _release(self) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        while self._held:
            payload = self._held.pop(self.next_chunk, None)
            if payload is None:
                if len(self._held) < self.max_hold:
                    break
                payload = self._silence()
                self.stats.filled += 1
            else:
                self.stats.frames += 1
            out.append((self.next_chunk, payload))
            self.next_chunk += 1
        return out

    def flush(self) -> list[tuple[int, bytes]]:
        """Release everything held, filling holes (the stream ended)."""
        out: list[tuple[int, bytes]] = []
        if not self._held:
            return out
        last = max(self._held)
        while self.next_chunk <= last:
            payload = self._held.pop(self.next_chunk, None)
            if payload is None:
                payload = self._silence()
                self.stats.filled += 1
            else:
                self.stats.frames += 1
            out.append((self.next_chunk, payload))
            self.next_chunk += 1
        return out

    def _silence(self) -> bytes:
        return bytes([SILENCE_BYTE]) * self.frame_bytes

    @property
    def held(self) -> int:
        return len(self._held)
