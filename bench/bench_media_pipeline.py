"""The full pipeline with many two-track calls at once: latency from the end of speech to text.

Each call is a conversation of real speech (the committed clips) with turn-taking: the caller
speaks, the agent answers, and so on, paced in real time, calls starting at staggered times.
Frames go through the socket handler's path (reader → session) into one node's speech workers:
Silero VAD batched across all streams, Whisper packing utterances from all calls.

Latency is from the end of an utterance's speech, measured on the audio itself (last sample
above a level, not our VAD), to the publication of its `utterance.final`. The node's CPU use
(all threads) is reported beside it.

Run: `python -m bench.bench_media_pipeline [--calls 4 8 12 16] [--model tiny.en]`
(writes bench/results/media_pipeline_<model>.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from loopline.domain.clock import SystemClock
from loopline.domain.events import Event, UtteranceEvent
from loopline.media.codec import resample, to_float, to_pcm, ulaw_decode, ulaw_encode
from loopline.media.engine import MediaEngine, MediaSettings
from loopline.media.simulate import read_audio
from loopline.media.wer import wer
from loopline.providers.twilio_media import MediaChunk, MediaStreamReader, MediaStreamWriter

AUDIO = Path(__file__).parents[1] / "tests" / "fixtures" / "audio"
MANIFEST = json.loads((AUDIO / "manifest.json").read_text())
Floats = npt.NDArray[np.float32]
GAP_S = 0.8


def clip(name: str, channel: int | None = None) -> Floats:
    samples, rate = read_audio(AUDIO / name)
    mono = samples.mean(axis=1) if channel is None else samples[:, channel]
    return to_float(ulaw_decode(ulaw_encode(to_pcm(resample(mono, rate, 8000)))))


def speech_bounds(samples: Floats) -> tuple[float, float]:
    """First and last 10 ms frame whose level is above -35 dBFS, in seconds."""
    frames = samples[: len(samples) // 80 * 80].reshape(-1, 80)
    level = np.sqrt((frames**2).mean(axis=1) + 1e-12)
    loud = np.nonzero(level > 10 ** (-35 / 20))[0]
    return float(loud[0] * 0.01), float((loud[-1] + 1) * 0.01)


@dataclass
class Turn:
    track: str
    start_s: float
    speech_start_s: float
    speech_end_s: float
    text: str


def conversation() -> tuple[dict[str, Floats], list[Turn]]:
    script = [
        ("inbound", clip("ldc93s1_8k.wav"), MANIFEST["ldc93s1_8k.wav"]["text"]),
        (
            "outbound",
            clip("stereo_diarization_8k.wav", 1),
            MANIFEST["stereo_diarization_8k.wav"]["right"],
        ),
        (
            "inbound",
            clip("stereo_diarization_8k.wav", 0),
            MANIFEST["stereo_diarization_8k.wav"]["left"],
        ),
        ("outbound", clip("ldc93s1_8k.wav"), MANIFEST["ldc93s1_8k.wav"]["text"]),
        ("inbound", clip("caller_card_espeak.wav"), MANIFEST["caller_card_espeak.wav"]["text"]),
    ]
    turns: list[Turn] = []
    cursor = 0.5
    pieces: dict[str, list[tuple[float, Floats]]] = {"inbound": [], "outbound": []}
    for track, samples, text in script:
        first, last = speech_bounds(samples)
        # Leading/trailing silence of the clip is trimmed so turns follow each other closely.
        body = samples[int(first * 8000) : int(last * 8000)]
        pieces[track].append((cursor, body))
        turns.append(Turn(track, cursor, cursor, cursor + len(body) / 8000, text))
        cursor += len(body) / 8000 + GAP_S
    total = int((cursor + 1.5) * 8000)
    tracks = {}
    for track, parts in pieces.items():
        audio = np.zeros(total, dtype=np.float32)
        for start, body in parts:
            audio[int(start * 8000) : int(start * 8000) + len(body)] = body
        tracks[track] = audio
    return tracks, turns


async def run(calls: int, model: str, seed: int = 7) -> dict[str, Any]:
    tracks, turns = conversation()
    frames = {t: ulaw_encode(to_pcm(a)) for t, a in tracks.items()}
    count = len(frames["inbound"]) // 160
    published: list[tuple[float, UtteranceEvent]] = []

    async def publish(event: Event) -> str:
        if isinstance(event, UtteranceEvent) and event.type == "utterance.final":
            published.append((time.perf_counter(), event))
        return "0"

    engine = MediaEngine(
        MediaSettings(model=model, workers=2, pack_size=8),
        publish=publish,
        clock=SystemClock(),
        node_id="bench",
    )
    await engine.start()
    await engine.workers.load()

    async def nobody() -> str | None:
        return None

    rng = random.Random(seed)
    offsets = sorted(rng.uniform(0, 4.0) for _ in range(calls))
    starts: dict[str, float] = {}

    async def one_call(index: int, delay: float) -> None:
        await asyncio.sleep(delay)
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
                pause = t0 + (k + 1) * 0.02 - time.perf_counter()
                if pause > 0:
                    await asyncio.sleep(pause)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one_call(i, d) for i, d in enumerate(offsets)))
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    lag_max = engine.metrics.asr_lag_seconds
    dropped = engine.metrics.partials_dropped_total
    partials = engine.metrics.utterances_partial_total
    await engine.stop()

    latencies: list[float] = []
    errors: list[float] = []
    missed = 0
    for call_id, t0 in starts.items():
        mine = [(t, e) for t, e in published if e.call_id == call_id]
        for turn in turns:
            hits = [
                (t, e)
                for t, e in mine
                if e.track == turn.track
                and e.start_ms / 1000 < turn.speech_end_s
                and e.end_ms / 1000 > turn.speech_start_s
            ]
            if not hits:
                missed += 1
                continue
            done = max(t for t, _ in hits)
            latencies.append(done - (t0 + turn.speech_end_s))
            text = " ".join(e.text for _, e in sorted(hits, key=lambda h: h[1].start_ms))
            if "card" not in turn.text.lower():
                errors.append(wer(turn.text, text))
    latencies.sort()
    p95 = latencies[max(0, int(round(0.95 * len(latencies))) - 1)] if latencies else None
    return {
        "calls": calls,
        "utterances": len(latencies),
        "missed": missed,
        "latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "latency_p95_s": round(p95, 3) if p95 is not None else None,
        "latency_max_s": round(latencies[-1], 3) if latencies else None,
        "cpu_cores_used": round(cpu / wall, 2),
        "wall_s": round(wall, 1),
        "partials_published": partials,
        "partials_dropped": dropped,
        "asr_lag_s_at_end": lag_max,
        "mean_wer": round(statistics.fmean(errors), 3) if errors else None,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, nargs="*", default=[2, 4, 8, 12, 16])
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--bound", type=float, default=1.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    runs = []
    for n in args.calls:
        runs.append(asyncio.run(run(n, args.model)))
        print(json.dumps(runs[-1]))
    within = [
        r["calls"]
        for r in runs
        if r["latency_p95_s"] is not None and r["latency_p95_s"] <= args.bound
    ]
    result = {
        "bench": "media_pipeline",
        "command": f"python -m bench.bench_media_pipeline --model {args.model}",
        "model": args.model,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "bound_p95_s": args.bound,
        "most_calls_within_bound": max(within) if within else 0,
        "runs": runs,
    }
    out = args.out or Path(__file__).parent / "results" / f"media_pipeline_{args.model}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
