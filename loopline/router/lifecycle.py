"""The call lifecycle: webhook → context → intent → decision → reservation → answer.

Also the moves after that: accept, reject, no-answer, expiry, hang-up, and dequeuing a waiting
call when an agent frees up. Every move publishes events; records and desktops subscribe.
Live state is the only shared memory between nodes, so any node can take any step.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from loopline.agents.directory import AgentDirectory
from loopline.config.schema import DeploymentConfig
from loopline.domain.agents import AgentSnapshot, Presence
from loopline.domain.calls import (
    CallState,
    CallStatus,
    Decision,
    InboundCall,
    QueuedCall,
    QueueStats,
)
from loopline.domain.clock import Clock
from loopline.domain.events import (
    CallAnswered,
    CallEnded,
    CallerView,
    CallOffered,
    CallQueued,
    CallReceived,
    CallRouted,
    CallTransferred,
    DecisionView,
)
from loopline.domain.journey import JourneyMatch
from loopline.policies import PolicySet, decide, eligible, rank, requirements_at
from loopline.providers.twilio_rest import CallControl, CallControlError
from loopline.router.answers import Answer, Connect, Enqueue, Fallback, Hangup
from loopline.router.context import CRM_OVER_BUDGET, ContextBuilder
from loopline.router.governance import Governance
from loopline.state.base import EventBus, StateStore, StateUnavailable

log = logging.getLogger(__name__)

Trigger = Literal["webhook", "reroute", "dequeue", "expired"]
DIAL_FAILED = frozenset({"busy", "no-answer", "failed"})
CALL_OVER = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


@dataclass
class RouterStats:
    """Counters for /healthz and tests; per node."""

    received: int = 0
    offered: int = 0
    queued: int = 0
    fallbacks: int = 0
    dequeued: int = 0
    redirect_failures: int = 0
    last_error: str | None = None
    by_policy: dict[str, int] = field(default_factory=dict)


class CallRouter:
    def __init__(
        self,
        *,
        deployment: DeploymentConfig,
        state: StateStore,
        bus: EventBus,
        policies: PolicySet,
        agents: AgentDirectory,
        context: ContextBuilder,
        call_control: CallControl,
        clock: Clock,
        public_url: str,
        governance: Governance | None = None,
    ) -> None:
        self._deployment = deployment
        self._state = state
        self._bus = bus
        self._policies = policies
        self._agents = agents
        self._context = context
        self._control = call_control
        self._clock = clock
        self._public_url = public_url.rstrip("/")
        self._offer_ttl = float(deployment.routing.offer_timeout_s)
        self._queues = {q.name: q for q in deployment.queues}
        self._routes = {p.name: p.route for p in policies.policies}
        self._governance = governance
        # Opted-out callers (ADMT) get the plain default route and nothing else.
        self._plain = PolicySet.compile([], policies.default)
        self.stats = RouterStats()

    # -- the webhook -------------------------------------------------------------------------
    async def on_incoming(self, inbound: InboundCall) -> Answer:
        """Route a new call. Never raises for a state outage: the caller gets the fallback."""
        try:
            return await self._incoming(inbound)
        except StateUnavailable as exc:
            self.stats.fallbacks += 1
            self.stats.last_error = str(exc)
            log.error("live state unavailable (%s); answering with the fallback route", exc)
            return self.fallback()

    def fallback(self) -> Fallback:
        routing = self._deployment.routing
        return Fallback(number=routing.fallback_number, message=routing.fallback_message)

    async def _incoming(self, inbound: InboundCall) -> Answer:
        now = self._clock.now()
        existing = await self._state.call_id_for(inbound.provider_call_id)
        if existing is not None:
            # A provider retry of a webhook we already handled: answer the same plan again.
            call = await self._state.get_call(existing)
            if call is not None:
                return _governed(call, await self._current_plan(call, start_stream=True))
        if not await self._state.claim_once(f"voice:{inbound.provider_call_id}", 3600):
            call_id = await self._state.call_id_for(inbound.provider_call_id)
            call = await self._state.get_call(call_id) if call_id else None
            if call is None:
                return Hangup()
            return _governed(call, await self._current_plan(call, start_stream=True))

        self.stats.received += 1
        call_id = "CL" + secrets.token_hex(12)
        governance = self._governance
        skip_intent = None
        if governance is not None:

            def skip_intent(crm: dict[str, Any], journey: JourneyMatch | None) -> bool:
                return governance.opt_out(inbound.digits, crm, journey) is not None

        context = await self._context.build(
            call_id, inbound, await self._queue_stats(now), now, skip_intent=skip_intent
        )
        opt_out = None
        consent = None
        if governance is not None:
            opt_out = governance.opt_out(inbound.digits, context.crm, context.journey)
            consent = governance.consent(context.caller)
        call = CallState(
            call_id=call_id,
            provider_call_id=inbound.provider_call_id,
            context=context,
            received_at=now,
            consent=consent,
            admt_opt_out=opt_out,
        )
        await self._state.put_call(call)
        await self._bus.publish(
            CallReceived(
                call_id=call_id,
                at=now,
                provider_call_id=inbound.provider_call_id,
                caller=CallerView(number=context.caller.number, name=context.caller.name),
                dialed=context.dialed,
                campaign=context.campaign,
                consent=consent,
                admt_opt_out=opt_out,
            )
        )
        return _governed(call, await self._route(call, "webhook", start_stream=True))

    async def _queue_stats(self, now: datetime) -> dict[str, QueueStats]:
        return await self._state.queue_stats_many(list(self._queues), now)

    # -- deciding and reserving --------------------------------------------------------------
    async def _route(self, call: CallState, trigger: Trigger, *, start_stream: bool) -> Answer:
        decision, agent_id = await self.decide_and_reserve(call)
        if agent_id is not None:
            return await self._offer(call, decision, agent_id, trigger, start_stream=start_stream)
        return await self._enqueue(call, decision, trigger, start_stream=start_stream)

    async def decide_and_reserve(self, call: CallState) -> tuple[Decision, str | None]:
        """The routing hot path: agents' live state, the decision, and the atomic reservation
        of the best candidate who still has room (None when nobody has)."""
        now = self._clock.now()
        waited = (now - call.queued_at).total_seconds() if call.queued_at else 0.0
        opted_out = call.admt_opt_out is not None
        last_agent = (
            None if opted_out else await self._state.get_last_agent(call.context.caller.number)
        )
        # Only agents with room can be reserved, so only they are ranked: the trail's
        # rejections are those who had room but not the skills, queue or language.
        routable = await self._agents.routable()
        tried = call.tried_agents
        snapshots = [s for s in routable if s.agent.id not in tried] if tried else routable
        decision = decide(
            call.context,
            self._plain if opted_out else self._policies,
            snapshots,
            now,
            waited_s=waited,
            last_agent_id=last_agent,
        )
        if call.admt_opt_out is not None:
            decision.reason = f"{_opt_out_reason(call.admt_opt_out)}; {decision.reason}"
        without_room = self._agents.size - len(routable)
        if without_room:
            decision.reason += f"; {without_room} without room not considered"
        if call.context.crm_status == "over_budget":
            decision.reason += f"; {CRM_OVER_BUDGET}"
        self.stats.by_policy[decision.policy] = self.stats.by_policy.get(decision.policy, 0) + 1
        agent_id = await self._state.reserve(
            call.call_id, [c.agent_id for c in decision.candidates], self._offer_ttl, now
        )
        return decision, agent_id

    async def _offer(
        self,
        call: CallState,
        decision: Decision,
        agent_id: str,
        trigger: Trigger,
        *,
        start_stream: bool,
    ) -> Answer:
        now = self._clock.now()
        agent = self._agents.get(agent_id)
        assert agent is not None, "reserved an agent that is not configured"
        call = call.model_copy(
            update={
                "status": CallStatus.OFFERED,
                "decision": decision,
                "agent_id": agent_id,
                "tried_agents": [*call.tried_agents, agent_id],
            }
        )
        await self._state.put_call(call)
        self.stats.offered += 1
        await self._bus.publish(
            CallRouted(
                call_id=call.call_id,
                at=now,
                decision=decision,
                outcome="offered",
                agent_id=agent_id,
                trigger=trigger,
            )
        )
        ctx = call.context
        await self._bus.publish(
            CallOffered(
                call_id=call.call_id,
                at=now,
                agent_id=agent_id,
                caller=CallerView(number=ctx.caller.number, name=ctx.caller.name),
                crm=ctx.crm,
                journey=ctx.journey,
                intent=ctx.intent,
                decision=DecisionView(
                    policy=decision.policy, queue=decision.queue, reason=decision.reason
                ),
                expires_at=_after(now, self._offer_ttl),
            )
        )
        return Connect(
            call_id=call.call_id,
            agent_id=agent_id,
            endpoint=agent.endpoint,
            timeout_s=decision.timeout_s,
            start_stream=start_stream,
        )

    async def _enqueue(
        self, call: CallState, decision: Decision, trigger: Trigger, *, start_stream: bool
    ) -> Answer:
        now = self._clock.now()
        queued_at = call.queued_at or now
        call = call.model_copy(
            update={
                "status": CallStatus.QUEUED,
                "decision": decision,
                "agent_id": None,
                "queued_at": queued_at,
            }
        )
        await self._state.put_call(call)
        await self._state.enqueue(
            QueuedCall(
                call_id=call.call_id,
                queue=decision.queue,
                priority=decision.priority,
                enqueued_at=queued_at,
            )
        )
        self.stats.queued += 1
        await self._bus.publish(
            CallRouted(
                call_id=call.call_id, at=now, decision=decision, outcome="queued", trigger=trigger
            )
        )
        await self._bus.publish(
            CallQueued(
                call_id=call.call_id, at=now, queue=decision.queue, priority=decision.priority
            )
        )
        return Enqueue(call_id=call.call_id, queue=decision.queue, start_stream=start_stream)

    async def _current_plan(self, call: CallState, *, start_stream: bool) -> Answer:
        """What a call should be doing now, from live state (redirects and retries land here)."""
        # Answered: the agent accepted on the desktop before the provider fetched this plan
        # (a dequeue's redirect); ring that agent, never route the call a second time.
        if call.status in (CallStatus.OFFERED, CallStatus.ANSWERED) and call.agent_id:
            agent = self._agents.get(call.agent_id)
            if agent is not None:
                timeout = call.decision.timeout_s if call.decision else 20
                return Connect(
                    call_id=call.call_id,
                    agent_id=agent.id,
                    endpoint=agent.endpoint,
                    timeout_s=timeout,
                    start_stream=start_stream,
                )
        if call.status == CallStatus.QUEUED and call.decision is not None:
            return Enqueue(call_id=call.call_id, queue=call.decision.queue, start_stream=False)
        if call.status == CallStatus.ENDED:
            return Hangup()
        return await self._route(call, "reroute", start_stream=start_stream)

    # -- provider callbacks ------------------------------------------------------------------
    async def on_connect(self, call_id: str) -> Answer:
        """A redirect (after a reject, an expiry or a dequeue) asks what the call does now."""
        try:
            call = await self._state.get_call(call_id)
            if call is None:
                return Hangup()
            return await self._current_plan(call, start_stream=False)
        except StateUnavailable:
            self.stats.fallbacks += 1
            return self.fallback()

    async def on_dial_status(self, call_id: str, dial_status: str) -> Answer:
        """The <Dial> to an agent finished: completed ends the call, a failure tries the next."""
        try:
            call = await self._state.get_call(call_id)
            if call is None:
                return Hangup()
            if dial_status in DIAL_FAILED and call.status == CallStatus.OFFERED:
                await self._drop_offer(call, reason=dial_status)
                fresh = await self._state.get_call(call_id)
                return await self._route(fresh or call, "reroute", start_stream=False)
            if dial_status in ("completed", "answered"):
                await self.end_call(call_id, reason="completed")
                return Hangup()
            if dial_status == "canceled":
                await self.end_call(call_id, reason="caller-hangup")
                return Hangup()
            return await self._current_plan(call, start_stream=False)
        except StateUnavailable:
            self.stats.fallbacks += 1
            return self.fallback()

    async def on_status(self, provider_call_id: str, call_status: str) -> None:
        """Twilio's statusCallback for the caller's leg: a final status ends the call."""
        if call_status not in CALL_OVER:
            return
        call_id = await self._state.call_id_for(provider_call_id)
        if call_id is not None:
            await self.end_call(call_id, reason=call_status)

    async def on_queue_exit(self, call_id: str, queue_result: str) -> Answer:
        if queue_result in ("hangup", "error", "system-error"):
            await self.end_call(call_id, reason="caller-hangup")
            return Hangup()
        return await self.on_connect(call_id)

    # -- the agent's side --------------------------------------------------------------------
    async def accept(self, agent_id: str, call_id: str) -> bool:
        now = self._clock.now()
        if not await self._state.confirm(call_id, agent_id, now):
            return False
        call = await self._state.get_call(call_id)
        if call is not None:
            call = call.model_copy(update={"status": CallStatus.ANSWERED, "answered_at": now})
            await self._state.put_call(call)
            await self._state.set_last_agent(call.context.caller.number, agent_id)
        await self._bus.publish(CallAnswered(call_id=call_id, at=now, agent_id=agent_id))
        state = await self._state.get_agent(agent_id)
        if state is not None:
            await self._agents.announce(state, now)
        return True

    async def reject(self, agent_id: str, call_id: str, reason: str = "rejected") -> bool:
        """The agent declined (or the offer expired): move the call to the next agent."""
        call = await self._state.get_call(call_id)
        if call is None or call.agent_id != agent_id or call.status != CallStatus.OFFERED:
            return False
        await self._drop_offer(call, reason=reason)
        await self._move_on(call.call_id)
        return True

    async def _move_on(self, call_id: str) -> None:
        """Route a call whose offer fell through, then point the live call at the new plan."""
        call = await self._state.get_call(call_id)
        if call is None:
            return
        await self._route(call, "reroute", start_stream=False)
        await self._redirect(call)

    async def _drop_offer(self, call: CallState, *, reason: str) -> None:
        now = self._clock.now()
        agent_id = call.agent_id
        if agent_id is None:
            return
        state = await self._state.release(call.call_id, agent_id, now)
        await self._state.put_call(
            call.model_copy(update={"status": CallStatus.RECEIVED, "agent_id": None})
        )
        await self._bus.publish(
            CallTransferred(call_id=call.call_id, at=now, from_agent_id=agent_id, reason=reason)
        )
        if state is not None:
            await self._agents.announce(state, now)

    async def _redirect(self, call: CallState) -> None:
        url = f"{self._public_url}/twilio/connect?call_id={call.call_id}"
        try:
            await self._control.redirect(call.provider_call_id, url)
        except CallControlError as exc:
            self.stats.redirect_failures += 1
            self.stats.last_error = str(exc)
            log.error("redirect through the provider failed", extra={"call_id": call.call_id})

    async def end_call(self, call_id: str, *, reason: str) -> None:
        """Idempotent: release whatever the call holds, leave its queue, announce the end."""
        now = self._clock.now()
        call = await self._state.get_call(call_id)
        if call is None or call.status == CallStatus.ENDED:
            return
        freed: str | None = None
        if call.agent_id is not None:
            state = await self._state.release(call_id, call.agent_id, now)
            if state is not None:
                freed = call.agent_id
                await self._agents.announce(state, now)
        if call.status == CallStatus.QUEUED and call.decision is not None:
            await self._state.claim_queued(call.decision.queue, call_id)
        ended = call.model_copy(update={"status": CallStatus.ENDED, "ended_at": now})
        await self._state.put_call(ended)
        await self._bus.publish(
            CallEnded(
                call_id=call_id,
                at=now,
                agent_id=call.agent_id,
                reason=reason,
                duration_s=(now - call.received_at).total_seconds(),
            )
        )
        await self._state.delete_call(call_id)
        if freed is not None:
            await self.dispatch_to_agent(freed)

    # -- dequeuing ---------------------------------------------------------------------------
    async def set_presence(self, agent_id: str, presence: Presence) -> None:
        await self._agents.set_presence(agent_id, presence, self._clock.now())
        if presence == Presence.AVAILABLE:
            await self.dispatch_to_agent(agent_id)

    async def dispatch_to_agent(self, agent_id: str) -> bool:
        """Offer the agent the best waiting call they can take: highest priority, then longest
        waiting, across the queues they serve. True when a call was dequeued to them."""
        agent = self._agents.get(agent_id)
        state = await self._state.get_agent(agent_id)
        if agent is None or state is None or not state.has_room:
            return False
        now = self._clock.now()
        waiting: list[QueuedCall] = []
        for queue in agent.queues or await self._state.queue_names():
            waiting.extend(await self._state.queued(queue, limit=20))
        waiting.sort(key=lambda q: (-q.priority, q.enqueued_at))
        for item in waiting:
            call = await self._state.get_call(item.call_id)
            if call is None or call.decision is None:
                continue
            route = self._routes.get(call.decision.policy, self._policies.default)
            waited = (now - item.enqueued_at).total_seconds()
            needs = requirements_at(route, waited)
            snapshot = AgentSnapshot(agent=agent, state=state)
            why_not = eligible(snapshot, needs, route.queue)
            if why_not is not None:
                continue
            if not await self._state.claim_queued(item.queue, item.call_id):
                continue  # another node took it
            reserved = await self._state.reserve(item.call_id, [agent_id], self._offer_ttl, now)
            if reserved is None:
                await self._state.enqueue(item)  # lost a race for the agent: back in place
                return False
            ranking = rank(route, [snapshot], call.context, now, waited)
            decision = call.decision.model_copy(
                update={
                    "candidates": ranking.candidates,
                    "rejected": {},
                    "step": needs.step_index,
                    "priority": needs.priority,
                    "required_skills": dict(needs.skills),
                    "reason": f"dequeued to {agent_id} after {waited:.0f}s in {item.queue}"
                    + (f" (step {needs.step_index} in force)" if needs.step_index else ""),
                    "decided_at": now,
                }
            )
            self.stats.dequeued += 1
            await self._offer(call, decision, agent_id, "dequeue", start_stream=False)
            fresh = await self._state.get_call(item.call_id)
            await self._redirect(fresh or call)
            return True
        return False

    async def sweep(self) -> None:
        """Periodic work on every node: expired offers move on; waiting calls meet free agents
        (relaxed steps may make an agent eligible as the wait grows)."""
        now = self._clock.now()
        for res in await self._state.claim_expired(now):
            call = await self._state.get_call(res.call_id)
            if call is None or call.agent_id != res.agent_id or call.status != CallStatus.OFFERED:
                continue
            await self._state.put_call(
                call.model_copy(update={"status": CallStatus.RECEIVED, "agent_id": None})
            )
            await self._bus.publish(
                CallTransferred(
                    call_id=call.call_id, at=now, from_agent_id=res.agent_id, reason="expired"
                )
            )
            state = await self._state.get_agent(res.agent_id)
            if state is not None:
                await self._agents.announce(state, now)
            await self._move_on(call.call_id)
        if await self._state.queue_names():
            for snap in await self._agents.routable():
                await self.dispatch_to_agent(snap.agent.id)


def _opt_out_reason(via: str) -> str:
    # The wording `compliance.admt.via_of_reason` reads back when counting opt-outs.
    return f"ADMT opt-out ({via}): default route, no intent scoring or automated ranking"


def _governed(call: CallState, answer: Answer) -> Answer:
    """The first answer of a call carries its consent: the disclosure before the stream, or
    no stream at all where the policy forbids one."""
    consent = call.consent
    if consent is None or not isinstance(answer, Connect | Enqueue) or not answer.start_stream:
        return answer
    return answer.model_copy(update={"consent": consent, "start_stream": consent.stream})


def _after(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)
