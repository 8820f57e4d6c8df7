"""Garbage-collector settings for a serving process.

CPython's full collection walks every tracked object. A node holds a few hundred thousand
long-lived ones from start-up (modules, FastAPI and SQLAlchemy structures, configuration,
compiled policies), and each call leaves thousands of short-lived ones behind (pydantic models,
ORM rows), so with the default thresholds a full collection came every few seconds under load
and stalled the event loop for up to half a second (measured under `bench.bench_webhook`).
Freezing what start-up built takes it out of every later collection; raising the thresholds
makes young collections less frequent and full ones rare.
"""

from __future__ import annotations

import gc

# (young, middle, old): a young collection every 2,000 net allocations (default 700), a middle
# one every 10 young (as by default) and a full one every 1,000 middle (default 10).
SERVING_THRESHOLDS = (2_000, 10, 1_000)


def tune_gc(thresholds: tuple[int, int, int] = SERVING_THRESHOLDS) -> None:
    """Call once start-up has built what lives as long as the process."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
