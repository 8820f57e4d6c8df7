"""Per-key request budgets for the public touch route (per visitor, per address). Pure.

A fixed one-minute window per key, kept for the current and previous minute only, so memory
stays bounded by the keys seen in two minutes. Each node counts its own traffic: behind a
balancer that spreads a visitor over n nodes the effective limit is up to n times the budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class WindowLimiter:
    per_minute: int
    max_keys: int = 100_000
    _window: int = -1
    _counts: dict[str, int] = field(default_factory=dict)

    def allow(self, key: str, now_s: float) -> bool:
        window = int(now_s // 60)
        if window != self._window:
            self._window = window
            self._counts = {}
        count = self._counts.get(key, 0)
        if count >= self.per_minute:
            return False
        if count == 0 and len(self._counts) >= self.max_keys:
            return False  # a flood of new keys: refuse rather than grow without bound
        self._counts[key] = count + 1
        return True
