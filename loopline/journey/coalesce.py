"""Which touches to announce on the bus: at most one `session.touched` per session per interval.

A page sends a batch every few seconds while someone reads it and a heartbeat every minute;
announcing each would flood the supervisor's socket for no gain. The first touch of a session
(or the first after a quiet interval) is announced at once, later ones inside the interval are
not. Per node: a session whose batches land on two nodes may be announced twice. Pure.
"""

from __future__ import annotations


class TouchCoalescer:
    def __init__(self, interval_s: float = 5.0, max_sessions: int = 100_000) -> None:
        if interval_s <= 0 or max_sessions < 1:
            raise ValueError("interval_s and max_sessions must be positive")
        self.interval_s = interval_s
        self.max_sessions = max_sessions
        # session -> when it was last announced; insertion order is announcement order.
        self._last: dict[str, float] = {}

    def due(self, session_id: str, now_s: float) -> bool:
        """Whether a touch of this session at `now_s` should be announced (and note it if so)."""
        self._forget_before(now_s - self.interval_s)
        last = self._last.get(session_id)
        if last is not None and now_s - last < self.interval_s:
            return False
        self._last.pop(session_id, None)
        self._last[session_id] = now_s
        while len(self._last) > self.max_sessions:
            # Over the cap: forget the oldest; at worst it is announced again a little early.
            del self._last[next(iter(self._last))]
        return True

    def _forget_before(self, cutoff: float) -> None:
        # Entries older than the interval would be due anyway: dropping them keeps the map
        # as small as the number of sessions active in the last interval.
        while self._last:
            session_id, at = next(iter(self._last.items()))
            if at > cutoff:
                return
            del self._last[session_id]

    def __len__(self) -> int:
        return len(self._last)
