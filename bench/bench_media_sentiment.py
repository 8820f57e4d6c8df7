"""Sentiment per utterance: the trained MiniLM classifier against the VADER baseline.

Data: the human-rated tweets and Amazon review snippets of the VADER paper
(../shared/data/sentiment, MIT; 7,908 lines, positive/neutral/negative from the raters' mean).
Per label, a seeded 20% is held out for testing; the classifier trains on up to `--train`
lines of the rest (stratified). VADER's lexicon was validated on these same ratings, so its
figure here is flattering. Latency is per utterance on one thread, as the speech workers call it.

Run: `python -m bench.bench_media_sentiment` (writes bench/results/media_sentiment.json).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path
from typing import Any

from loopline.media.sentiment import VaderScorer
from loopline.text.classifier import metrics, train
from loopline.text.embedder import MiniLmEmbedder

DATA = Path(__file__).parents[1].parent / "shared" / "data" / "sentiment"
RESULTS = Path(__file__).parent / "results" / "media_sentiment.json"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--train", type=int, default=3000)
    parser.add_argument("--c", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    rows: list[tuple[str, str]] = []
    for name in ("tweets.jsonl", "amazonReviewSnippets.jsonl"):
        with open(Path(args.data) / name, encoding="utf-8") as fh:
            rows += [(r["text"], r["label"]) for r in map(json.loads, fh)]
    rng = random.Random(args.seed)
    by_label: dict[str, list[str]] = {}
    for text, label in rows:
        by_label.setdefault(label, []).append(text)
    train_rows: list[tuple[str, str]] = []
    test_rows: list[tuple[str, str]] = []
    for label, texts in sorted(by_label.items()):
        rng.shuffle(texts)
        cut = len(texts) // 5
        test_rows += [(t, label) for t in texts[:cut]]
        train_rows += [(t, label) for t in texts[cut:]]
    rng.shuffle(train_rows)
    train_rows = train_rows[: args.train]
    load_before = os.getloadavg()[0]

    embedder = MiniLmEmbedder()
    started = time.process_time()
    model = train([t for t, _ in train_rows], [y for _, y in train_rows], embedder, c=args.c)
    train_cpu = time.process_time() - started
    test_texts = [t for t, _ in test_rows]
    truth = [y for _, y in test_rows]
    predicted = [label for label, _ in model.predict_vectors(embedder.embed(test_texts))]
    vader = VaderScorer()
    vader_labels = [label for label, _ in vader.judge(test_texts)]

    sample = test_texts[:200]
    t0 = time.process_time()
    for text in sample:
        model.predict_vectors(embedder.embed([text]))
    classifier_ms = (time.process_time() - t0) / len(sample) * 1000
    t0 = time.process_time()
    for text in sample:
        vader.judge([text])
    vader_ms = (time.process_time() - t0) / len(sample) * 1000

    def summary(result: dict[str, Any]) -> dict[str, Any]:
        return {
            "accuracy": result["accuracy"],
            "macro_f1": result["macro_f1"],
            "f1": {k: v["f1"] for k, v in result["per_label"].items()},
        }

    report = {
        "bench": "media_sentiment",
        "command": "python -m bench.bench_media_sentiment",
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "train_lines": len(train_rows),
        "test_lines": len(test_rows),
        "c": args.c,
        "classifier": summary(metrics(truth, predicted)),
        "vader": summary(metrics(truth, vader_labels)),
        "cpu_ms_per_utterance": {
            "classifier": round(classifier_ms, 2),
            "vader": round(vader_ms, 3),
        },
        "train_cpu_s": round(train_cpu, 1),
        "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
