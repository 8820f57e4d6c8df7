"""The Media Streams reader: recorded-format messages in, typed messages out; never raises."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopline.media.reorder import TrackReorderBuffer
from loopline.providers.twilio_media import (
    DtmfDigit,
    MediaChunk,
    MediaStreamReader,
    MediaStreamWriter,
    Rejected,
    StreamConnected,
    StreamMark,
    StreamStarted,
    StreamStopped,
)

FIXTURE = Path(__file__).parents[1] / "fixtures" / "twilio_media" / "two_tracks.jsonl"
SID = "MZ18ad3ab5a668481ce02b83e7395059f0"


def recorded() -> list[str]:
    return FIXTURE.read_text().splitlines()


def started_reader() -> MediaStreamReader:
    reader = MediaStreamReader()
    for line in recorded()[:2]:
        assert not isinstance(reader.feed(line), Rejected)
    return reader


def test_recorded_stream_parses_in_order() -> None:
    reader = MediaStreamReader()
    out = [reader.feed(line) for line in recorded()]
    assert [type(m) for m in out] == [
        StreamConnected,
        StreamStarted,
        MediaChunk,
        MediaChunk,
        MediaChunk,
        MediaChunk,
        MediaChunk,
        DtmfDigit,
        StreamMark,
        StreamStopped,
    ]
    start = out[1]
    assert isinstance(start, StreamStarted)
    assert start.stream_sid == SID
    assert start.call_sid == "CA0123456789abcdef0123456789abcdef"
    assert start.tracks == ("inbound", "outbound")
    assert start.custom_parameters == {"call_id": "c-0001"}
    media = [m for m in out if isinstance(m, MediaChunk)]
    assert [(m.track, m.chunk, m.timestamp_ms) for m in media] == [
        ("inbound", 1, 5),
        ("outbound", 1, 5),
        ("inbound", 2, 25),
        ("outbound", 3, 45),
        ("outbound", 2, 25),
    ]
    assert media[0].payload == bytes([0x00]) * 160
    assert out[7] == DtmfDigit(track="inbound", digit="5")
    assert out[8] == StreamMark(name="greeting-done")
    assert reader.accepted == 10 and reader.rejected == {}


def test_recorded_tracks_reorder_apart() -> None:
    reader = MediaStreamReader()
    buffers = {"inbound": TrackReorderBuffer(), "outbound": TrackReorderBuffer()}
    played: dict[str, list[int]] = {"inbound": [], "outbound": []}
    for line in recorded():
        message = reader.feed(line)
        if isinstance(message, MediaChunk):
            for chunk, payload in buffers[message.track].push(message.chunk, message.payload):
                played[message.track].append(chunk)
                assert len(payload) == 160
    assert played == {"inbound": [1, 2], "outbound": [1, 2, 3]}


def _media(**overrides: Any) -> str:
    body: dict[str, Any] = {
        "track": "inbound",
        "chunk": "7",
        "timestamp": "140",
        "payload": base64.b64encode(b"\xff" * 160).decode(),
    }
    body.update(overrides)
    return json.dumps({"event": "media", "streamSid": SID, "media": body})


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_message"),
        ('"media"', "bad_message"),
        ('{"event": "telepathy"}', "unknown_event"),
        ('{"no_event": 1}', "bad_message"),
        (_media(payload="!!!not base64!!!"), "bad_payload"),
        (_media(payload=""), "bad_payload"),
        (_media(payload=base64.b64encode(b"\x00" * 20_000).decode()), "bad_payload"),
        (_media(payload=12), "bad_payload"),
        (_media(chunk="0"), "bad_message"),
        (_media(chunk="-3"), "bad_message"),
        (_media(chunk="seven"), "bad_message"),
        (_media(chunk=True), "bad_message"),
        (_media(timestamp=None), "bad_message"),
        (_media(track="sideways"), "bad_message"),
        (json.dumps({"event": "media", "streamSid": "MZother", "media": {}}), "wrong_stream"),
        (json.dumps({"event": "media", "streamSid": SID, "media": "x"}), "bad_message"),
        (json.dumps({"event": "dtmf", "streamSid": SID, "dtmf": {"digit": "55"}}), "bad_message"),
        (json.dumps({"event": "start", "start": {}}), "out_of_order"),
        ('{"event": "connected", "protocol": "Call", "version": "1.0.0"}', "out_of_order"),
        ("x" * 70_000, "bad_message"),
    ],
)
def test_bad_messages_are_rejected_by_kind(raw: str, kind: str) -> None:
    reader = started_reader()
    assert reader.feed(raw) == Rejected(kind)  # type: ignore[arg-type]
    assert reader.rejected == {kind: 1}
    # The stream goes on: the next good message still parses.
    assert isinstance(reader.feed(_media()), MediaChunk)


@pytest.mark.parametrize(
    "raw",
    [
        _media(),
        json.dumps(
            {"event": "dtmf", "streamSid": SID, "dtmf": {"track": "inbound_track", "digit": "1"}}
        ),
        json.dumps({"event": "stop", "streamSid": SID, "stop": {}}),
    ],
)
def test_messages_before_start_are_out_of_order(raw: str) -> None:
    reader = MediaStreamReader()
    assert reader.feed(raw) == Rejected("out_of_order")


def test_nothing_after_stop() -> None:
    reader = MediaStreamReader()
    for line in recorded():
        reader.feed(line)
    assert reader.feed(_media()) == Rejected("out_of_order")


@pytest.mark.parametrize(
    ("fmt", "ok"),
    [
        ({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}, True),
        ({"encoding": "audio/x-alaw", "sampleRate": 8000, "channels": 1}, False),
        ({"encoding": "audio/x-mulaw", "sampleRate": 16000, "channels": 1}, False),
        ({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 2}, False),
    ],
)
def test_only_8k_mulaw_mono_starts(fmt: dict[str, Any], ok: bool) -> None:
    start = {
        "event": "start",
        "start": {"streamSid": SID, "callSid": "CA1", "tracks": ["inbound"], "mediaFormat": fmt},
        "streamSid": SID,
    }
    result = MediaStreamReader().feed(json.dumps(start))
    assert isinstance(result, StreamStarted) is ok


def test_writer_round_trips_through_reader() -> None:
    writer = MediaStreamWriter(stream_sid="MZabc", call_sid="CAdef")
    reader = MediaStreamReader()
    messages = [
        writer.connected(),
        writer.start(("inbound", "outbound"), {"call_id": "c-9"}),
        writer.media("inbound", b"\x01" * 160, timestamp_ms=0),
        writer.media("outbound", b"\x02" * 160, timestamp_ms=0),
        writer.media("inbound", b"\x03" * 160, timestamp_ms=20),
        writer.dtmf("#"),
        writer.mark("m1"),
        writer.stop(),
    ]
    out = [reader.feed(m) for m in messages]
    assert not any(isinstance(m, Rejected) for m in out)
    media = [m for m in out if isinstance(m, MediaChunk)]
    assert [(m.track, m.chunk, m.timestamp_ms, m.payload[:1]) for m in media] == [
        ("inbound", 1, 0, b"\x01"),
        ("outbound", 1, 0, b"\x02"),
        ("inbound", 2, 20, b"\x03"),
    ]
    assert isinstance(out[1], StreamStarted) and out[1].custom_parameters == {"call_id": "c-9"}


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=300),
        st.binary(max_size=300),
        st.builds(
            json.dumps,
            st.dictionaries(
                st.sampled_from(["event", "streamSid", "media", "start", "dtmf", "stop"]),
                st.one_of(
                    st.none(),
                    st.integers(),
                    st.text(max_size=20),
                    st.sampled_from(["media", "start", "dtmf", "stop", "mark", "connected"]),
                    st.dictionaries(
                        st.sampled_from(
                            [
                                "track",
                                "chunk",
                                "timestamp",
                                "payload",
                                "digit",
                                "streamSid",
                                "callSid",
                                "tracks",
                            ]
                        ),
                        st.one_of(
                            st.none(),
                            st.integers(),
                            st.text(max_size=20),
                            st.lists(st.text(max_size=9), max_size=3),
                        ),
                    ),
                ),
            ),
        ),
    )
)
def test_feed_never_raises(raw: str | bytes) -> None:
    reader = started_reader()
    result = reader.feed(raw)
    assert result is not None
