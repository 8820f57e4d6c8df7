"""Ingest + VAD: how many real-time Twilio streams one core carries.

Each stream is real speech (the committed clips, looped with pauses) rendered as Twilio media
messages. The bench feeds every message through the same path the socket handler uses
(`MediaStreamReader.feed` → `StreamSession.on_media`: reorder, μ-law decode, history) while the
speech workers run Silero on all streams in batches. ASR is replaced by an engine that returns
nothing, so only ingest and VAD are measured. CPU time (all threads) over audio time gives the
streams one core carries in real time. The websocket receive path around it is not included
(the issue measured it at about 45 µs a message with the `websockets` server).

Run: `python -m bench.bench_media_ingest` (writes bench/results/media_ingest.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from loopline.domain.clock import SystemClock
from loopline.domain.events import Event
from loopline.media.asr import AsrEngine, Transcript
from loopline.media.codec import resample, to_pcm, ulaw_encode
from loopline.media.pool import SpeechWorkers
from loopline.media.simulate import read_audio
from loopline.media.stream import StreamSession
from loopline.media.vad import WINDOW
from loopline.providers.twilio_media import MediaChunk, MediaStreamReader, MediaStreamWriter

AUDIO = Path(__file__).parents[1] / "tests" / "fixtures" / "audio"
RESULTS = Path(__file__).parent / "results" / "media_ingest.json"
DRAIN_EVERY = 250  # frames: 5 s of audio, well inside the 20 s a track keeps


class SilentEngine(AsrEngine):
    def transcribe(self, clips: Sequence[npt.NDArray[np.float32]]) -> list[Transcript]:
        return [Transcript(()) for _ in clips]


def speech_loop(seconds: float) -> bytes:
    parts = []
    for name in ("ldc93s1_8k.wav", "jfk_8k.flac", "librispeech_2412-153948-0000.flac"):
        samples, rate = read_audio(AUDIO / name)
        parts.append(resample(samples.mean(axis=1), rate, 8000))
        parts.append(np.zeros(6000, dtype=np.float32))
    one = np.concatenate(parts)
    reps = int(np.ceil(seconds * 8000 / len(one)))
    audio = np.tile(one, reps)[: int(seconds * 8000)]
    return ulaw_encode(to_pcm(audio))


async def run(streams: int, seconds: float) -> dict[str, Any]:
    audio = speech_loop(seconds)
    workers = SpeechWorkers(engine_factory=SilentEngine, workers=1)
    await workers.start()
    await workers.load()
    events: list[Event] = []

    async def publish(event: Event) -> str:
        events.append(event)
        return "0"

    async def nobody() -> str | None:
        return None

    sessions = []
    readers = []
    messages: list[list[str]] = []
    for s in range(streams):
        writer = MediaStreamWriter(stream_sid=f"MZ{s:032x}", call_sid=f"CA{s:032x}")
        reader = MediaStreamReader()
        reader.feed(writer.connected())
        reader.feed(writer.start(("inbound",), {"call_id": f"c{s}"}))
        offset = (s * 1609) % len(audio)  # streams are not in step
        shifted = audio[offset:] + audio[:offset]
        frames = [shifted[i : i + 160] for i in range(0, len(shifted) - 159, 160)]
        messages.append(
            [writer.media("inbound", f, timestamp_ms=i * 20) for i, f in enumerate(frames)]
        )
        session = StreamSession(
            call_id=f"c{s}",
            workers=workers,
            publish=publish,
            clock=SystemClock(),
            agent_lookup=nobody,
            tracks=("inbound",),
        )
        await session.__aenter__()
        sessions.append(session)
        readers.append(reader)

    frames_each = len(messages[0])
    parse_cpu = 0.0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(frames_each):
        t = time.process_time()
        for reader, session, stream in zip(readers, sessions, messages, strict=True):
            message = reader.feed(stream[i])
            assert isinstance(message, MediaChunk)
            session.on_media(message)
        parse_cpu += time.process_time() - t
        if i % 5 == 4:
            await asyncio.sleep(0)  # let the VAD batcher take its turn, as the loop would
        if i % DRAIN_EVERY == DRAIN_EVERY - 1:
            # Faster than real time, the VAD may fall behind by more than a track keeps
            # (`_HISTORY_S`) and skip audio: let it catch up now and then (live, the audio
            # comes at 1x and it never does).
            for session in sessions:
                await workers.vad_drained(session.tracks["inbound"])
    for session in sessions:
        await workers.vad_drained(session.tracks["inbound"])
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    windows = workers.metrics.vad_windows_total
    expected = sum(session.tracks["inbound"].now_ms * 8 // WINDOW for session in sessions)
    for session in sessions:
        await session.__aexit__(None, None, None)
    await workers.stop()
    if windows < expected:
        raise RuntimeError(f"the VAD skipped audio: {windows} windows of {expected}")
    audio_s = streams * frames_each * 0.02
    return {
        "streams": streams,
        "audio_seconds_per_stream": round(frames_each * 0.02, 1),
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        "ingest_us_per_message": round(parse_cpu / (streams * frames_each) * 1e6, 2),
        "cpu_ms_per_stream_second": round(cpu / audio_s * 1000, 3),
        "realtime_streams_per_core": round(audio_s / cpu, 1),
        "vad_windows": workers.metrics.vad_windows_total,
        "vad_model_calls": workers.metrics.vad_batches_total,
        "utterances_closed": workers.metrics.asr_clips_total,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, nargs="*", default=[64, 256])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    runs = [asyncio.run(run(n, args.seconds)) for n in args.streams]
    result = {
        "bench": "media_ingest",
        "command": "python -m bench.bench_media_ingest",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "goal_realtime_streams_per_core": 400,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
