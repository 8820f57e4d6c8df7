"""Twilio Media Streams, sans-IO: the socket's JSON messages in, typed messages out.

One `MediaStreamReader` per socket follows the stream's order (`connected`, then `start`, then
`media`/`dtmf`/`mark`, then `stop`). `feed` never raises: anything it cannot use comes back as a
`Rejected` naming why (a kind, never the offending value), so the socket can count it, log it
without personal data and carry on. `MediaStreamWriter` produces the same messages, as Twilio
would send them, for the call simulator and the tests.

The media path is hot (50 messages a second per track), so it reads the parsed dict directly
instead of validating through pydantic.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

Track = Literal["inbound", "outbound"]
TRACKS: Final[tuple[Track, ...]] = ("inbound", "outbound")
RejectKind = Literal[
    "bad_json", "bad_message", "bad_payload", "out_of_order", "unknown_event", "wrong_stream"
]

# A 20 ms frame of 8 kHz μ-law is 160 bytes; anything far larger is not Twilio audio.
MAX_PAYLOAD_BYTES: Final = 16_000
_MAX_MESSAGE_CHARS: Final = 64_000
_ID = re.compile(r"[0-9A-Za-z_\-]{1,64}")
_DTMF = re.compile(r"[0-9*#A-Da-d]")
_PARAM_MAX: Final = 256


@dataclass(frozen=True, slots=True)
class StreamConnected:
    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class StreamStarted:
    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[Track, ...]
    custom_parameters: Mapping[str, str]
    encoding: str
    sample_rate: int
    channels: int


@dataclass(frozen=True, slots=True)
class MediaChunk:
    track: Track
    chunk: int  # counts from 1 per track
    timestamp_ms: int  # since the stream started
    payload: bytes  # μ-law bytes


@dataclass(frozen=True, slots=True)
class DtmfDigit:
    track: Track
    digit: str


@dataclass(frozen=True, slots=True)
class StreamMark:
    name: str


@dataclass(frozen=True, slots=True)
class StreamStopped:
    call_sid: str | None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message the reader could not use; `kind` is safe to log and to count."""

    kind: RejectKind


MediaMessage = StreamConnected | StreamStarted | MediaChunk | DtmfDigit | StreamMark | StreamStopped


class _Bad(Exception):
    def __init__(self, kind: RejectKind) -> None:
        super().__init__(kind)
        self.kind: RejectKind = kind


@dataclass
class MediaStreamReader:
    """Parses one socket's messages in order; `feed` returns a message or a `Rejected`."""

    phase: Literal["new", "connected", "started", "stopped"] = "new"
    started: StreamStarted | None = None
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    def feed(self, raw: str | bytes) -> MediaMessage | Rejected:
        try:
            message = self._parse(raw)
        except _Bad as bad:
            self.rejected[bad.kind] = self.rejected.get(bad.kind, 0) + 1
            return Rejected(bad.kind)
        self.accepted += 1
        return message

    def _parse(self, raw: str | bytes) -> MediaMessage:
        if len(raw) > _MAX_MESSAGE_CHARS:
            raise _Bad("bad_message")
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise _Bad("bad_json") from None
        if not isinstance(data, dict):
            raise _Bad("bad_message")
        event = data.get("event")
        if event == "media":
            return self._media(data)
        if event == "connected":
            if self.phase != "new":
                raise _Bad("out_of_order")
            self.phase = "connected"
            return StreamConnected(
                protocol=_text(data.get("protocol", "")), version=_text(data.get("version", ""))
            )
        if event == "start":
            return self._start(data)
        if event == "dtmf":
            self._check_stream(data)
            body = _mapping(data.get("dtmf"))
            digit = body.get("digit")
            if not isinstance(digit, str) or not _DTMF.fullmatch(digit):
                raise _Bad("bad_message")
            return DtmfDigit(track=self._track(body.get("track")), digit=digit.upper())
        if event == "mark":
            self._check_stream(data)
            return StreamMark(name=_text(_mapping(data.get("mark")).get("name", "")))
        if event == "stop":
            self._check_stream(data)
            self.phase = "stopped"
            call_sid = _mapping(data.get("stop")).get("callSid")
            return StreamStopped(call_sid=call_sid if isinstance(call_sid, str) else None)
        if isinstance(event, str):
            raise _Bad("unknown_event")
        raise _Bad("bad_message")

    def _start(self, data: dict[str, Any]) -> StreamStarted:
        if self.phase not in ("new", "connected"):
            raise _Bad("out_of_order")
        body = _mapping(data.get("start"))
        fmt = _mapping(body.get("mediaFormat", {}))
        tracks_raw = body.get("tracks", ["inbound"])
        if not isinstance(tracks_raw, list) or not tracks_raw:
            raise _Bad("bad_message")
        tracks = tuple(dict.fromkeys(self._track(t) for t in tracks_raw))
        params_raw = _mapping(body.get("customParameters", {}))
        params: dict[str, str] = {}
        for key, value in params_raw.items():
            if not isinstance(value, str) or len(value) > _PARAM_MAX or len(key) > _PARAM_MAX:
                raise _Bad("bad_message")
            params[key] = value
        encoding = fmt.get("encoding", "audio/x-mulaw")
        rate = fmt.get("sampleRate", 8000)
        channels = fmt.get("channels", 1)
        if encoding != "audio/x-mulaw" or rate != 8000 or channels != 1:
            raise _Bad("bad_message")
        started = StreamStarted(
            stream_sid=_ident(body.get("streamSid", data.get("streamSid"))),
            call_sid=_ident(body.get("callSid")),
            account_sid=_ident(body.get("accountSid", "AC")),
            tracks=tracks,
            custom_parameters=params,
            encoding=encoding,
            sample_rate=rate,
            channels=channels,
        )
        self.phase = "started"
        self.started = started
        return started

    def _media(self, data: dict[str, Any]) -> MediaChunk:
        started = self.started
        if self.phase != "started" or started is None:
            raise _Bad("out_of_order")
        if data.get("streamSid") != started.stream_sid:
            raise _Bad("wrong_stream")
        body = data.get("media")
        if not isinstance(body, dict):
            raise _Bad("bad_message")
        track = body.get("track", "inbound")
        if track not in started.tracks:
            raise _Bad("bad_message")
        chunk = _count(body.get("chunk"), minimum=1)
        timestamp = _count(body.get("timestamp"), minimum=0)
        payload = body.get("payload")
        if not isinstance(payload, str) or not payload or len(payload) > MAX_PAYLOAD_BYTES * 2:
            raise _Bad("bad_payload")
        try:
            audio = binascii.a2b_base64(payload, strict_mode=True)
        except (binascii.Error, ValueError):
            raise _Bad("bad_payload") from None
        if not audio or len(audio) > MAX_PAYLOAD_BYTES:
            raise _Bad("bad_payload")
        return MediaChunk(track=track, chunk=chunk, timestamp_ms=timestamp, payload=audio)

    def _check_stream(self, data: dict[str, Any]) -> None:
        started = self.started
        if self.phase != "started" or started is None:
            raise _Bad("out_of_order")
        if data.get("streamSid") != started.stream_sid:
            raise _Bad("wrong_stream")

    @staticmethod
    def _track(value: object) -> Track:
        # Media messages say "inbound"; dtmf messages say "inbound_track".
        if isinstance(value, str):
            name = value.removesuffix("_track")
            if name == "inbound":
                return "inbound"
            if name == "outbound":
                return "outbound"
        raise _Bad("bad_message")


def _mapping(value: object) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _Bad("bad_message")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str) or len(value) > _PARAM_MAX:
        raise _Bad("bad_message")
    return value


def _ident(value: object) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise _Bad("bad_message")
    return value


def _count(value: object, *, minimum: int) -> int:
    # Twilio sends chunk and timestamp as decimal strings; numbers are accepted as well.
    if isinstance(value, bool):
        raise _Bad("bad_message")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        number = int(value)
    else:
        raise _Bad("bad_message")
    if number < minimum:
        raise _Bad("bad_message")
    return number


@dataclass
class MediaStreamWriter:
    """Writes a stream's messages exactly as Twilio sends them (for simulators and tests)."""

    stream_sid: str
    call_sid: str
    account_sid: str = "AC" + "0" * 32
    _sequence: int = 0
    _chunks: dict[str, int] = field(default_factory=dict)

    def _next(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    def connected(self) -> str:
        return json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})

    def start(
        self, tracks: Sequence[Track] = ("inbound",), parameters: Mapping[str, str] | None = None
    ) -> str:
        return json.dumps(
            {
                "event": "start",
                "sequenceNumber": self._next(),
                "start": {
                    "accountSid": self.account_sid,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": list(tracks),
                    "customParameters": dict(parameters or {}),
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
                "streamSid": self.stream_sid,
            }
        )

    def media(
        self, track: Track, payload: bytes, *, timestamp_ms: int, chunk: int | None = None
    ) -> str:
        """One media message; chunks count from 1 per track unless `chunk` is given."""
        if chunk is None:
            chunk = self._chunks.get(track, 0) + 1
        self._chunks[track] = max(chunk, self._chunks.get(track, 0))
        return json.dumps(
            {
                "event": "media",
                "sequenceNumber": self._next(),
                "media": {
                    "track": track,
                    "chunk": str(chunk),
                    "timestamp": str(timestamp_ms),
                    "payload": base64.b64encode(payload).decode("ascii"),
                },
                "streamSid": self.stream_sid,
            }
        )

    def dtmf(self, digit: str, track: Track = "inbound") -> str:
        return json.dumps(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "sequenceNumber": self._next(),
                "dtmf": {"track": f"{track}_track", "digit": digit},
            }
        )

    def mark(self, name: str) -> str:
        return json.dumps(
            {
                "event": "mark",
                "sequenceNumber": self._next(),
                "streamSid": self.stream_sid,
                "mark": {"name": name},
            }
        )

    def stop(self) -> str:
        return json.dumps(
            {
                "event": "stop",
                "sequenceNumber": self._next(),
                "streamSid": self.stream_sid,
                "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
            }
        )
