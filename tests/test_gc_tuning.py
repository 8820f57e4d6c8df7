"""`tune_gc`: what start-up built is frozen out of collections, and the thresholds are raised."""

from __future__ import annotations

import gc

from loopline.gc_tuning import SERVING_THRESHOLDS, tune_gc


def test_tune_gc_freezes_the_heap_and_sets_the_thresholds() -> None:
    before = gc.get_threshold()
    kept = [object() for _ in range(10)], {"a": [1, 2]}  # long-lived, as start-up leaves
    try:
        tune_gc()
        assert gc.get_threshold() == SERVING_THRESHOLDS
        assert gc.get_freeze_count() > 0
        assert not any(o is kept for o in gc.get_objects())  # frozen: out of sight
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
