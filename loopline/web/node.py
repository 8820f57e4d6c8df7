"""One Loopline node: every part wired once, from settings, and the tasks it runs."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from loopline.agents.directory import AgentDirectory
from loopline.agents.hub import SocketHub
from loopline.attribution.service import AttributionService
from loopline.compliance.access import AccessRecords
from loopline.compliance.governance import CallGovernance
from loopline.compliance.redaction_policy import redaction_kinds
from loopline.compliance.users import seed_users
from loopline.config.settings import Settings
from loopline.domain.clock import Clock, SystemClock
from loopline.journey.base import IntentScorer, JourneyLookup, NoIntent, NoJourney
from loopline.media.asr import AsrEngine
from loopline.media.engine import MediaEngine, MediaSettings
from loopline.policies import PolicySet
from loopline.providers.crm import ChainedCrm, CrmClient, FileCrm, HttpCrm
from loopline.providers.twilio import SignatureChecker, TwilioAdapter
from loopline.providers.twilio_rest import CallControl, TwilioCallControl
from loopline.records import Records, SqlRecords
from loopline.router.context import ContextBuilder
from loopline.router.lifecycle import CallRouter
from loopline.state.base import EventBus, StateStore, StateUnavailable
from loopline.web.governance import GovernanceService
from loopline.web.journey_routes import JourneyEdge, build_journey

log = logging.getLogger(__name__)


def make_state(settings: Settings) -> tuple[StateStore, EventBus]:
    if settings.state_backend == "redis":
        from loopline.state.redis import RedisEventBus, RedisStateStore

        url = settings.env.redis_url
        if not url:
            raise ValueError(
                "state: redis needs LOOPLINE_REDIS_URL (e.g. redis://127.0.0.1:6379/0)"
            )
        return (
            RedisStateStore.from_url(url),
            RedisEventBus.from_url(url, node_id=settings.env.node_id),
        )
    from loopline.state.memory import MemoryEventBus, MemoryStateStore

    return MemoryStateStore(), MemoryEventBus()


def make_crm(settings: Settings) -> CrmClient:
    conf = settings.deployment.crm
    parts: list[CrmClient] = []
    if conf.file:
        parts.append(FileCrm(conf.file))
    if conf.http_url:
        parts.append(HttpCrm(conf.http_url, budget_s=conf.http_budget_ms / 1000))
    return ChainedCrm(parts)


def make_call_control(settings: Settings) -> CallControl:
    env = settings.env
    token = env.twilio_auth_token.get_secret_value() if env.twilio_auth_token else ""
    return TwilioCallControl(
        env.twilio_account_sid or "AC00000000000000000000000000000000",
        token,
        base_url=env.twilio_api_base_url,
    )


@dataclass
class Node:
    settings: Settings
    clock: Clock
    state: StateStore
    bus: EventBus
    records: Records
    crm: CrmClient
    call_control: CallControl
    agents: AgentDirectory
    hub: SocketHub
    router: CallRouter
    signatures: SignatureChecker | None
    twilio: TwilioAdapter = field(default_factory=TwilioAdapter)
    sweep_interval_s: float = 1.0
    # Records writers share the bus group; each waits on the database for every event, so one
    # alone fell 20-30 s behind a burst of 500 calls on PostgreSQL. SQLite takes one writer at
    # a time whatever we do, so more would only queue on its lock.
    records_writers: int = 1
    records_batch: int = 200  # events per records transaction, at most
    records_linger_s: float = 0.05  # after a part-filled batch, before taking the next
    degraded: dict[str, str] = field(default_factory=dict)
    media: MediaEngine | None = None
    journey: JourneyEdge | None = None
    access: AccessRecords | None = None  # users, API keys, audit log
    attribution: AttributionService | None = None  # outcomes, QA, conversions, KPIs
    governance: GovernanceService | None = None  # subjects, retention, ADMT (set at start)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.attribution is None:
            self.attribution = AttributionService.build(
                self.settings.deployment.attribution,
                records_url=self.settings.records_url,
                records=self.records,
                state=self.state,
                bus=self.bus,
                clock=self.clock,
                node_id=self.settings.env.node_id,
                default_region=self.settings.deployment.deployment.default_region,
            )
        consent = self.settings.deployment.compliance.consent
        self.attribution.pipeline.agent_disclosure_required = consent.agent_disclosure_required

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        clock: Clock | None = None,
        call_control: CallControl | None = None,
        crm: CrmClient | None = None,
        journey: JourneyLookup | None = None,
        intent: IntentScorer | None = None,
        records: Records | None = None,
        sweep_interval_s: float = 1.0,
        asr_engine: Callable[[], AsrEngine] | None = None,
    ) -> Node:
        clock = clock or SystemClock()
        state, bus = make_state(settings)
        crm = crm or make_crm(settings)
        control = call_control or make_call_control(settings)
        deployment = settings.deployment
        policies = PolicySet.compile(deployment.policies, deployment.default_route)
        agents = AgentDirectory(deployment.agents, state, bus)
        journey_edge, journey_intent = build_journey(settings, clock, bus)
        if journey is None and journey_edge is not None:
            journey = journey_edge.service
        intent = intent or journey_intent
        context = ContextBuilder(deployment, crm, journey or NoJourney(), intent or NoIntent())
        router = CallRouter(
            deployment=deployment,
            state=state,
            bus=bus,
            policies=policies,
            agents=agents,
            context=context,
            call_control=control,
            clock=clock,
            public_url=settings.public_url,
            governance=CallGovernance(deployment.compliance),
        )
        token = settings.env.twilio_auth_token
        # PCI is always redacted, PHI too for health deployments, whatever `media.redact` says.
        media_conf = deployment.media.model_dump()
        media_conf["redact"] = sorted(
            redaction_kinds(deployment.media.redact, phi=deployment.compliance.redact_phi)
        )
        return cls(
            settings=settings,
            clock=clock,
            state=state,
            bus=bus,
            records=records or SqlRecords(settings.records_url),
            crm=crm,
            call_control=control,
            agents=agents,
            hub=SocketHub(bus),
            router=router,
            signatures=SignatureChecker(token.get_secret_value()) if token else None,
            sweep_interval_s=sweep_interval_s,
            records_writers=1 if settings.records_url.startswith("sqlite") else 4,
            journey=journey_edge,
            access=AccessRecords(settings.records_url),
            media=MediaEngine(
                MediaSettings.from_dict(media_conf),
                publish=bus.publish,
                clock=clock,
                node_id=settings.env.node_id,
                engine_factory=asr_engine,
            ),
        )

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        await self.records.start()
        if self.access is not None:
            await self.access.start()
            deployment = self.settings.deployment
            await seed_users(
                self.access.users,
                deployment.users,
                self.settings.demo_password,
                self.clock.now(),
                known_agents={a.id for a in deployment.agents},
            )
            self.governance = GovernanceService.build(self)
            await self.governance.audit_config_load()
        try:
            await self.agents.register_all()
        except StateUnavailable as exc:
            self.degraded["state"] = str(exc)
        self._spawn("hub", self.hub.run)
        for n in range(self.records_writers):
            name = "records-writer" if n == 0 else f"records-writer-{n + 1}"
            self._spawn(name, functools.partial(self._write_records, name))
        self._spawn("sweeper", self._sweep_forever)
        if self.governance is not None:
            self._spawn("retention", self.governance.run_sweeper)
        if self.attribution is not None:
            self._spawn("attribution", self.attribution.run)
        if self.media is not None:
            await self.media.start()
        # The screen-pop path must be live before the first webhook is answered.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self.hub.ready.wait()

    async def stop(self, drain_s: float = 2.0) -> None:
        if self.media is not None:
            await self.media.stop()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=drain_s)
        self._tasks.clear()
        if self.journey is not None:
            with contextlib.suppress(Exception):
                await self.journey.service.close()
        for closer in (self.call_control.close, self.crm.close, self.bus.close, self.state.close):
            with contextlib.suppress(Exception):
                await closer()
        await self.records.close()
        if self.access is not None:
            await self.access.close()

    def _spawn(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        self._tasks.append(asyncio.create_task(self._supervised(name, body), name=name))

    async def _supervised(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        """Keep a node task alive: a failure (Redis gone) is logged and retried with backoff."""
        delay = 0.2
        while True:
            try:
                await body()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the task must outlive any one failure
                self.degraded[name] = f"{exc.__class__.__name__}: {exc}"
                log.warning("node task failed; retrying", extra={"task": name})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _write_records(self, name: str = "records-writer") -> None:
        # One transaction for whatever has piled up since the last one: under load the
        # per-transaction cost (begin, commit, the SQLite thread hop) is shared by the batch.
        types = self.records.event_types
        async with self.bus.subscribe(group="records", types=types) as sub:
            self.degraded.pop(name, None)
            while batch := await sub.next_batch(self.records_batch):
                await self.records.apply_many(batch)
                if len(batch) < self.records_batch:
                    # A transaction costs milliseconds of CPU whatever it holds: at a low call
                    # rate, waiting a moment lets the next one carry several events, not one.
                    await asyncio.sleep(self.records_linger_s)

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.router.sweep()
                self.degraded.pop("sweeper", None)
            except StateUnavailable as exc:
                self.degraded["sweeper"] = str(exc)
            await asyncio.sleep(self.sweep_interval_s)

    async def health(self) -> dict[str, object]:
        reasons: list[str] = []
        try:
            await self.state.ping()
        except StateUnavailable as exc:
            reasons.append(f"live state unreachable: {exc}")
        try:
            await self.records.ping()
        except Exception as exc:  # any driver error means the records are not usable
            reasons.append(f"records unreachable: {exc.__class__.__name__}")
        if self.signatures is None:
            reasons.append("TWILIO_AUTH_TOKEN is not set: every webhook is refused")
        reasons.extend(f"{k}: {v}" for k, v in sorted(self.degraded.items()) if k != "state")
        if not reasons:
            return {"status": "ok", "node": self.settings.env.node_id}
        return {"status": "degraded", "reasons": reasons, "node": self.settings.env.node_id}
