"""Pure encodings shared by the state stores: times as epoch ms, queue order, event ids."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)

# A queue score is -priority * PRIORITY_STEP + enqueued_ms: the priority dominates and, within
# one priority, the earlier call comes first. Redis keeps scores as doubles, exact up to 2**53
# (about 9.007e15), so |priority| stays under 800 and enqueued_ms under 1e13 (year 2286).
PRIORITY_STEP = 10**13
MAX_ABS_PRIORITY = 800


def to_ms(at: datetime) -> int:
    """Milliseconds since the epoch, rounded down; a naive datetime is taken as UTC."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return (at - EPOCH) // _ONE_MS


def from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def expiry_ms(now: datetime, ttl_s: float) -> int:
    if not ttl_s > 0:
        raise ValueError("ttl_s must be positive")
    return to_ms(now + timedelta(seconds=ttl_s))


def ttl_ms(ttl_s: float) -> int:
    """A positive time-to-live in whole milliseconds (at least one)."""
    if not ttl_s > 0:
        raise ValueError("ttl_s must be positive")
    return max(1, round(ttl_s * 1000))


def queue_score(priority: int, enqueued_at: datetime) -> int:
    """The service-order score of a queued call: lower is served first."""
    if abs(priority) > MAX_ABS_PRIORITY:
        raise ValueError(f"queue priority must be within ±{MAX_ABS_PRIORITY}")
    enqueued_ms = to_ms(enqueued_at)
    if not 0 <= enqueued_ms < PRIORITY_STEP:
        raise ValueError("enqueued_at is outside the years 1970-2286")
    return -priority * PRIORITY_STEP + enqueued_ms


def parse_event_id(event_id: str) -> tuple[int, int]:
    """An event id `<ms-or-seq>-<n>` (or a bare `<n>`) as a comparable pair."""
    head, sep, tail = event_id.partition("-")
    try:
        first = int(head)
        second = int(tail) if sep else 0
    except ValueError:
        raise ValueError("an event id looks like '<number>-<number>'") from None
    if first < 0 or second < 0:
        raise ValueError("an event id looks like '<number>-<number>'")
    return first, second


def caller_key(caller: str) -> str:
    """A caller's number as a key that does not show it: key names surface in Redis tooling."""
    return hashlib.sha256(caller.encode()).hexdigest()[:32]
