"""The full pipeline through a real node: two-track calls placed as Twilio places them, latency
from the end of speech in the audio to `utterance.final` arriving on a supervisor's socket.

A real node (`loopline serve` in a subprocess, like `bench_webhook`: the demo deployment with
memory state, SQLite records and the speech model preloaded) runs for each number of calls.
This process plays Twilio and one supervisor: the supervisor's websocket is open before the
first call; each call is a signed voice webhook, then, on the `<Stream>` its TwiML names, a
signed media websocket carrying 20 ms μ-law frames of both tracks in real time. Every call is
its own conversation of real speech (`bench.media_audio.conversation`, the same seeds and the
same staggered start offsets as `bench_media_pipeline`), its media messages encoded before the
clock starts so that the load generator, which shares the machine with the node, stays lean.

Latency per turn: the arrival on the supervisor socket of the last `utterance.final` of that
call and track overlapping the turn, minus (t0 + the turn's end of speech), where t0 is the
wall-clock time this process sent the call's first media frame and the end of speech is
measured on the audio itself (`bench.media_audio.speech_bounds`), not by our VAD. Frame k is
sent at t0 + 20k ms, as `bench_media_pipeline` feeds it. A turn with no overlapping final is
missed (its words count as deleted in the WER). CPU: the node process's CPU time (all its
threads, from /proc) over the run's wall time, and this generator's separately; the load
average is recorded beside them because the machine is shared.

Run: `python -m bench.bench_media_node [--calls 2 4 8 12 16 20] [--model tiny.en|base]`
(writes bench/results/media_node_<model>.json).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import websockets
import yaml
from twilio.request_validator import RequestValidator

from bench.bench_webhook import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    ROOT,
    TOKEN_SECRET,
    _loop_factory,
    cpu_seconds,
    node_process,
)
from bench.media_audio import Conversation, TurnScores, conversation, real_speech
from loopline.media.codec import to_pcm, ulaw_encode
from loopline.media.models import ModelMissing, resolve_whisper
from loopline.providers.twilio_media import MediaStreamWriter
from loopline.web.auth import Principal, issue_token

FRAME = 160  # bytes of μ-law in 20 ms
DIALED = "+15005550100"


def write_config(folder: Path, model: str) -> Path:
    data = yaml.safe_load((ROOT / "config" / "loopline.yaml").read_text())
    data["state"] = "memory"
    data["records_url"] = f"sqlite+aiosqlite:///{folder}/records.db"
    data["crm"]["file"] = str(ROOT / "config" / "crm.yaml")
    data["media"] = {**(data.get("media") or {}), "model": model, "preload": True}
    path = folder / "loopline.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def rss_mb(pid: int) -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


@dataclass
class Plan:
    """One call, encoded before the clock starts."""

    index: int
    sid: str
    talk: Conversation
    webhook: dict[str, str]
    frames: list[tuple[str, str]]  # (inbound, outbound) media messages, frame by frame
    stop: str
    t0: float = 0.0
    late_frames: int = 0  # sent more than 20 ms behind schedule
    worst_late_s: float = 0.0
    error: str | None = None


def plan_call(index: int, talk: Conversation) -> Plan:
    sid = f"CA{index:032x}"
    rng = random.Random(index)
    writer = MediaStreamWriter(stream_sid=f"MZ{index:032x}", call_sid=sid)
    writer.start(("inbound", "outbound"), {})  # takes sequence number 1, as the real start will
    data = {t: ulaw_encode(to_pcm(a)) for t, a in talk.tracks.items()}
    frames = []
    for k in range(len(data["inbound"]) // FRAME):
        chunk = slice(k * FRAME, (k + 1) * FRAME)
        frames.append(
            (
                writer.media("inbound", data["inbound"][chunk], timestamp_ms=k * 20),
                writer.media("outbound", data["outbound"][chunk], timestamp_ms=k * 20),
            )
        )
    webhook = {
        "CallSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": f"+1{rng.choice(('212', '415', '512', '617'))}555{rng.randint(0, 9999):04d}",
        "To": DIALED,
        "CallStatus": "ringing",
        "Direction": "inbound",
    }
    return Plan(index, sid, talk, webhook, frames, writer.stop())


@dataclass
class Supervisor:
    finals: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    last_at: float = 0.0
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def listen(self, base: str) -> None:
        token = issue_token(
            TOKEN_SECRET, Principal(role="supervisor", subject="bench-sue"), datetime.now(UTC)
        )
        url = base.replace("http", "ws", 1) + "/ws/supervisor"
        headers = {"Authorization": f"Bearer {token}"}
        async with websockets.connect(url, additional_headers=headers, max_queue=None) as ws:
            async for raw in ws:
                arrived = time.perf_counter()
                # Cheap test first: most messages are partials, sentiment and call events.
                if '"hello"' in raw[:40]:
                    self.ready.set()
                if '"utterance.final"' not in raw:
                    continue
                message = json.loads(raw)
                if message.get("type") == "utterance.final":
                    self.finals.append((arrived, message))
                    self.last_at = arrived


def stream_of(twiml: str) -> tuple[str, dict[str, str]]:
    root = ET.fromstring(twiml)
    stream = root.find(".//Stream")
    if stream is None or not stream.get("url"):
        raise RuntimeError(f"the voice answer starts no media stream: {twiml[:300]}")
    params = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return str(stream.get("url")), params


async def one_call(
    base: str, http: httpx.AsyncClient, validator: RequestValidator, plan: Plan, due: float
) -> str | None:
    """Play one call; returns its call id (None when the node refused it)."""
    await asyncio.sleep(max(0.0, due - time.perf_counter()))
    voice_url = base + "/twilio/voice"
    signature = validator.compute_signature(voice_url, plan.webhook)
    answer = await http.post(
        voice_url, data=plan.webhook, headers={"X-Twilio-Signature": signature}
    )
    if answer.status_code != 200:
        plan.error = f"voice webhook: HTTP {answer.status_code}"
        return None
    url, params = stream_of(answer.text)
    call_id = params["call_id"]
    headers = {"X-Twilio-Signature": validator.compute_signature(url, {})}
    start = MediaStreamWriter(stream_sid=f"MZ{plan.index:032x}", call_sid=plan.sid)
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        await ws.send(start.connected())
        await ws.send(start.start(("inbound", "outbound"), params))
        t0 = plan.t0 = time.perf_counter()
        clock = time.perf_counter
        for k, (inbound, outbound) in enumerate(plan.frames):
            late = clock() - (t0 + k * 0.02)
            if late > 0.02:
                plan.late_frames += 1
                plan.worst_late_s = max(plan.worst_late_s, late)
            await ws.send(inbound)
            await ws.send(outbound)
            pause = t0 + (k + 1) * 0.02 - clock()
            if pause > 0:
                await asyncio.sleep(pause)
        await ws.send(plan.stop)
        # The node closes the socket once the stream's last finals are published.
        with contextlib.suppress(websockets.ConnectionClosed, TimeoutError):
            async with asyncio.timeout(60):
                async for _ in ws:
                    pass
    return call_id


def metrics_of(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                out[name] = float(value)
    return out


async def run(calls: int, model: str, seed: int = 7, turns: int = 6) -> dict[str, Any]:
    clips = real_speech()
    rng = random.Random(seed)
    talks = [conversation(clips, seed * 1000 + i, turns=turns) for i in range(calls)]
    offsets = sorted(rng.uniform(0, 6.0) for _ in range(calls))
    plans = [plan_call(i, talk) for i, talk in enumerate(talks)]
    with tempfile.TemporaryDirectory(prefix="loopline-bench-media-") as tmp:
        folder = Path(tmp)
        config = write_config(folder, model)
        async with node_process(folder, config) as node:
            supervisor = Supervisor()
            listening = asyncio.create_task(supervisor.listen(node.base))
            validator = RequestValidator(AUTH_TOKEN)
            try:
                async with asyncio.timeout(20):
                    await supervisor.ready.wait()
                async with httpx.AsyncClient(timeout=30) as http:
                    rss_before = rss_mb(node.pid)
                    load_before = os.getloadavg()
                    cpu = (cpu_seconds(node.pid), cpu_seconds(os.getpid()))
                    start = time.perf_counter() + 0.2
                    ids = await asyncio.gather(
                        *(
                            one_call(node.base, http, validator, plan, start + offset)
                            for plan, offset in zip(plans, offsets, strict=True)
                        ),
                        return_exceptions=True,
                    )
                    # The supervisor's copy of the last finals trails the media socket's close.
                    quiet_from = time.perf_counter()
                    for _ in range(100):  # until 1 s with no final, at most 10 s
                        if time.perf_counter() - max(supervisor.last_at, quiet_from) >= 1.0:
                            break
                        await asyncio.sleep(0.1)
                    wall = time.perf_counter() - start
                    node_cpu = cpu_seconds(node.pid) - cpu[0]
                    bench_cpu = cpu_seconds(os.getpid()) - cpu[1]
                    load_after = os.getloadavg()
                    rss_after = rss_mb(node.pid)
                    metrics = metrics_of((await http.get(node.base + "/metrics")).text)
            finally:
                listening.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await listening

    scores = TurnScores()
    errors: list[str] = []
    for plan, call_id in zip(plans, ids, strict=True):
        if isinstance(call_id, BaseException) or call_id is None:
            errors.append(plan.error or repr(call_id))
        mine = [(t, m) for t, m in supervisor.finals if m.get("call_id") == call_id]
        for turn in plan.talk.turns:
            hits = [
                (t, m)
                for t, m in mine
                if m["track"] == turn.track
                and m["start_ms"] / 1000 < turn.speech_end_s
                and m["end_ms"] / 1000 > turn.speech_start_s
            ]
            heard = [(t, str(m["text"])) for t, m in sorted(hits, key=lambda h: h[1]["start_ms"])]
            scores.add(turn.clip.text, heard, plan.t0 + turn.speech_end_s)
    figures = scores.figures()
    packs = metrics.get("asr_packs_total", 0.0)
    audio_s = sum(t.duration_s for t in talks)
    return {
        "calls": calls,
        "turns": sum(len(t.turns) for t in talks),
        **figures,
        "node_cpu_cores_used": round(node_cpu / wall, 2),
        "node_cpu_s_per_audio_s": round(node_cpu / audio_s, 3),
        "generator_cpu_cores_used": round(bench_cpu / wall, 2),
        "wall_s": round(wall, 1),
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "node_rss_mb_before_after": [rss_before, rss_after],
        "frames_sent_late": sum(p.late_frames for p in plans),  # > 20 ms behind schedule
        "frames_worst_late_s": round(max(p.worst_late_s for p in plans), 3),
        "errors": errors[:5],
        "node_metrics": {
            "utterances_final": metrics.get("utterances_final_total"),
            "utterances_partial": metrics.get("utterances_partial_total"),
            "partials_dropped": metrics.get("asr_partials_dropped_total"),
            "whisper_passes": packs,
            "clips_per_pass": round(metrics.get("asr_clips_total", 0.0) / max(1.0, packs), 2),
            "asr_busy_s": metrics.get("asr_busy_seconds_total"),
            "frames": metrics.get("media_frames_total"),
            "frames_late": metrics.get("media_frames_late_total"),
            "frames_filled": metrics.get("media_frames_filled_total"),
        },
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, nargs="*", default=[2, 4, 8, 12, 16, 20])
    parser.add_argument("--model", default="tiny.en", help="tiny.en or base")
    parser.add_argument("--turns", type=int, default=6, help="turns per call (fewer: shorter)")
    parser.add_argument("--bound", type=float, default=None, help="p95 bound (s)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    bound = args.bound if args.bound is not None else (1.0 if args.model == "tiny.en" else 1.5)
    try:
        resolve_whisper(args.model)
    except ModelMissing as exc:
        print(f"media_node: skipped: {exc}")
        raise SystemExit(2) from exc
    runs = []
    for n in args.calls:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runs.append(runner.run(run(n, args.model, turns=args.turns)))
        print(json.dumps(runs[-1]), flush=True)
    within = [
        r["calls"] for r in runs if r["latency_p95_s"] is not None and r["latency_p95_s"] <= bound
    ]
    calls = " ".join(str(n) for n in args.calls)
    result = {
        "bench": "media_node",
        "command": f"python -m bench.bench_media_node --model {args.model} --calls {calls}"
        + (f" --turns {args.turns}" if args.turns != 6 else ""),
        "node": "one `loopline serve` process (uvicorn), demo deployment, memory state, SQLite"
        " records, media defaults (2 ASR workers x 1 thread, packs of 8), model preloaded",
        "measured": "end of speech in the audio -> utterance.final arriving on /ws/supervisor",
        "model": args.model,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "bound_p95_s": bound,
        "most_calls_within_bound": max(within) if within else 0,
        "runs": runs,
    }
    out = args.out or Path(__file__).parent / "results" / f"media_node_{args.model}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}))
    return result


if __name__ == "__main__":
    main()
