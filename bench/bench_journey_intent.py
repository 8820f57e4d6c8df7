"""The intent classifier on banking77: accuracy with 10, 50, 100 examples per label and with
all of them, and latency per utterance on one core.

The train split (../shared/data/banking77, 10,003 utterances, 77 labels) is split per label:
20% held out for testing (seeded), training sets drawn from the rest. Every setting of the
model (regularisation, the vote's weight) is chosen by 3-fold cross-validation on the training
set of that row alone; the held-out part is read only to score. Each row also reports the two
halves of the vote alone (same fitted models), so the gain of fusing them shows.

Latency: one utterance at a time through the node's own path (`TextIntentClassifier.classify`:
tokenise, MiniLM forward, TF-IDF, both linear models), BLAS on one thread; wall-clock and the
process's CPU time, since the machine is shared.

Run: `flock /tmp/loopline-bench.lock python -m bench.bench_journey_intent`
(writes bench/results/journey_intent.json).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from loopline.journey.classifier import TextIntentClassifier, metrics
from loopline.journey.intent_model import fit
from loopline.text.embedder import MiniLmEmbedder
from loopline.text.finetune import Prefix, TuneSettings, views_of

RESULTS = Path(__file__).parent / "results" / "journey_intent.json"
DATA = Path(__file__).parents[1].parent / "shared" / "data" / "banking77" / "train.jsonl"


Split = tuple[dict[str, list[str]], list[tuple[str, str]]]


def split(rows: list[dict[str, str]], seed: int) -> Split:
    rng = random.Random(seed)
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
    return train_pool, test


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--per", default="10,50,100,all", help="rows: examples per label")
    parser.add_argument("--latency", type=int, default=300, help="utterances timed one by one")
    parser.add_argument("--epochs", type=int, default=TuneSettings.epochs, help="0: frozen")
    parser.add_argument("--layers", type=int, default=TuneSettings.layers, help="layers tuned")
    parser.add_argument("--lr", type=float, default=TuneSettings.lr, help="the layers' step")
    parser.add_argument("--head-lr", type=float, default=TuneSettings.head_lr)
    parser.add_argument("--dry", action="store_true", help="do not write the results file")
    parser.add_argument("--zero-head", action="store_true", help="tune from a zero head")
    args = parser.parse_args(argv)
    tune = TuneSettings(
        layers=args.layers,
        epochs=args.epochs,
        lr=args.lr,
        head_lr=args.head_lr,
        start_head=not args.zero_head,
    )

    with open(args.data, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    train_pool, test = split(rows, args.seed)
    embedder = MiniLmEmbedder()
    started, cpu_started = time.perf_counter(), time.process_time()
    all_texts = sorted({t for ts in train_pool.values() for t in ts} | {t for t, _ in test})
    all_hidden, all_views = embedder.prefix(all_texts, tune.layers, batch_size=32)
    views = dict(zip(all_texts, all_views, strict=True))
    hidden = dict(zip(all_texts, all_hidden, strict=True))
    embed_s, embed_cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    names = sorted(train_pool)
    test_texts = [t for t, _ in test]
    test_prefix = Prefix([hidden[t] for t in test_texts], np.stack([views[t] for t in test_texts]))
    top = [embedder.block(embedder.layers() - tune.layers + i) for i in range(tune.layers)]
    truth = [label for _, label in test]
    results: list[dict[str, Any]] = []
    model = None
    for per_text in args.per.split(","):
        per = None if per_text == "all" else int(per_text)
        pairs = [(t, label) for label in names for t in train_pool[label][:per]]
        texts = [t for t, _ in pairs]
        t0 = time.perf_counter()
        model = fit(
            texts,
            [label for _, label in pairs],
            np.stack([views[t] for t in texts]),
            hidden=[hidden[t] for t in texts] if tune.epochs else None,
            base_layers=top,
            tune=tune,
        )
        fit_s = time.perf_counter() - t0
        x_test = (
            views_of(model.tuned_layers, test_prefix, tune.layers)
            if model.tuned_layers
            else test_prefix.views
        )
        row: dict[str, Any] = {"per_label": per or "all", "train": len(pairs)}
        fused_alpha = model.alpha
        for part, alpha in (("fused", fused_alpha), ("embeddings_only", 1.0), ("ngrams_only", 0.0)):
            model.alpha = alpha
            predicted = [label for label, _ in model.predict(x_test, test_texts)]
            m = metrics(truth, predicted)
            row[part] = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}
        model.alpha = fused_alpha
        row["accuracy"], row["macro_f1"] = row["fused"]["accuracy"], row["fused"]["macro_f1"]
        row["settings"] = model.settings
        row["fit_s"] = round(fit_s, 1)
        results.append(row)
        print(json.dumps(row), flush=True)
    assert model is not None

    # Latency through the node's own path, one utterance at a time.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "intent.npz"
        model.save(path)
        classifier = TextIntentClassifier(path)
    sample = test_texts[: args.latency]
    for text in sample[:10]:
        classifier.classify(text)  # warm caches and the analyzers
    wall: list[float] = []
    cpu: list[float] = []
    for text in sample:
        t0, c0 = time.perf_counter(), time.process_time()
        classifier.classify(text)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    latency = {
        "utterances": len(sample),
        "wall_p50_ms": round(statistics.median(wall), 2),
        "wall_p95_ms": round(percentile(wall, 0.95), 2),
        "cpu_p50_ms": round(statistics.median(cpu), 2),
        "cpu_p95_ms": round(percentile(cpu, 0.95), 2),
        "cpu_mean_ms": round(statistics.fmean(cpu), 2),
    }
    print("latency per utterance, one core:", latency)
    result = {
        "bench": "journey_intent",
        "command": "flock /tmp/loopline-bench.lock python -m bench.bench_journey_intent",
        "model": "MiniLM views (mean of layers 3-6, CLS, max) + word 1-2 / char_wb 2-5 TF-IDF, "
        "two logistic regressions, log-probability vote; settings by 3-fold CV "
        "on each row's training set; then MiniLM's top layer(s) and the embeddings' head "
        "fine-tuned on the row's training set",
        "tune": dataclasses.asdict(tune),
        "test_utterances": len(test),
        "labels": len(names),
        "embed_all_s": round(embed_s, 1),
        "embed_all_cpu_s": round(embed_cpu_s, 1),
        "rows": results,
        "latency_one_core": latency,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "goals": {"accuracy_at_100": 0.94, "accuracy_all": 0.95, "latency_ms": 15},
    }
    if args.per == "10,50,100,all" and args.data == str(DATA) and not args.dry:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
