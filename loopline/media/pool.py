"""The speech worker pool: every model call of the node runs here, never on the event loop.

- ASR: `workers` threads share one Whisper model. Each takes up to `pack_size` utterances
  (finals, oldest first, at most 28 s of audio) and runs one pass over them, each in its own
  short window, encoded and decoded as one batch (`asr.WhisperEngine`). Partials run only when
  no other pass is in flight, no final waits and the workers were less than half busy over the
  last 10 s, batched among themselves: on two cores a partial pass beside a final's would slow
  the final.
  Ingest never waits on it: `submit` only queues. Under load partials go first: a newer partial
  of a track replaces the one waiting, and one that waited longer than `partial_max_age_s` is
  dropped. The age of the oldest final still waiting is the lag (`asr_lag_seconds`).
- VAD: one thread runs Silero for all streams at once, every `vad_tick_s`, one batch per step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from loopline.media.asr import AsrEngine, Transcript, pack_groups
from loopline.media.metrics import MediaMetrics
from loopline.media.sentiment import Label, SentimentScorer, VaderScorer
from loopline.media.vad import WINDOW, SileroVad, VadStreamState

log = logging.getLogger(__name__)
Floats = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class AsrOutcome:
    transcript: Transcript
    sentiment: float
    sentiment_label: Label = "neutral"


@dataclass(eq=False)
class _Job:
    key: str  # call and track: a newer partial of the same key replaces an older one
    clip: Floats
    final: bool
    enqueued: float
    future: asyncio.Future[AsrOutcome | None]


class VadClient(Protocol):
    """What the batcher needs of a track: its next windows, and where to put the results."""

    closed: bool

    def vad_windows(self) -> tuple[Floats, int, VadStreamState] | None:
        """Full windows ([k, 256]) not yet run, the sample they start at, the model state."""

    def vad_done(self, probs: Floats, first_sample: int, state: VadStreamState) -> None: ...


class BusyMeter:
    """How busy the speech workers were over the last `window_s` seconds: the share of
    worker-time spent in passes. Pure: times are the caller's clock."""

    def __init__(self, window_s: float = 10.0) -> None:
        self.window_s = window_s
        self._passes: deque[tuple[float, float]] = deque()  # (start, end)

    def add(self, start: float, end: float) -> None:
        self._passes.append((start, end))

    def share(self, now: float, workers: int) -> float:
        since = now - self.window_s
        while self._passes and self._passes[0][1] <= since:
            self._passes.popleft()
        busy = sum(min(end, now) - max(start, since) for start, end in self._passes)
        return max(0.0, busy) / (self.window_s * max(1, workers))


@dataclass
class SpeechWorkers:
    engine_factory: Callable[[], AsrEngine]
    vad_factory: Callable[[], SileroVad] = SileroVad
    scorer_factory: Callable[[], SentimentScorer] = VaderScorer
    workers: int = 2
    pack_size: int = 8
    partial_max_age_s: float = 1.0
    # Partials run only while the workers were less busy than this over the last 10 s: on a
    # loaded node the CPU they take is what the finals wait for.
    partial_busy_max: float = 0.5
    vad_tick_s: float = 0.032
    metrics: MediaMetrics = field(default_factory=MediaMetrics)
    clock: Callable[[], float] = time.monotonic
    _finals: deque[_Job] = field(default_factory=deque)
    _partials: dict[str, _Job] = field(default_factory=dict)
    _in_flight: list[_Job] = field(default_factory=list)
    _passes: int = 0  # passes running now
    _busy: BusyMeter = field(default_factory=BusyMeter)
    _ready: asyncio.Event | None = None
    _asr_exec: ThreadPoolExecutor | None = None
    _vad_exec: ThreadPoolExecutor | None = None
    _engine: AsrEngine | None = None
    _scorer: SentimentScorer | None = None
    _vad: SileroVad | None = None
    _loading: asyncio.Task[None] | None = None
    _vad_loading: asyncio.Task[None] | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _clients: set[VadClient] = field(default_factory=set)
    _vad_wake: asyncio.Event | None = None
    _drained: asyncio.Condition | None = None

    # -- life --------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._tasks:
            return
        self._ready = asyncio.Event()
        self._drained = asyncio.Condition()
        self._vad_wake = asyncio.Event()
        self._asr_exec = ThreadPoolExecutor(max(1, self.workers), thread_name_prefix="asr")
        self._vad_exec = ThreadPoolExecutor(1, thread_name_prefix="vad")
        for i in range(max(1, self.workers)):
            self._tasks.append(asyncio.create_task(self._asr_worker(), name=f"asr-worker-{i}"))
        self._tasks.append(asyncio.create_task(self._vad_loop(), name="vad-batcher"))

    async def stop(self) -> None:
        tasks = [*self._tasks]
        if self._loading is not None:
            tasks.append(self._loading)
        if self._vad_loading is not None:
            tasks.append(self._vad_loading)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._loading = self._vad_loading = None
        for job in [*self._finals, *self._partials.values(), *self._in_flight]:
            if not job.future.done():
                job.future.cancel()
        self._finals.clear()
        self._partials.clear()
        # Threads still inside a model call finish it; nothing waits for them here.
        for executor in (self._asr_exec, self._vad_exec):
            if executor is not None:
                executor.shutdown(wait=False, cancel_futures=True)
        self._asr_exec = self._vad_exec = None

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    async def load(self) -> None:
        """Load the models now (they load on first use otherwise)."""
        await asyncio.gather(self._ensure_asr(), self._ensure_vad())

    async def _ensure_asr(self) -> None:
        if self._engine is not None:
            return
        if self._loading is None or (self._loading.done() and self._loading.exception()):
            self._loading = asyncio.create_task(self._load_asr(), name="asr-load")
        await asyncio.shield(self._loading)

    async def _load_asr(self) -> None:
        loop = asyncio.get_running_loop()

        def build() -> tuple[AsrEngine, SentimentScorer]:
            return self.engine_factory(), self.scorer_factory()

        self._engine, self._scorer = await loop.run_in_executor(self._asr_exec, build)

    async def _ensure_vad(self) -> None:
        if self._vad is not None:
            return
        if self._vad_loading is None or (
            self._vad_loading.done() and self._vad_loading.exception()
        ):
            self._vad_loading = asyncio.create_task(self._load_vad(), name="vad-load")
        await asyncio.shield(self._vad_loading)

    async def _load_vad(self) -> None:
        loop = asyncio.get_running_loop()
        self._vad = await loop.run_in_executor(self._vad_exec, self.vad_factory)

    # -- ASR ---------------------------------------------------------------------------------
    def submit(self, key: str, clip: Floats, *, final: bool) -> asyncio.Future[AsrOutcome | None]:
        """Queue a clip (8 kHz); never blocks. A dropped partial resolves to None."""
        loop = asyncio.get_running_loop()
        job = _Job(key, clip, final, self.clock(), loop.create_future())
        if final:
            self._finals.append(job)
            # The final supersedes any partial of the same utterance still waiting.
            stale = self._partials.pop(key, None)
            if stale is not None:
                self._drop(stale)
        else:
            old = self._partials.pop(key, None)
            if old is not None:
                self._drop(old)
            self._partials[key] = job
        self._update_gauges()
        self._notify()
        return job.future

    def _drop(self, job: _Job) -> None:
        self.metrics.partials_dropped_total += 1
        if not job.future.done():
            job.future.set_result(None)

    def _notify(self) -> None:
        if self._ready is not None:
            self._ready.set()

    def _takeable(self) -> bool:
        if self._finals:
            return True
        return bool(self._partials) and not self._in_flight and self._partials_affordable()

    def _partials_affordable(self) -> bool:
        return self._busy.share(self.clock(), self.workers) < self.partial_busy_max

    def _take_pack(self) -> list[_Job]:
        now = self.clock()
        for key, job in list(self._partials.items()):
            if now - job.enqueued > self.partial_max_age_s:
                del self._partials[key]
                self._drop(job)
        if self._finals:
            # Shared out among the idle workers: two passes of two clips side by side finish
            # sooner than one pass of four (one thread each), and a pass waits for its slowest.
            idle = max(1, self.workers - self._passes)
            share = min(self.pack_size, -(-len(self._finals) // idle))
            durations = [len(j.clip) / 8000 for j in self._finals]
            count = pack_groups(durations, share)
            jobs = [self._finals.popleft() for _ in range(count)]
        elif not self._in_flight and self._partials_affordable():
            # Partials are a luxury: they run only on an idle pool, packed together, so a
            # final never waits behind one and never shares its pass (and its CPU) with one.
            durations = [len(j.clip) / 8000 for j in self._partials.values()]
            count = pack_groups(durations, self.pack_size)
            jobs = [self._partials.pop(key) for key in list(self._partials)[:count]]
        else:
            jobs = []
        self._update_gauges()
        return jobs

    def _update_gauges(self) -> None:
        now = self.clock()
        oldest = [j.enqueued for j in self._finals] + [
            j.enqueued for j in self._in_flight if j.final
        ]
        self.metrics.asr_lag_seconds = round(max(0.0, now - min(oldest)), 3) if oldest else 0.0
        self.metrics.asr_queue_finals = len(self._finals)
        self.metrics.asr_queue_partials = len(self._partials)

    def lag_seconds(self) -> float:
        self._update_gauges()
        return self.metrics.asr_lag_seconds

    async def _asr_worker(self) -> None:
        ready = self._ready
        assert ready is not None
        loop = asyncio.get_running_loop()
        while True:
            while not self._takeable():
                ready.clear()
                await ready.wait()
            try:
                await self._ensure_asr()
            except Exception as exc:
                self._fail_all(exc)
                continue
            jobs = self._take_pack()
            if not jobs:
                continue
            self._in_flight.extend(jobs)
            self._passes += 1
            started = time.perf_counter()
            began = self.clock()
            try:
                outcomes = await loop.run_in_executor(
                    self._asr_exec, self._transcribe, [j.clip for j in jobs]
                )
            except Exception as exc:
                self.metrics.model_errors_total += 1
                log.warning("speech recognition pass failed", extra={"error": type(exc).__name__})
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            finally:
                self._passes -= 1
                self._busy.add(began, self.clock())
                for job in jobs:
                    self._in_flight.remove(job)
                ready.set()  # partials may be takeable again
                self.metrics.asr_seconds_total += time.perf_counter() - started
                self._update_gauges()
            self.metrics.asr_packs_total += 1
            self.metrics.asr_clips_total += len(jobs)
            if self._engine is not None:
                self.metrics.asr_retries_total = self._engine.retried_total
            for job, outcome in zip(jobs, outcomes, strict=True):
                if not job.future.done():
                    job.future.set_result(outcome)

    def _fail_all(self, exc: BaseException) -> None:
        self.metrics.model_errors_total += 1
        for job in [*self._finals, *self._partials.values()]:
            if not job.future.done():
                job.future.set_exception(exc)
        self._finals.clear()
        self._partials.clear()
        self._update_gauges()

    def _transcribe(self, clips: Sequence[Floats]) -> list[AsrOutcome]:
        """On a worker thread: one Whisper pass over the pack, then the sentiment of its texts."""
        engine, scorer = self._engine, self._scorer
        assert engine is not None and scorer is not None
        transcripts = engine.transcribe(clips)
        judged = scorer.judge([t.text for t in transcripts])
        return [
            AsrOutcome(t, score, label)
            for t, (label, score) in zip(transcripts, judged, strict=True)
        ]

    # -- VAD ---------------------------------------------------------------------------------
    def attach(self, client: VadClient) -> None:
        self._clients.add(client)
        if self._vad_wake is not None:
            self._vad_wake.set()

    def detach(self, client: VadClient) -> None:
        self._clients.discard(client)

    async def vad_drained(self, client: VadClient) -> None:
        """Wait until the client has no full window left to run."""
        assert self._drained is not None
        if self._vad_wake is not None:
            self._vad_wake.set()
        async with self._drained:
            await self._drained.wait_for(lambda: client.closed or client.vad_windows() is None)

    async def _vad_loop(self) -> None:
        assert self._vad_wake is not None and self._drained is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._clients:
                self._vad_wake.clear()
                await self._vad_wake.wait()
            batch: list[tuple[VadClient, Floats, int, VadStreamState]] = []
            for client in list(self._clients):
                if client.closed:
                    continue
                ready = client.vad_windows()
                if ready is not None:
                    batch.append((client, *ready))
            if batch:
                try:
                    await self._ensure_vad()
                    vad = self._vad
                    assert vad is not None
                    probs, states = await loop.run_in_executor(
                        self._vad_exec, vad.run, [b[1] for b in batch], [b[3] for b in batch]
                    )
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.metrics.model_errors_total += 1
                    log.warning("voice activity pass failed", extra={"error": type(exc).__name__})
                    await asyncio.sleep(1.0)
                    continue
                self.metrics.vad_batches_total += max((len(b[1]) for b in batch), default=0)
                for (client, windows, first, _), p, state in zip(batch, probs, states, strict=True):
                    self.metrics.vad_windows_total += len(windows)
                    if not client.closed:
                        client.vad_done(p, first, state)
                async with self._drained:
                    self._drained.notify_all()
                continue
            async with self._drained:
                self._drained.notify_all()
            self._vad_wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.vad_tick_s):
                    await self._vad_wake.wait()


def windows_of(samples: Floats) -> int:
    return len(samples) // WINDOW
