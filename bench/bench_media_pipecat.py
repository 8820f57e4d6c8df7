"""Side by side: the node's media pipeline against pipecat, same conversations, same model.

pipecat (`bench/pipecat/server.py`, run under its own venv `.venv-pipecat`, made by
`bash bench/pipecat/setup.sh`) is one FastAPI/uvicorn process with one listen-only pipeline per
Twilio stream, `FastAPIWebsocketTransport` + `TwilioFrameSerializer` +
`VADProcessor(SileroVADAnalyzer)` + `WhisperSTTService` (faster-whisper, the tiny.en directory the
node uses, int8 like the node). Its serializer ignores the `track` field, so a two-track call is
two streams (`<Stream track="inbound_track">` and `<Stream track="outbound_track">`), two
pipelines.

Every call is the conversation `bench/media_audio.py` builds for it with the seed
`bench.bench_media_pipeline` uses, and calls start at the same staggered offsets; this process
plays each stream as Twilio would (`connected`, `start`, 20 ms μ-law `media` messages in real time,
`stop`) over a real websocket, and a silent tail of `--tail` seconds so that text still in
flight is not cut off by the hang-up. Latency is from the end of an utterance's speech in the
audio to the last TranscriptionFrame of that utterance reaching the end of its pipeline (wall
clock, same machine); a text belongs to the latest turn of its track that had started when it
came out. CPU is the server process's CPU time over the run's wall time; memory is its peak RSS
(VmHWM) less its RSS before the first call, per call.

The node's side is `python -m bench.bench_media_pipeline` at each call count in its own process
(peak RSS polled). Sections: `pipecat` (pipecat's defaults, VAD stop_secs 0.2 s in 1.14),
`pipecat_stop_matched` (stop_secs 0.256 s, the silence after which the node's VAD closes an
utterance) and `loopline`; at each call count all of them run in turn, so load from other work
on the machine falls on all alike. For each the most calls with p95 within 1.0 s (the issue's
bound for tiny.en) and within 1.5, 2 and 3 s, none missed, and loopline's over pipecat's.
`--only` runs some sections and keeps the others from the results file.

Run: `python -m bench.bench_media_pipecat [--only pipecat loopline] [--pipecat-calls 1 2 4]`
(writes bench/results/media_pipecat.json; skips with a hint when .venv-pipecat is missing).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import websockets

from bench.media_audio import Conversation, TurnScores, conversation, percentile, real_speech
from loopline.media.codec import to_pcm, ulaw_encode
from loopline.media.models import ModelMissing, resolve_whisper
from loopline.providers.twilio_media import MediaStreamWriter, Track

ROOT = Path(__file__).parents[1]
VENV = ROOT / ".venv-pipecat"
SERVER = Path(__file__).parent / "pipecat" / "server.py"
RESULTS = Path(__file__).parent / "results" / "media_pipecat.json"
SEED = 7  # bench.bench_media_pipeline's: the same conversations and offsets
TRACKS: tuple[Track, ...] = ("inbound", "outbound")
NODE_STOP_SECS = 0.256
SECTIONS = ("pipecat", "pipecat_stop_matched", "loopline")
FLAGS = {
    "pipecat": "--pipecat-calls",
    "pipecat_stop_matched": "--matched-calls",
    "loopline": "--loopline-calls",
}


def pipecat_python() -> Path | None:
    python = Path(os.environ.get("LOOPLINE_PIPECAT_PYTHON", str(VENV / "bin" / "python")))
    return python if python.is_file() else None


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM in bytes, and CPU seconds (user + system) of a process."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    out["cpu_ticks"] = int(fields[11]) + int(fields[12])
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(url: str, method: str = "GET") -> dict[str, Any]:
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def score(
    talks: list[Conversation], starts: dict[str, float], texts: list[dict[str, Any]]
) -> dict[str, Any]:
    """Latency and WER per turn, from each stream's TranscriptionFrames (wall-clock times)."""
    scores = TurnScores()
    for index, talk in enumerate(talks):
        t0 = starts[f"c{index}"]
        for track in TRACKS:
            mine = sorted(
                (e["t"] - t0, e["text"]) for e in texts if e["stream"] == f"c{index}:{track}"
            )
            turns = sorted((t for t in talk.turns if t.track == track), key=lambda t: t.start_s)
            for k, turn in enumerate(turns):
                until = turns[k + 1].speech_start_s if k + 1 < len(turns) else float("inf")
                hits = [(at, text) for at, text in mine if turn.speech_start_s < at <= until]
                scores.add(turn.clip.text, hits, turn.speech_end_s)
    figures = scores.figures()
    del figures["latency_min_s"]
    return figures


def vad_stop_to_text(events: list[dict[str, Any]]) -> dict[str, Any]:
    """From pipecat's VAD stop to the segment's text (what issue 4 first measured), pairing
    stops and texts in order on streams where every segment gave a text."""
    delays: list[float] = []
    streams = sorted({e["stream"] for e in events})
    paired = 0
    for stream in streams:
        stops = sorted(e["t"] for e in events if e["stream"] == stream and e["kind"] == "vad_stop")
        texts = sorted(e["t"] for e in events if e["stream"] == stream and e["kind"] == "text")
        if len(stops) == len(texts):
            paired += 1
            delays += [t - s for s, t in zip(stops, texts, strict=True)]
    p95 = percentile(delays, 0.95)
    return {
        "vad_stop_to_text_p50_s": round(statistics.median(delays), 3) if delays else None,
        "vad_stop_to_text_p95_s": round(p95, 3) if p95 is not None else None,
        "streams_paired": f"{paired}/{len(streams)}",
    }


async def play(
    url: str, index: int, talk: Conversation, delay: float, tail_s: float, starts: dict[str, float]
) -> None:
    """One two-track call as two Twilio streams, paced in real time."""
    await asyncio.sleep(delay)
    frames = {t: ulaw_encode(to_pcm(a)) for t, a in talk.tracks.items()}
    count = len(frames["inbound"]) // 160
    silence = b"\xff" * 160  # μ-law zero
    writers = {
        t: MediaStreamWriter(stream_sid=f"MZ{index:030x}{n:02x}", call_sid=f"CA{index:032x}")
        for n, t in enumerate(TRACKS)
    }
    sockets = {t: await websockets.connect(url, max_size=None) for t in TRACKS}
    try:
        for track, ws in sockets.items():
            await ws.send(writers[track].connected())
            await ws.send(writers[track].start((track,), {"call": f"c{index}", "track": track}))
        t0 = time.time()
        starts[f"c{index}"] = t0
        total = count + int(tail_s / 0.02)
        for k in range(total):
            for track, ws in sockets.items():
                payload = frames[track][k * 160 : (k + 1) * 160] if k < count else silence
                await ws.send(writers[track].media(track, payload, timestamp_ms=k * 20))
            pause = t0 + (k + 1) * 0.02 - time.time()
            if pause > 0:
                await asyncio.sleep(pause)
        for track, ws in sockets.items():
            await ws.send(writers[track].stop())
    finally:
        for ws in sockets.values():
            await ws.close()


async def pipecat_point(
    python: Path, model: str, calls: int, stop_secs: float | None, tail_s: float
) -> dict[str, Any]:
    port = free_port()
    command = [str(python), str(SERVER), "--port", str(port), "--model", model]
    if stop_secs is not None:
        command += ["--stop-secs", str(stop_secs)]
    server = await asyncio.create_subprocess_exec(*command, cwd=ROOT)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                await asyncio.to_thread(http, f"{base}/events")
                break
            except OSError:
                if server.returncode is not None:
                    raise RuntimeError(f"pipecat server exited with {server.returncode}") from None
                await asyncio.sleep(0.2)
        else:
            raise RuntimeError("pipecat server did not start in 60 s")
        clips = real_speech()
        rng = random.Random(SEED)
        talks = [conversation(clips, SEED * 1000 + i) for i in range(calls)]
        offsets = sorted(rng.uniform(0, 6.0) for _ in range(calls))
        before = proc_status(server.pid)
        starts: dict[str, float] = {}
        load_before = os.getloadavg()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        url = f"ws://127.0.0.1:{port}/ws"
        await asyncio.gather(
            *(play(url, i, talks[i], offsets[i], tail_s, starts) for i in range(calls))
        )
        wall = time.perf_counter() - wall0
        driver_cpu = time.process_time() - cpu0
        after = proc_status(server.pid)
        load_after = os.getloadavg()
        state = await asyncio.to_thread(http, f"{base}/events")
    finally:
        server.terminate()
        try:
            await asyncio.wait_for(server.wait(), timeout=20)
        except TimeoutError:
            server.kill()
            await server.wait()
    events = state["events"]
    texts = [e for e in events if e["kind"] == "text"]
    ticks = os.sysconf("SC_CLK_TCK")
    server_cpu = (after["cpu_ticks"] - before["cpu_ticks"]) / ticks
    audio_s = sum(t.duration_s for t in talks)
    return {
        "calls": calls,
        "pipelines": calls * len(TRACKS),
        **score(talks, starts, texts),
        **vad_stop_to_text(events),
        "vad_segments": sum(1 for e in events if e["kind"] == "vad_stop"),
        "transcriptions": len(texts),
        "cpu_cores_used": round(server_cpu / wall, 2),
        "cpu_s_per_audio_s": round(server_cpu / audio_s, 3),
        "driver_cpu_cores_used": round(driver_cpu / wall, 2),
        "rss_before_calls_mb": round(before["VmRSS"] / 2**20, 1),
        "rss_peak_mb": round(after["VmHWM"] / 2**20, 1),
        "rss_mb_per_call": round((after["VmHWM"] - before["VmRSS"]) / 2**20 / calls, 1),
        "wall_s": round(wall, 1),
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
    }


def loopline_point(model: str, calls: int) -> dict[str, Any]:
    """`bench.bench_media_pipeline` at one call count in its own process, peak RSS polled."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.json"
        command = [sys.executable, "-m", "bench.bench_media_pipeline", "--model", model]
        child = subprocess.Popen(
            [*command, "--calls", str(calls), "--out", str(out)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        peak = 0
        while child.poll() is None:
            with contextlib.suppress(OSError, KeyError):
                peak = max(peak, proc_status(child.pid)["VmHWM"])
            time.sleep(0.5)
        if child.returncode != 0:
            raise RuntimeError(f"bench.bench_media_pipeline exited with {child.returncode}")
        run: dict[str, Any] = json.loads(out.read_text())["runs"][0]
    run["rss_peak_mb"] = round(peak / 2**20, 1)
    run["rss_mb_per_call"] = round(peak / 2**20 / calls, 1)
    return run


BOUNDS = (1.0, 1.5, 2.0, 3.0)


def most_within(runs: list[dict[str, Any]], bound: float) -> int:
    """The most calls with p95 within `bound` and no utterance missed."""
    ok = [
        r["calls"]
        for r in runs
        if r["latency_p95_s"] is not None and r["latency_p95_s"] <= bound and r["missed"] == 0
    ]
    return max(ok) if ok else 0


def summarise(sections: dict[str, Any]) -> dict[str, Any]:
    """Capacity of each section under each bound, and loopline's over pipecat's (defaults)."""
    capacity = {
        name: {str(b): most_within(s["runs"], b) for b in BOUNDS} for name, s in sections.items()
    }
    ratios: dict[str, float | None] = {}
    for b in map(str, BOUNDS):
        ours = capacity.get("loopline", {}).get(b)
        theirs = capacity.get("pipecat", {}).get(b)
        ratios[b] = round(ours / theirs, 2) if ours and theirs else None
    return {"most_calls_within_p95": capacity, "ratio_loopline_to_pipecat": ratios}


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", choices=SECTIONS, help="default: all three")
    parser.add_argument("--pipecat-calls", type=int, nargs="*", default=[1, 2, 3, 4, 6, 8])
    parser.add_argument("--matched-calls", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--loopline-calls", type=int, nargs="*", default=[1, 2, 4, 8, 16])
    parser.add_argument("--tail", type=float, default=4.0, help="silence after each call (s)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sections = args.only or list(SECTIONS)
    python = pipecat_python()
    if python is None and any(s.startswith("pipecat") for s in sections):
        print(
            f"media_pipecat: skipped: no pipecat venv at {VENV}; create it with"
            " `bash bench/pipecat/setup.sh` (or `make bench-pipecat`)"
        )
        return None
    try:
        model = resolve_whisper("tiny.en")
    except ModelMissing as exc:
        print(f"media_pipecat: skipped: {exc}")
        return None
    plan: dict[str, tuple[list[int], float | None]] = {
        "pipecat": (args.pipecat_calls, None),
        "pipecat_stop_matched": (args.matched_calls, NODE_STOP_SECS),
        "loopline": (args.loopline_calls, None),
    }
    runs: dict[str, list[dict[str, Any]]] = {section: [] for section in sections}
    # Side by side: at each call count every system runs in turn, so the load others put on
    # the machine colours all of them alike.
    for n in sorted({n for section in sections for n in plan[section][0]}):
        for section in sections:
            calls, stop_secs = plan[section]
            if n not in calls:
                continue
            if section == "loopline":
                run = loopline_point(model, n)
            else:
                assert python is not None
                run = asyncio.run(pipecat_point(python, model, n, stop_secs, args.tail))
            print(json.dumps({"section": section, **run}), flush=True)
            runs[section].append(run)
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    done: dict[str, Any] = previous.get("sections", {})
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for section in sections:
        # A rerun at some call counts replaces those points and keeps the others.
        new = {r["calls"]: {**r, "at": at} for r in runs[section]}
        kept = [r for r in done.get(section, {}).get("runs", []) if r["calls"] not in new]
        merged = sorted([*kept, *new.values()], key=lambda r: int(r["calls"]))
        done[section] = {
            "command": f"python -m bench.bench_media_pipecat --only {section} {FLAGS[section]} "
            + " ".join(str(r["calls"]) for r in merged),
            "vad_stop_secs": plan[section][1] if section != "loopline" else NODE_STOP_SECS,
            "runs": merged,
        }
    result: dict[str, Any] = {
        "bench": "media_pipecat",
        "model": "tiny.en",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        **summarise(done),
        "sections": done,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "sections"}))
    return result


if __name__ == "__main__":
    main()
