"""The intent classifier on banking77: accuracy with 10, 50, 100 examples per label and with
all of them, and latency per utterance on one core.

The train split (../shared/data/banking77, 10,003 utterances, 77 labels) is split per label:
20% held out for testing (seeded), training sets drawn from the rest.

Run: `python -m bench.bench_journey_intent` (writes bench/results/journey_intent.json).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from loopline.journey.classifier import SCALE, IntentModel, fit_softmax, metrics
from loopline.journey.embedder import MiniLmEmbedder

RESULTS = Path(__file__).parent / "results" / "journey_intent.json"
DATA = Path(__file__).parents[1].parent / "shared" / "data" / "banking77" / "train.jsonl"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    with open(args.data, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    rng = random.Random(args.seed)
    by_label: dict[str, list[str]] = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(row["text"])
    train_pool: dict[str, list[str]] = {}
    test: list[tuple[str, str]] = []
    for label, texts in sorted(by_label.items()):
        texts = texts[:]
        rng.shuffle(texts)
        cut = len(texts) // 5
        test.extend((t, label) for t in texts[:cut])
        train_pool[label] = texts[cut:]
    embedder = MiniLmEmbedder()
    started = time.perf_counter()
    all_texts = sorted({t for ts in train_pool.values() for t in ts} | {t for t, _ in test})
    vectors = dict(zip(all_texts, embedder.embed(all_texts), strict=True))
    embed_s = time.perf_counter() - started
    names = sorted(train_pool)
    x_test = np.stack([vectors[t] for t, _ in test])
    truth = [label for _, label in test]
    results = []
    for per in (10, 50, 100, None):
        pairs = [
            (t, label)
            for label in names
            for t in (train_pool[label][:per] if per else train_pool[label])
        ]
        x = np.stack([vectors[t] for t, _ in pairs]) * SCALE
        y = np.array([names.index(label) for _, label in pairs], dtype=np.int64)
        with threadpool_limits(limits=1, user_api="blas"):
            w, b = fit_softmax(x, y, len(names))
        model = IntentModel(names, w, b, SCALE)
        predicted = [label for label, _ in model.predict_vectors(x_test)]
        m = metrics(truth, predicted)
        results.append(
            {
                "per_label": per or "all",
                "train": len(pairs),
                "accuracy": m["accuracy"],
                "macro_f1": m["macro_f1"],
            }
        )
        print(results[-1])
    sample = [t for t, _ in test[:300]]
    times = []
    for text in sample:
        t0 = time.perf_counter()
        model.predict_vectors(embedder.embed([text]))
        times.append((time.perf_counter() - t0) * 1000)
    ordered = sorted(times)
    latency = {
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(ordered[int(len(ordered) * 0.95)], 2),
        "mean_ms": round(statistics.fmean(times), 2),
    }
    print("latency per utterance, one core:", latency)
    result = {
        "bench": "journey_intent",
        "command": "python -m bench.bench_journey_intent",
        "test_utterances": len(test),
        "labels": len(names),
        "embed_all_s": round(embed_s, 1),
        "rows": results,
        "latency_one_core": latency,
        "goals": {"accuracy_at_100": 0.94, "accuracy_all": 0.95, "latency_ms": 15},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
