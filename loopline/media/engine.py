"""`MediaEngine`: what one node holds for live media — the speech workers, the metrics, the lag
watch — and the factory of per-call `StreamSession`s."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from loopline.compliance.redaction import may_redact
from loopline.domain.clock import Clock
from loopline.domain.events import Event, MediaLag
from loopline.media.asr import AsrEngine, WhisperEngine
from loopline.media.metrics import MediaMetrics
from loopline.media.models import resolve_whisper
from loopline.media.pool import SpeechWorkers
from loopline.media.sentiment import SentimentScorer, TrainedSentiment, VaderScorer
from loopline.media.stream import StreamOptions, StreamSession
from loopline.providers.twilio_media import Track

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MediaSettings:
    """The `media:` section of a deployment, as the engine reads it."""

    model: str = "tiny.en"
    workers: int = 2
    threads_per_worker: int = 1
    pack_size: int = 8
    partial_interval_s: float = 1.0
    partial_min_s: float = 2.5
    redact: tuple[str, ...] = ("card", "cvv", "expiry", "ssn", "dob", "email", "phone", "number")
    download: bool = False
    lag_warning_s: float = 2.0
    preload: bool = False
    sentiment: str = "vader"  # or "classifier": the model at `sentiment_model`
    sentiment_model: str = "var/models/sentiment.npz"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MediaSettings:
        """From the config section's `model_dump()`; unknown keys are ignored."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "redact" in known:
            known["redact"] = tuple(known["redact"])
        return cls(**known)


def sentiment_factory(settings: MediaSettings) -> Callable[[], SentimentScorer]:
    if settings.sentiment == "classifier":
        return partial(TrainedSentiment, settings.sentiment_model)
    return VaderScorer


def whisper_factory(settings: MediaSettings) -> Callable[[], AsrEngine]:
    def build() -> AsrEngine:
        model_dir = resolve_whisper(settings.model, allow_download=settings.download)
        return WhisperEngine(
            model_dir,
            workers=settings.workers,
            threads_per_worker=settings.threads_per_worker,
            times_wanted=may_redact,
        )

    return build


@dataclass
class MediaEngine:
    settings: MediaSettings
    publish: Callable[[Event], Awaitable[str]]
    clock: Clock
    node_id: str
    workers: SpeechWorkers = field(init=False)
    engine_factory: Callable[[], AsrEngine] | None = None
    lag_check_s: float = 1.0
    _watch: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.workers = SpeechWorkers(
            engine_factory=self.engine_factory or whisper_factory(self.settings),
            scorer_factory=sentiment_factory(self.settings),
            workers=self.settings.workers,
            pack_size=self.settings.pack_size,
        )

    @property
    def metrics(self) -> MediaMetrics:
        return self.workers.metrics

    async def start(self) -> None:
        await self.workers.start()
        self._watch = asyncio.create_task(self._watch_lag(), name="media-lag-watch")
        if self.settings.preload:
            await self.workers.load()

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        await self.workers.stop()

    def session(
        self,
        call_id: str,
        *,
        agent_lookup: Callable[[], Awaitable[str | None]],
        tracks: Sequence[Track] = ("inbound", "outbound"),
    ) -> StreamSession:
        return StreamSession(
            call_id=call_id,
            workers=self.workers,
            publish=self.publish,
            clock=self.clock,
            agent_lookup=agent_lookup,
            tracks=tracks,
            options=StreamOptions(
                partial_interval_s=self.settings.partial_interval_s,
                partial_min_s=self.settings.partial_min_s,
                redact_kinds=frozenset(self.settings.redact),
            ),
        )

    async def _watch_lag(self) -> None:
        """Warn supervisors while recognition is behind (at most one warning per 5 s)."""
        quiet_until = 0.0
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.lag_check_s)
            lag = self.workers.lag_seconds()
            if lag >= self.settings.lag_warning_s and loop.time() >= quiet_until:
                quiet_until = loop.time() + 5.0
                log.warning("speech recognition is behind", extra={"lag_s": lag})
                try:
                    await self.publish(
                        MediaLag(at=self.clock.now(), node=self.node_id, lag_s=round(lag, 2))
                    )
                except Exception as exc:
                    log.warning("lag warning not published", extra={"error": repr(exc)})
