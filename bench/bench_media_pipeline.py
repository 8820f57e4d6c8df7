"""The full pipeline with many two-track calls at once: latency from the end of speech to text.

Each call is its own conversation of real speech (`bench/media_audio.py`): caller and agent take
turns with the committed clips in a seeded order, with pauses between turns, paced in real time;
calls start at staggered times. Frames go through the socket handler's path (reader → session)
into one node's speech workers: Silero VAD batched across all streams, Whisper packing
utterances from all calls.

Latency is from the end of an utterance's speech, measured on the audio itself (last 10 ms
frame within 35 dB of the clip's peak, not our VAD), to the publication of its
`utterance.final` on the node's bus (what the supervisor socket forwards). CPU use is the
process's CPU time over wall time (all threads); the load average is recorded beside it because
the machine is shared.

Run: `python -m bench.bench_media_pipeline [--calls 2 4 8 12 16] [--model tiny.en]`
(writes bench/results/media_pipeline_<model>.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import time
from pathlib import Path
from typing import Any

from bench.media_audio import Conversation, TurnScores, conversation, real_speech
from loopline.domain.clock import SystemClock
from loopline.domain.events import Event, UtteranceEvent
from loopline.media.codec import to_pcm, ulaw_encode
from loopline.media.engine import MediaEngine, MediaSettings
from loopline.media.models import ModelMissing, resolve_whisper
from loopline.providers.twilio_media import MediaChunk, MediaStreamReader, MediaStreamWriter


async def run(calls: int, settings: MediaSettings, seed: int = 7) -> dict[str, Any]:
    clips = real_speech()
    rng = random.Random(seed)
    talks: list[Conversation] = [conversation(clips, seed * 1000 + i) for i in range(calls)]
    published: list[tuple[float, UtteranceEvent]] = []

    async def publish(event: Event) -> str:
        if isinstance(event, UtteranceEvent) and event.type == "utterance.final":
            published.append((time.perf_counter(), event))
        return "0"

    engine = MediaEngine(settings, publish=publish, clock=SystemClock(), node_id="bench")
    await engine.start()
    await engine.workers.load()

    async def nobody() -> str | None:
        return None

    offsets = sorted(rng.uniform(0, 6.0) for _ in range(calls))
    starts: dict[str, float] = {}
    lag_peak = 0.0

    async def one_call(index: int, delay: float) -> None:
        nonlocal lag_peak
        await asyncio.sleep(delay)
        talk = talks[index]
        frames = {t: ulaw_encode(to_pcm(a)) for t, a in talk.tracks.items()}
        count = len(frames["inbound"]) // 160
        call_id = f"c{index}"
        writer = MediaStreamWriter(stream_sid=f"MZ{index:032x}", call_sid=f"CA{index:032x}")
        reader = MediaStreamReader()
        reader.feed(writer.connected())
        reader.feed(writer.start(("inbound", "outbound"), {"call_id": call_id}))
        session = engine.session(call_id, agent_lookup=nobody)
        async with session:
            t0 = time.perf_counter()
            starts[call_id] = t0
            for k in range(count):
                for track in ("inbound", "outbound"):
                    payload = frames[track][k * 160 : (k + 1) * 160]
                    message = reader.feed(writer.media(track, payload, timestamp_ms=k * 20))  # type: ignore[arg-type]
                    assert isinstance(message, MediaChunk)
                    session.on_media(message)
                if k % 50 == 0:
                    lag_peak = max(lag_peak, engine.workers.lag_seconds())
                pause = t0 + (k + 1) * 0.02 - time.perf_counter()
                if pause > 0:
                    await asyncio.sleep(pause)

    load_before = os.getloadavg()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one_call(i, d) for i, d in enumerate(offsets)))
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    load_after = os.getloadavg()
    metrics = engine.metrics
    stats = {
        "partials_published": metrics.utterances_partial_total,
        "partials_dropped": metrics.partials_dropped_total,
        "whisper_passes": metrics.asr_packs_total,
        "clips_per_pass": round(metrics.asr_clips_total / max(1, metrics.asr_packs_total), 2),
        "whisper_wall_s_per_pass": round(
            metrics.asr_seconds_total / max(1, metrics.asr_packs_total), 3
        ),
        "retried_alone": metrics.asr_retries_total,
    }
    await engine.stop()

    scores = TurnScores()
    for index, talk in enumerate(talks):
        call_id = f"c{index}"
        t0 = starts[call_id]
        mine = [(t, e) for t, e in published if e.call_id == call_id]
        for turn in talk.turns:
            hits = [
                (t, e)
                for t, e in mine
                if e.track == turn.track
                and e.start_ms / 1000 < turn.speech_end_s
                and e.end_ms / 1000 > turn.speech_start_s
            ]
            heard = [(t, e.text) for t, e in sorted(hits, key=lambda h: h[1].start_ms)]
            scores.add(turn.clip.text, heard, t0 + turn.speech_end_s)
    figures = scores.figures()
    del figures["latency_min_s"]
    return {
        "calls": calls,
        **figures,
        "cpu_cores_used": round(cpu / wall, 2),
        "cpu_s_per_audio_s": round(cpu / sum(t.duration_s for t in talks), 3),
        "wall_s": round(wall, 1),
        "asr_lag_peak_s": round(lag_peak, 2),
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        **stats,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, nargs="*", help="default 2 4 8 12 16 (base: 2 4 8)")
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--workers", type=int, default=MediaSettings.workers)
    parser.add_argument("--threads", type=int, default=MediaSettings.threads_per_worker)
    parser.add_argument("--pack-size", type=int, default=MediaSettings.pack_size)
    parser.add_argument("--bound", type=float, default=None, help="p95 bound (s)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    bound = args.bound if args.bound is not None else (1.0 if args.model == "tiny.en" else 1.5)
    if args.calls is None:
        args.calls = [2, 4, 8, 12, 16] if args.model == "tiny.en" else [2, 4, 8]
    try:
        resolve_whisper(args.model)
    except ModelMissing as exc:
        print(f"media_pipeline: skipped: {exc}")
        raise SystemExit(2) from exc
    settings = MediaSettings(
        model=args.model,
        workers=args.workers,
        threads_per_worker=args.threads,
        pack_size=args.pack_size,
    )
    runs = []
    for n in args.calls:
        runs.append(asyncio.run(run(n, settings)))
        print(json.dumps(runs[-1]), flush=True)
    within = [
        r["calls"] for r in runs if r["latency_p95_s"] is not None and r["latency_p95_s"] <= bound
    ]
    calls = " ".join(str(n) for n in args.calls)
    result = {
        "bench": "media_pipeline",
        "command": f"python -m bench.bench_media_pipeline --model {args.model} --calls {calls}",
        "model": args.model,
        "settings": {
            "workers": settings.workers,
            "threads_per_worker": settings.threads_per_worker,
            "pack_size": settings.pack_size,
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "bound_p95_s": bound,
        "most_calls_within_bound": max(within) if within else 0,
        "runs": runs,
    }
    out = args.out or Path(__file__).parent / "results" / f"media_pipeline_{args.model}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}))
    return result


if __name__ == "__main__":
    main()
