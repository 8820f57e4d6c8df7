"""Play an audio file into a Loopline node exactly as Twilio would.

A signed voice webhook first; the TwiML answer names the media stream and the call id; then a
signed websocket carrying 20 ms μ-law frames in real time (or `speed` times faster), on one
track or both. With `wait`, the transcript is read back from `GET /v1/calls/{call_id}` once the
node has closed the stream (it does so after the last final utterance is out).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import websockets
from twilio.request_validator import RequestValidator

from loopline.media.codec import TWILIO_RATE, resample, to_pcm, ulaw_encode
from loopline.media.reorder import FRAME_BYTES
from loopline.providers.twilio_media import MediaStreamWriter, Track

Floats = npt.NDArray[np.float32]
ACCOUNT_SID = "AC" + "0" * 32


class SimulationError(RuntimeError):
    """The node did not answer as Twilio expects (no stream in the TwiML, a refused socket)."""


@dataclass(frozen=True)
class CallAudio:
    inbound: bytes  # μ-law at 8 kHz
    outbound: bytes | None = None

    @property
    def tracks(self) -> tuple[Track, ...]:
        return ("inbound", "outbound") if self.outbound is not None else ("inbound",)

    @property
    def duration_s(self) -> float:
        longest = max(len(self.inbound), len(self.outbound or b""))
        return longest / TWILIO_RATE


def read_audio(path: str | Path) -> tuple[Floats, int]:
    """Samples as [n, channels] float32 and the file's rate (WAV, FLAC, OGG via soundfile)."""
    import soundfile

    data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return np.asarray(data, dtype=np.float32), int(rate)


def telephone(samples: Floats, rate: int) -> bytes:
    """One channel to what a phone line carries: 8 kHz μ-law."""
    narrow = resample(samples.astype(np.float32), rate, TWILIO_RATE)
    return ulaw_encode(to_pcm(narrow))


def load_call_audio(
    audio: str | Path, *, agent_audio: str | Path | None = None, stereo: bool = False
) -> CallAudio:
    """The caller's track from `audio` (left channel with `stereo`), the agent's from
    `agent_audio` or the right channel."""
    samples, rate = read_audio(audio)
    if stereo:
        if samples.shape[1] < 2:
            raise SimulationError(f"{audio} has one channel; --stereo needs two")
        return CallAudio(telephone(samples[:, 0], rate), telephone(samples[:, 1], rate))
    inbound = telephone(samples.mean(axis=1), rate)
    if agent_audio is None:
        return CallAudio(inbound)
    other, other_rate = read_audio(agent_audio)
    return CallAudio(inbound, telephone(other.mean(axis=1), other_rate))


DEMO_CALL = Path(__file__).parent / "demo_audio" / "call.flac"


def demo_call_audio() -> CallAudio:
    """The committed two-track demo conversation (see demo_audio/README.md)."""
    return load_call_audio(DEMO_CALL, stereo=True)


def _stream_of(twiml: str) -> tuple[str, dict[str, str]]:
    try:
        root = ET.fromstring(twiml)
    except ET.ParseError as exc:
        raise SimulationError("the voice webhook did not answer with TwiML") from exc
    stream = root.find(".//Stream")
    if stream is None or not stream.get("url"):
        raise SimulationError("the TwiML answer starts no media stream")
    params = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return str(stream.get("url")), params


async def simulate_call(
    server: str,
    audio: CallAudio,
    *,
    auth_token: str,
    to: str,
    from_: str,
    speed: float = 1.0,
    wait: bool = False,
    bearer: str | None = None,
    wait_timeout_s: float = 60.0,
    call_sid: str | None = None,
) -> dict[str, Any]:
    """Place one simulated call; returns {"call_id", "call_sid", ...} (and the transcript)."""
    base = server.rstrip("/")
    validator = RequestValidator(auth_token)
    sid = call_sid or "CA" + secrets.token_hex(16)
    form = {
        "CallSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": from_,
        "To": to,
        "CallStatus": "ringing",
        "Direction": "inbound",
    }
    voice_url = base + "/twilio/voice"
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(
            voice_url,
            data=form,
            headers={"X-Twilio-Signature": validator.compute_signature(voice_url, form)},
        )
        if answer.status_code != 200:
            raise SimulationError(f"voice webhook answered HTTP {answer.status_code}")
        stream_url, params = _stream_of(answer.text)
        call_id = params.get("call_id")
        if not call_id:
            raise SimulationError("the media stream carries no call_id parameter")
        started = time.monotonic()
        await _play(stream_url, validator, sid, params, audio, speed)
        result: dict[str, Any] = {
            "call_id": call_id,
            "call_sid": sid,
            "tracks": list(audio.tracks),
            "audio_s": round(audio.duration_s, 3),
            "played_s": round(time.monotonic() - started, 3),
        }
        if wait:
            result["transcript"] = await _transcript(http, base, call_id, bearer, wait_timeout_s)
    return result


async def play_stream(
    url: str,
    audio: CallAudio,
    *,
    auth_token: str,
    call_sid: str,
    params: dict[str, str],
    speed: float = 1.0,
) -> None:
    """Open the signed media socket a TwiML `<Stream>` names and play `audio` into it."""
    await _play(url, RequestValidator(auth_token), call_sid, params, audio, speed)


async def _play(
    url: str,
    validator: RequestValidator,
    sid: str,
    params: dict[str, str],
    audio: CallAudio,
    speed: float,
) -> None:
    headers = {"X-Twilio-Signature": validator.compute_signature(url, {})}
    writer = MediaStreamWriter(stream_sid="MZ" + secrets.token_hex(16), call_sid=sid)
    frames = (max(len(audio.inbound), len(audio.outbound or b"")) + FRAME_BYTES - 1) // (
        FRAME_BYTES
    )
    pace = 0.02 / max(speed, 1e-3)
    try:
        async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
            await ws.send(writer.connected())
            await ws.send(writer.start(audio.tracks, params))
            tracks: list[tuple[Track, bytes]] = [("inbound", audio.inbound)]
            if audio.outbound is not None:
                tracks.append(("outbound", audio.outbound))
            t0 = time.monotonic()
            for i in range(frames):
                for track, data in tracks:
                    frame = data[i * FRAME_BYTES : (i + 1) * FRAME_BYTES]
                    # Twilio keeps sending after a party stops talking: silence, not nothing.
                    frame = frame.ljust(FRAME_BYTES, b"\xff")
                    await ws.send(writer.media(track, frame, timestamp_ms=i * 20))
                delay = t0 + (i + 1) * pace - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await ws.send(writer.stop())
            # The node closes the socket once the stream's last words are published.
            with contextlib.suppress(websockets.ConnectionClosed):
                async for _ in ws:
                    pass
    except websockets.InvalidStatus as exc:
        raise SimulationError(
            f"media socket refused (HTTP {exc.response.status_code}): check TWILIO_AUTH_TOKEN"
        ) from exc


async def _transcript(
    http: httpx.AsyncClient, base: str, call_id: str, bearer: str | None, timeout_s: float
) -> list[dict[str, Any]]:
    """The stored transcript, once the records writer has caught up (stable for 0.5 s)."""
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    last: list[dict[str, Any]] = []
    stable_since = time.monotonic()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = await http.get(f"{base}/v1/calls/{call_id}", headers=headers)
        if response.status_code in (401, 403):
            raise SimulationError(f"reading the call needs a token (HTTP {response.status_code})")
        transcript: list[dict[str, Any]] = []
        if response.status_code == 200:
            transcript = list(response.json().get("transcript") or [])
        if transcript != last:
            last = transcript
            stable_since = time.monotonic()
        elif transcript and time.monotonic() - stable_since >= 0.5:
            return transcript
        await asyncio.sleep(0.1)
    return last
