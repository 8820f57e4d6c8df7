"""Outcome and QA scoring of one call, on one core: a 10-minute transcript (about 1,500 words,
~200 lines), the stock rules and scorecard, and a trained transcript model.

What is timed is `score_call`, exactly what the pipeline runs in its worker thread per ended
call: joining the transcript, the model's prediction, the rules, and the six QA items.
Goal: at most 50 ms per call.

Run: `python -m bench.bench_attribution_scoring` (writes bench/results/attribution_scoring.json).
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from loopline.attribution.classifier import train
from loopline.attribution.facts import CallFacts
from loopline.attribution.outcomes import OutcomeRules
from loopline.attribution.pipeline import score_call
from loopline.attribution.qa import Scorecard
from loopline.attribution.transcript import Line
from loopline.config.attribution import AttributionConfig
from tests.attribution.corpus import examples, long_transcript

RESULTS = Path(__file__).parent / "results" / "attribution_scoring.json"


def main() -> None:
    config = AttributionConfig()
    rules = OutcomeRules(config)
    card = Scorecard(list(config.qa))
    data = examples(150)
    started = time.perf_counter()
    model = train([t for t, _ in data], [lab for _, lab in data])
    train_s = time.perf_counter() - started
    said = long_transcript(10)
    lines = [
        Line(speaker=s, text=t, start_ms=i * 3000, end_ms=i * 3000 + 2500)
        for i, (s, t) in enumerate(said)
    ]
    words = sum(len(t.split()) for _, t in said)
    at = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
    facts = CallFacts(
        call_id="bench",
        received_at=at,
        answered_at=at + timedelta(seconds=5),
        ended_at=at + timedelta(minutes=10),
        duration_s=600,
    )
    for _ in range(20):  # warm up
        score_call(rules, card, model, facts, lines, at)
    timings = []
    for _ in range(300):
        t0 = time.perf_counter()
        score_call(rules, card, model, facts, lines, at)
        timings.append((time.perf_counter() - t0) * 1000)
    timings.sort()
    result = {
        "bench": "attribution_scoring",
        "command": "python -m bench.bench_attribution_scoring",
        "machine": platform.platform(),
        "transcript": {"minutes": 10, "lines": len(lines), "words": words},
        "model": {
            "train_examples": len(data),
            "train_s": round(train_s, 2),
            "features": len(model.vocabulary),
            "labels": len(model.labels),
        },
        "per_call_ms": {
            "median": round(statistics.median(timings), 2),
            "p95": round(timings[int(len(timings) * 0.95)], 2),
            "max": round(timings[-1], 2),
        },
        "goal_ms": 50,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
