"""The pipecat side of the side-by-side media bench: one FastAPI/uvicorn process, one listen-only
pipecat pipeline per Twilio Media Stream, built as pipecat's own Twilio examples build a bot.

Runs under .venv-pipecat (bench/pipecat/setup.sh), never the node's venv; the orchestrator
(bench/bench_media_pipecat.py) starts it. Per stream:

    transport.input() -> VADProcessor(SileroVADAnalyzer) -> WhisperSTTService -> Stamp

over `FastAPIWebsocketTransport` with `TwilioFrameSerializer`, the stream's SIDs read from its
`start` message with pipecat's `parse_telephony_websocket`. Everything is pipecat's default except
what the bench must fix: the Whisper model (the same tiny.en directory the node uses, int8 as the
node runs it), `auto_hang_up=False` (there is no Twilio account to call back) and, when asked,
the VAD's `stop_secs`. `Stamp`, the last processor, notes the wall-clock time of each
VAD stop and TranscriptionFrame; the orchestrator reads them from `GET /events`.

A two-track call is two streams (Twilio `<Stream track="inbound_track">` and
`<Stream track="outbound_track">`): `TwilioFrameSerializer` ignores the `track` field, so one
pipeline can hear only one side of a call.

Run: `.venv-pipecat/bin/python bench/pipecat/server.py --port 8765 --model DIR [--stop-secs S]`
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import uvicorn
from fastapi import FastAPI, WebSocket
from loguru import logger
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import Frame, TranscriptionFrame, VADUserStoppedSpeakingFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.runner.utils import parse_telephony_websocket
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.services.whisper.stt import WhisperSTTService
from pipecat.transports.websocket.fastapi import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from pipecat.workers.runner import WorkerRunner


class Stamp(FrameProcessor):
    """Notes when the VAD closes a segment and when its text comes out (wall clock)."""

    def __init__(self, stream: str, events: list[dict[str, Any]]) -> None:
        super().__init__()
        self._stream = stream
        self._events = events

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TranscriptionFrame):
            self._events.append(
                {"stream": self._stream, "kind": "text", "t": time.time(), "text": frame.text}
            )
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._events.append({"stream": self._stream, "kind": "vad_stop", "t": time.time()})
        await self.push_frame(frame, direction)


def build_app(model: str, compute_type: str, stop_secs: float | None) -> FastAPI:
    app = FastAPI()
    events: list[dict[str, Any]] = []
    streams = {"open": 0, "peak": 0}

    @app.get("/events")
    async def read_events() -> dict[str, Any]:
        return {"events": events, "streams": dict(streams), "pid": os.getpid()}

    @app.post("/reset")
    async def reset() -> dict[str, int]:
        events.clear()
        streams["peak"] = streams["open"]
        return {"open": streams["open"]}

    @app.websocket("/ws")
    async def media(websocket: WebSocket) -> None:
        await websocket.accept()
        _, call_data = await parse_telephony_websocket(websocket)
        body = call_data["body"]
        stream = f"{body['call']}:{body['track']}"
        serializer = TwilioFrameSerializer(
            stream_sid=call_data["stream_id"],
            call_sid=call_data["call_id"],
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
        )
        transport = FastAPIWebsocketTransport(
            websocket=websocket,
            params=FastAPIWebsocketParams(
                audio_in_enabled=True, add_wav_header=False, serializer=serializer
            ),
        )
        vad_params = VADParams() if stop_secs is None else VADParams(stop_secs=stop_secs)
        stt = WhisperSTTService(
            settings=WhisperSTTService.Settings(model=model),
            device="cpu",
            compute_type=compute_type,
        )
        pipeline = Pipeline(
            [
                transport.input(),
                VADProcessor(vad_analyzer=SileroVADAnalyzer(params=vad_params)),
                stt,
                Stamp(stream, events),
            ]
        )
        worker = PipelineWorker(pipeline, params=PipelineParams())

        @transport.event_handler("on_client_disconnected")
        async def on_client_disconnected(transport: Any, client: Any) -> None:
            await worker.cancel()

        streams["open"] += 1
        streams["peak"] = max(streams["peak"], streams["open"])
        try:
            runner = WorkerRunner(handle_sigint=False)
            await runner.add_workers(worker)
            await runner.run()
        finally:
            streams["open"] -= 1

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--model", required=True, help="CTranslate2 Whisper model directory")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--stop-secs", type=float, default=None, help="default: pipecat's")
    args = parser.parse_args()
    logger.remove()
    logger.add(lambda message: print(message, end="", flush=True), level="WARNING")
    app = build_app(args.model, args.compute_type, args.stop_secs)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
