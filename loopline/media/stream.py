"""One call's media stream: per-track audio, VAD boundaries, ASR requests and the events.

The socket handler feeds `StreamSession` the adapter's messages; the session does only cheap
work on the loop (reorder, μ-law table lookup, bookkeeping) and hands every model call to the
`SpeechWorkers`. Results come back in the order they were asked for, through one emitter task
per session, so a call's utterances are published in order and each track's redaction context
(a card was just said) follows the conversation.

Personal data stays inside: transcripts are redacted before any event is built, and log lines
carry only kinds and counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from loopline.compliance.redaction import ALL_KINDS, Redacted, RedactionContext, redact
from loopline.domain.clock import Clock
from loopline.domain.events import (
    ComplianceFlagged,
    Event,
    Redaction,
    SentimentAlert,
    SentimentUpdated,
    SentimentView,
    UtteranceEvent,
)
from loopline.media.asr import Transcript
from loopline.media.codec import TWILIO_RATE, to_float, ulaw_decode
from loopline.media.history import SampleHistory
from loopline.media.pool import AsrOutcome, SpeechWorkers
from loopline.media.reorder import FRAME_BYTES, TrackReorderBuffer
from loopline.media.sentiment import RollingSentiment
from loopline.media.vad import WINDOW, SpeechBoundary, VadSegmenter, VadStreamState
from loopline.providers.twilio_media import DtmfDigit, MediaChunk, Track

log = logging.getLogger(__name__)
Floats = npt.NDArray[np.float32]

FRAME_SAMPLES: Final = FRAME_BYTES  # one μ-law byte per sample
SPEAKERS: Final[dict[Track, Literal["caller", "agent"]]] = {
    "inbound": "caller",
    "outbound": "agent",
}
_HISTORY_S: Final = 20.0  # audio kept per track: an utterance (≤ 15 s) plus the VAD's lag
_DRAIN_S: Final = 30.0


@dataclass(frozen=True)
class StreamOptions:
    partial_interval_s: float = 1.0
    # Partials are for long utterances: a short one's final comes within a second of its end,
    # and on a loaded node every partial pass is CPU a final may wait for (at 8 calls with 1.5
    # here partials were three passes in four).
    partial_min_s: float = 2.5
    redact_kinds: Collection[str] = ALL_KINDS
    segmenter: Callable[[], VadSegmenter] = VadSegmenter


@dataclass(eq=False)
class _Pending:
    track: Track
    final: bool
    start: int  # samples on the track's timeline
    end: int
    future: asyncio.Future[AsrOutcome | None]


@dataclass(eq=False)
class TrackAudio:
    """One track: ordered frames, a bounded history, the VAD cursor and the open utterance."""

    track: Track
    session: StreamSession
    reorder: TrackReorderBuffer = field(default_factory=TrackReorderBuffer)
    segmenter: VadSegmenter = field(default_factory=VadSegmenter)
    vad_state: VadStreamState = field(default_factory=VadStreamState)
    closed: bool = False
    _history: SampleHistory = field(
        default_factory=lambda: SampleHistory(int(_HISTORY_S * TWILIO_RATE))
    )
    _vad_cursor: int = 0
    _utterance_start: int | None = None
    _last_partial: int = 0

    def push(self, chunk: int, payload: bytes) -> None:
        for number, data in self.reorder.push(chunk, payload):
            self._append(number, data)

    def flush(self) -> None:
        for number, data in self.reorder.flush():
            self._append(number, data)

    @property
    def _end(self) -> int:
        """Timeline index just past the newest sample."""
        return self._history.end

    def _append(self, chunk: int, data: bytes) -> None:
        first = (chunk - 1) * FRAME_SAMPLES
        if first != self._end:
            # A resync: the timeline jumped. Start the VAD and the history over from here.
            self._history.restart(first)
            self._vad_cursor = first
            if self._utterance_start is not None:
                self._utterance_start = None
                self.segmenter = self.session.options.segmenter()
        self._history.append(to_float(ulaw_decode(data)))

    def audio(self, start: int, end: int) -> Floats:
        """Samples [start, end) of the timeline that are still kept."""
        return self._history.read(start, end)

    # -- the VAD batcher's side --------------------------------------------------------------
    def vad_windows(self) -> tuple[Floats, int, VadStreamState] | None:
        count = (self._end - self._vad_cursor) // WINDOW
        if count <= 0:
            return None
        first = self._vad_cursor
        samples = self.audio(first, first + count * WINDOW)
        if len(samples) < count * WINDOW:  # history trimmed past the cursor: skip ahead
            self._vad_cursor = self._end - (self._end - self._vad_cursor) % WINDOW
            return None
        return samples.reshape(count, WINDOW), first, self.vad_state

    def vad_done(self, probs: Floats, first_sample: int, state: VadStreamState) -> None:
        if first_sample != self._vad_cursor:
            return  # a resync happened while the batch ran
        self.vad_state = state
        self._vad_cursor = first_sample + len(probs) * WINDOW
        for boundary in self.segmenter.feed([float(p) for p in probs], first_sample):
            self._on_boundary(boundary)
        start = self._utterance_start
        if start is not None:
            options = self.session.options
            heard = self._vad_cursor - start
            since = self._vad_cursor - self._last_partial
            if heard >= options.partial_min_s * TWILIO_RATE and (
                since >= options.partial_interval_s * TWILIO_RATE
            ):
                self._last_partial = self._vad_cursor
                self.session.request(self, start, self._vad_cursor, final=False)

    def _on_boundary(self, boundary: SpeechBoundary) -> None:
        if boundary.kind == "start":
            self._utterance_start = boundary.sample
            self._last_partial = boundary.sample
            return
        start = self._utterance_start
        self._utterance_start = None
        if start is not None and boundary.sample > start:
            self.session.request(self, start, boundary.sample, final=True)

    def close(self) -> None:
        for boundary in self.segmenter.close(self._vad_cursor):
            self._on_boundary(boundary)
        self.closed = True

    @property
    def now_ms(self) -> int:
        return self._end * 1000 // TWILIO_RATE


class StreamSession:
    """One media stream of one call. Use `async with session:` around feeding it."""

    def __init__(
        self,
        *,
        call_id: str,
        workers: SpeechWorkers,
        publish: Callable[[Event], Awaitable[Any]],
        clock: Clock,
        agent_lookup: Callable[[], Awaitable[str | None]],
        tracks: Sequence[Track] = ("inbound", "outbound"),
        options: StreamOptions | None = None,
        on_final: Callable[[UtteranceEvent], None] | None = None,
    ) -> None:
        self.call_id = call_id
        self.options = options or StreamOptions()
        self._workers = workers
        self._publish = publish
        self._clock = clock
        self._agent_lookup = agent_lookup
        self._agent_id: str | None = None
        self._agent_checked = -1e9
        self._on_final = on_final
        self.tracks: dict[Track, TrackAudio] = {
            t: TrackAudio(t, self, segmenter=self.options.segmenter()) for t in tracks
        }
        self._pending: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._context = RedactionContext()
        self._rolling: dict[Track, RollingSentiment] = {t: RollingSentiment() for t in tracks}
        self._emitter: asyncio.Task[None] | None = None
        self._dtmf_flagged_until = -1
        self._model_error_logged = False
        self.finals = 0

    async def __aenter__(self) -> StreamSession:
        self._agent_id = await self._lookup_agent(force=True)
        self._emitter = asyncio.create_task(self._emit(), name=f"media-emit-{self.call_id}")
        for track in self.tracks.values():
            self._workers.attach(track)
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.finish()
        finally:
            for track in self.tracks.values():
                track.closed = True
                self._workers.detach(track)
            if self._emitter is not None and not self._emitter.done():
                self._emitter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._emitter

    # -- in ----------------------------------------------------------------------------------
    def on_media(self, media: MediaChunk) -> None:
        track = self.tracks.get(media.track)
        if track is None or track.closed:
            return
        track.push(media.chunk, media.payload)

    async def on_dtmf(self, dtmf: DtmfDigit) -> None:
        track = self.tracks.get(dtmf.track)
        at_ms = track.now_ms if track is not None else 0
        if self._context.in_payment(at_ms):
            # The digits may be a card: they go nowhere. Supervisors learn that some were held.
            self._workers.metrics.dtmf_suppressed_total += 1
            if at_ms > self._dtmf_flagged_until:
                self._dtmf_flagged_until = self._context.payment_until_ms or at_ms
                await self._send(
                    ComplianceFlagged(
                        call_id=self.call_id,
                        at=self._clock.now(),
                        kind="dtmf_suppressed",
                        detail="keypad digits during a payment were not forwarded",
                        agent_id=self._agent_id,
                    )
                )
            return
        # Outside a payment a digit is a menu choice; it is not part of the transcript.

    async def finish(self) -> None:
        """The stream ended: close open utterances and wait (bounded) for their text."""
        if self._emitter is None or self._emitter.done():
            return
        for track in self.tracks.values():
            track.flush()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                for track in self.tracks.values():
                    await self._workers.vad_drained(track)
        for track in self.tracks.values():
            track.close()
        self._pending.put_nowait(None)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_DRAIN_S):
                await asyncio.shield(self._emitter)

    # -- ASR requests and results ------------------------------------------------------------
    def request(self, track: TrackAudio, start: int, end: int, *, final: bool) -> None:
        clip = track.audio(start, end)
        if clip.size == 0:
            return
        key = f"{self.call_id}:{track.track}"
        future = self._workers.submit(key, clip, final=final)
        self._pending.put_nowait(_Pending(track.track, final, start, end, future))

    async def _emit(self) -> None:
        while True:
            item = await self._pending.get()
            if item is None:
                return
            try:
                outcome = await item.future
            except asyncio.CancelledError:
                if item.future.cancelled():
                    continue
                raise
            except Exception as exc:
                if not self._model_error_logged:
                    self._model_error_logged = True
                    log.error(
                        "speech recognition unavailable for a stream: %s",
                        exc,
                        extra={"call_id": self.call_id},
                    )
                continue
            if outcome is None:
                continue  # a partial dropped under load
            await self._publish_outcome(item, outcome)

    async def _publish_outcome(self, item: _Pending, outcome: AsrOutcome) -> None:
        transcript = outcome.transcript
        raw = "".join(w.text for w in transcript.words)
        text = raw.strip()
        if not text:
            return
        start_ms = item.start * 1000 // TWILIO_RATE
        end_ms = item.end * 1000 // TWILIO_RATE
        redacted, context = redact(
            text,
            self._context,
            at_ms=end_ms,
            kinds=self.options.redact_kinds,
            partial=not item.final,
        )
        if item.final:
            self._context = context
        spans = _span_times(redacted, transcript, len(raw) - len(raw.lstrip()), start_ms, end_ms)
        for span in spans:
            self._workers.metrics.redacted(span.kind)
        score = round(outcome.sentiment, 4)
        agent_id = await self._lookup_agent()
        event = UtteranceEvent(
            type="utterance.final" if item.final else "utterance.partial",
            call_id=self.call_id,
            at=self._clock.now(),
            track=item.track,
            speaker=SPEAKERS[item.track],
            text=redacted.text,
            start_ms=start_ms,
            end_ms=end_ms,
            redactions=spans,
            sentiment=SentimentView(label=outcome.sentiment_label, score=score),
            agent_id=agent_id,
        )
        await self._send(event)
        if not item.final:
            self._workers.metrics.utterances_partial_total += 1
            return
        self.finals += 1
        self._workers.metrics.utterances_final_total += 1
        if self._on_final is not None:
            self._on_final(event)
        update = self._rolling[item.track].update(score)
        alert = update.alert and item.track == "inbound"
        if alert:
            self._workers.metrics.sentiment_alerts_total += 1
        await self._send(
            SentimentUpdated(
                call_id=self.call_id,
                at=self._clock.now(),
                track=item.track,
                rolling=update.rolling,
                trend=update.trend,
                alert=alert,
                agent_id=agent_id,
            )
        )
        if alert:
            # Its own event too, so a subscriber can listen for alerts alone.
            await self._send(
                SentimentAlert(
                    call_id=self.call_id,
                    at=self._clock.now(),
                    track=item.track,
                    rolling=update.rolling,
                    trend=update.trend,
                    agent_id=agent_id,
                )
            )

    async def _send(self, event: Event) -> None:
        try:
            await self._publish(event)
        except Exception as exc:  # the bus is down: this event is lost, the stream goes on
            log.warning(
                "media event not published",
                extra={"call_id": self.call_id, "event_type": event.type, "error": repr(exc)},
            )

    async def _lookup_agent(self, *, force: bool = False) -> str | None:
        # The agent is often not known when the stream starts (the call still rings), so look
        # again now and then until one has answered.
        now = time.monotonic()
        if self._agent_id is not None or (not force and now - self._agent_checked < 1.0):
            return self._agent_id
        self._agent_checked = now
        try:
            self._agent_id = await self._agent_lookup()
        except Exception as exc:
            log.warning("agent lookup failed", extra={"call_id": self.call_id, "error": repr(exc)})
        return self._agent_id


def _span_times(
    redacted: Redacted, transcript: Transcript, lead: int, start_ms: int, end_ms: int
) -> list[Redaction]:
    """Each redacted span's time, from the timestamps of the words it covers."""
    bounds: list[tuple[int, int, float, float]] = []
    cursor = -lead
    for word in transcript.words:
        bounds.append((cursor, cursor + len(word.text), word.start_s, word.end_s))
        cursor += len(word.text)
    out: list[Redaction] = []
    for span in redacted.spans:
        times = [(s, e) for a, b, s, e in bounds if a < span.end and b > span.start]
        if times:
            first = start_ms + int(min(t[0] for t in times) * 1000)
            last = start_ms + int(max(t[1] for t in times) * 1000)
        else:
            first, last = start_ms, end_ms
        out.append(Redaction(kind=span.kind, start_ms=first, end_ms=max(first, last)))
    return out
