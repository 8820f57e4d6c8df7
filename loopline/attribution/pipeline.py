"""The outcome pipeline: a bus subscriber (consumer group "attribution") that gives every
ended call its outcome, QA score, conversions and KPI row, and takes agents' dispositions.

`call.ended` schedules the call `settle_s` later, so that its last transcript lines land
first. A sweep finds ended calls that never got their row (an event missed, a restart) and
does them too, so none is left out. Scoring is CPU work and runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from loopline.attribution.classifier import OutcomeModel
from loopline.attribution.conversions import conversions_for
from loopline.attribution.facts import CallFacts, facts_from_record
from loopline.attribution.outcomes import OutcomeRules, Prediction, disposition_outcome
from loopline.attribution.qa import Scorecard
from loopline.attribution.store import AttributionStore, RecordResult
from loopline.attribution.transcript import Line, Transcript
from loopline.attribution.transcripts import LineBuffer, stored_lines
from loopline.config.attribution import AttributionConfig
from loopline.domain.clock import Clock
from loopline.domain.events import (
    CallEnded,
    ConversionCreated,
    Event,
    OutcomeClassified,
    QaScored,
    UtteranceEvent,
)
from loopline.domain.outcomes import Outcome, QaScore
from loopline.records.base import Records
from loopline.state.base import EventBus

log = logging.getLogger(__name__)


# The event types `AttributionPipeline.observe` acts on; keep the two in step.
OBSERVED_TYPES = frozenset({"utterance.final", "call.ended"})


class UnknownCall(LookupError):
    pass


class UnknownOutcome(ValueError):
    pass


@dataclass(frozen=True)
class Scored:
    outcome: Outcome
    qa: QaScore
    transcript: Transcript


def score_call(
    rules: OutcomeRules,
    scorecard: Scorecard,
    model: OutcomeModel | None,
    facts: CallFacts,
    lines: list[Line],
    now: datetime,
    disclosure_required: bool = True,
) -> Scored:
    """Outcome and QA for one call: the CPU part, run off the event loop."""
    transcript = Transcript.of(lines)
    prediction: Prediction | None = None
    if model is not None and not transcript.empty:
        prediction = model.predict(transcript.plain())
    outcome = rules.classify(facts, transcript, prediction, now)
    qa = scorecard.score(facts.call_id, transcript, now, disclosure_required=disclosure_required)
    return Scored(outcome, qa, transcript)


@dataclass
class AttributionPipeline:
    config: AttributionConfig
    store: AttributionStore
    records: Records
    bus: EventBus
    clock: Clock
    model: OutcomeModel | None = None
    on_conversions: Callable[[], None] | None = None  # wakes the outbox
    sweep_every_s: float = 30.0
    sweep_window: timedelta = timedelta(days=7)
    retry_s: float = 1.0
    max_tries: int = 10
    # compliance.consent.agent_disclosure_required: QA checks the agent's own disclosure.
    agent_disclosure_required: bool = True
    buffer: LineBuffer = field(default_factory=LineBuffer)
    _due: list[tuple[datetime, int, str, int]] = field(default_factory=list)
    _seq: int = 0
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _rules: OutcomeRules = field(init=False)
    _scorecard: Scorecard = field(init=False)
    processed: int = 0

    def __post_init__(self) -> None:
        self._rules = OutcomeRules(self.config)
        self._scorecard = Scorecard(list(self.config.qa))

    # -- running -----------------------------------------------------------------------------
    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._consume(), name="attribution-consume")
            group.create_task(self._work(), name="attribution-work")
            group.create_task(self._sweep(), name="attribution-sweep")

    async def _consume(self) -> None:
        # Only what `observe` acts on: the bus passes over the rest (interim transcripts,
        # agent states, journeys) without waking this task or, on Redis, parsing them.
        async with self.bus.subscribe(group="attribution", types=OBSERVED_TYPES) as sub:
            async for _event_id, event in sub:
                self.observe(event)

    def observe(self, event: Event) -> None:
        if isinstance(event, UtteranceEvent):
            self.buffer.add(event)
        elif isinstance(event, CallEnded) and event.call_id is not None:
            self.schedule(event.call_id, self.clock.now() + timedelta(seconds=self.config.settle_s))

    def schedule(self, call_id: str, at: datetime, tries: int = 0) -> None:
        self._seq += 1
        heapq.heappush(self._due, (at, self._seq, call_id, tries))
        self._wake.set()

    async def _work(self) -> None:
        while True:
            now = self.clock.now()
            while self._due and self._due[0][0] <= now:
                _, _, call_id, tries = heapq.heappop(self._due)
                try:
                    done = await self.process(call_id)
                except Exception:  # one call's failure must not stop the others
                    log.exception("attribution failed for a call", extra={"call_id": call_id})
                    done = False
                if not done and tries + 1 < self.max_tries:
                    self.schedule(
                        call_id, self.clock.now() + timedelta(seconds=self.retry_s), tries + 1
                    )
            self._wake.clear()
            wait = 0.2
            if self._due:
                wait = min(wait, max(0.0, (self._due[0][0] - self.clock.now()).total_seconds()))
            try:
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _sweep(self) -> None:
        while True:
            try:
                now = self.clock.now()
                missing = await self.store.unclassified_calls(
                    ended_before=now - timedelta(seconds=self.config.settle_s),
                    since=now - self.sweep_window,
                )
                queued = {item[2] for item in self._due}
                for call_id in missing:
                    if call_id not in queued:
                        self.schedule(call_id, now)
            except Exception:  # the records may be away for a while
                log.warning("attribution sweep failed")
            await asyncio.sleep(self.sweep_every_s)

    # -- one call ----------------------------------------------------------------------------
    async def process(self, call_id: str) -> bool:
        """Classify and score one ended call; False when its record is not there yet."""
        record = await self.records.get_call(call_id)
        if record is None or record.ended_at is None:
            return False
        facts = facts_from_record(record)
        lines = self.buffer.take(call_id) + await stored_lines(self.store, call_id)
        now = self.clock.now()
        consent = record.context.get("consent") if isinstance(record.context, dict) else None
        # Only where the policy needs it: required by the deployment, and this caller's
        # jurisdiction called for a disclosure at all.
        required = self.agent_disclosure_required and (
            not isinstance(consent, dict) or bool(consent.get("disclose", True))
        )
        scored = await asyncio.to_thread(
            score_call, self._rules, self._scorecard, self.model, facts, lines, now, required
        )
        conversions = conversions_for(scored.outcome, facts, self.config)
        # QA first: the facts row written with the outcome then carries the score.
        await self.store.record_qa(scored.qa)
        result = await self.store.record_outcome(
            scored.outcome,
            facts,
            conversions,
            now=now,
            hold_s=self.config.disposition_grace_s,
            zone=self.config.timezone,
        )
        self.processed += 1
        await self._announce(scored.outcome, scored.qa, result)
        return True

    async def disposition(
        self,
        call_id: str,
        label: str,
        *,
        value: float | None,
        currency: str | None,
        notes: str | None,
        decided_by: str,
        facts: CallFacts,
    ) -> tuple[Outcome, RecordResult]:
        """The agent's word on a call: it replaces any automatic outcome, and its conversions
        go out at once."""
        if label not in self.config.labels:
            raise UnknownOutcome(label)
        now = self.clock.now()
        outcome = disposition_outcome(
            call_id,
            label,
            value=value,
            currency=currency.upper() if currency else None,
            notes=notes,
            agent_id=facts.agent_id,
            decided_by=decided_by,
            now=now,
        )
        conversions = conversions_for(outcome, facts, self.config)
        result = await self.store.record_outcome(
            outcome, facts, conversions, now=now, hold_s=0.0, zone=self.config.timezone
        )
        await self._announce(outcome, None, result)
        return outcome, result

    async def _announce(self, outcome: Outcome, qa: QaScore | None, result: RecordResult) -> None:
        events: list[Event] = []
        if result.applied:
            events.append(
                OutcomeClassified(
                    call_id=outcome.call_id,
                    at=outcome.at,
                    label=outcome.label,
                    confidence=outcome.confidence,
                    source=outcome.source,
                    evidence=outcome.evidence,
                    value=outcome.value,
                    currency=outcome.currency,
                    agent_id=outcome.agent_id,
                )
            )
        if qa is not None:
            events.append(
                QaScored(
                    call_id=qa.call_id,
                    at=qa.at,
                    score=qa.score,
                    items=qa.items,
                    agent_id=outcome.agent_id,
                )
            )
        for conv in result.created:
            events.append(
                ConversionCreated(
                    call_id=conv.call_id,
                    at=outcome.at,
                    conversion_id=conv.id,
                    name=conv.name,
                    value=conv.value,
                    currency=conv.currency,
                    destinations=conv.destinations,
                )
            )
        for event in events:
            await _publish_quietly(self.bus.publish, event)
        if result.applied and self.on_conversions is not None:
            self.on_conversions()


async def _publish_quietly(publish: Callable[[Event], Awaitable[str]], event: Event) -> None:
    try:
        await publish(event)
    except Exception:  # the records hold the truth; a lost notice is only a late screen
        log.warning("could not publish attribution event", extra={"event_type": event.type})
