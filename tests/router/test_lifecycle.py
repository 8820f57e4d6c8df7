"""The call lifecycle on memory state with an injected clock: no server, no sleeps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio

from loopline.agents.directory import AgentDirectory
from loopline.config import parse_deployment
from loopline.domain import FakeClock, InboundCall, Presence
from loopline.domain.events import CallTransferred, Event
from loopline.journey import NoIntent, NoJourney
from loopline.policies import PolicySet
from loopline.providers.crm import ChainedCrm
from loopline.providers.twilio_rest import CallControl
from loopline.router.answers import Connect, Enqueue, Hangup
from loopline.router.context import ContextBuilder
from loopline.router.lifecycle import CallRouter
from loopline.state.memory import MemoryEventBus, MemoryStateStore


@dataclass
class RecordingControl(CallControl):
    """Stands in for Twilio's REST API; the router's use of it is what is under test."""

    redirects: list[tuple[str, str]] = field(default_factory=list)

    async def redirect(self, provider_call_id: str, url: str) -> None:
        self.redirects.append((provider_call_id, url))

    async def hangup(self, provider_call_id: str) -> None:
        return None


def deployment(agents: list[dict[str, Any]], policies: list[dict[str, Any]]) -> Any:
    return parse_deployment(
        {
            "queues": [{"name": "sales"}, {"name": "support"}, {"name": "retention"}],
            "agents": [
                {"endpoint": {"kind": "client", "address": a["id"]}, "name": a["id"], **a}
                for a in agents
            ],
            "policies": policies,
            "default_route": {"queue": "support"},
            "tracking_numbers": [{"number": "+15005550100", "campaign": "spring-sale"}],
            "routing": {"offer_timeout_s": 10},
        }
    )


@dataclass
class World:
    router: CallRouter
    state: MemoryStateStore
    clock: FakeClock
    control: RecordingControl
    events: list[Event]
    seq: int = 0

    async def call(self, caller: str = "+15125550111", dialed: str = "+15005550100") -> Any:
        self.seq += 1
        inbound = InboundCall(
            provider_call_id=f"CA{self.seq:032d}",
            from_number=caller,
            to_number=dialed,
            received_at=self.clock.now(),
        )
        return await self.router.on_incoming(inbound)

    async def available(self, *agent_ids: str) -> None:
        for agent_id in agent_ids:
            await self.router.set_presence(agent_id, Presence.AVAILABLE)


@pytest_asyncio.fixture
async def make_world(clock: FakeClock) -> AsyncIterator[Any]:
    made: list[MemoryEventBus] = []

    async def _make(
        agents: list[dict[str, Any]], policies: list[dict[str, Any]] | None = None
    ) -> World:
        dep = deployment(agents, policies or [])
        state, bus = MemoryStateStore(), MemoryEventBus()
        made.append(bus)
        events: list[Event] = []
        original = bus.publish

        async def publish(event: Event) -> str:
            events.append(event)
            return await original(event)

        bus.publish = publish  # type: ignore[method-assign]
        directory = AgentDirectory(dep.agents, state, bus)
        await directory.register_all()
        control = RecordingControl()
        router = CallRouter(
            deployment=dep,
            state=state,
            bus=bus,
            policies=PolicySet.compile(dep.policies, dep.default_route),
            agents=directory,
            context=ContextBuilder(dep, ChainedCrm([]), NoJourney(), NoIntent()),
            call_control=control,
            clock=clock,
            public_url="https://calls.example.com",
        )
        return World(router, state, clock, control, events)

    yield _make
    for bus in made:
        await bus.close()


async def test_capacity_two_agent_takes_two_calls_then_queues(make_world) -> None:  # type: ignore[no-untyped-def]
    world = await make_world([{"id": "a", "capacity": 2}])
    await world.available("a")
    first, second, third = await world.call(), await world.call(), await world.call()
    assert isinstance(first, Connect) and isinstance(second, Connect)
    assert isinstance(third, Enqueue) and third.queue == "support"
    assert (await world.state.get_agent("a")).load == 2  # type: ignore[union-attr]


async def test_provider_retry_answers_the_same_plan_without_a_new_call(make_world) -> None:  # type: ignore[no-untyped-def]
    world = await make_world([{"id": "a"}])
    await world.available("a")
    inbound = InboundCall(
        provider_call_id="CA" + "1" * 32,
        from_number="+15125550111",
        to_number="+15005550100",
        received_at=world.clock.now(),
    )
    first = await world.router.on_incoming(inbound)
    again = await world.router.on_incoming(inbound)
    assert isinstance(first, Connect) and isinstance(again, Connect)
    assert first.call_id == again.call_id
    assert world.router.stats.received == 1


async def test_expired_offer_moves_to_next_agent_and_redirects(make_world) -> None:  # type: ignore[no-untyped-def]
    world = await make_world([{"id": "a"}, {"id": "b"}])
    await world.available("a", "b")
    answer = await world.call()
    assert isinstance(answer, Connect)
    world.clock.advance(9)
    await world.router.sweep()
    assert not world.control.redirects  # not yet expired
    world.clock.advance(2)
    await world.router.sweep()
    moved = [e for e in world.events if isinstance(e, CallTransferred)]
    assert [(e.from_agent_id, e.reason) for e in moved] == [(answer.agent_id, "expired")]
    call = await world.state.get_call(answer.call_id)
    assert call is not None and call.agent_id not in (None, answer.agent_id)
    assert world.control.redirects == [
        (
            "CA" + "0" * 31 + "1",
            f"https://calls.example.com/twilio/connect?call_id={answer.call_id}",
        )
    ]
    plan = await world.router.on_connect(answer.call_id)
    assert isinstance(plan, Connect) and plan.agent_id == call.agent_id and not plan.start_stream


async def test_relaxation_step_lets_a_less_skilled_agent_take_a_waiting_call(make_world) -> None:  # type: ignore[no-untyped-def]
    policies = [
        {
            "name": "churn",
            "when": 'call.campaign == "spring-sale"',
            "route": {
                "queue": "retention",
                "skills": {"retention": 4},
                "steps": [{"after_s": 60, "skills": {"support": 3}}],
            },
        }
    ]
    world = await make_world([{"id": "s", "skills": {"support": 3}}], policies)
    await world.available("s")
    answer = await world.call()
    assert isinstance(answer, Enqueue) and answer.queue == "retention"
    world.clock.advance(30)
    await world.router.sweep()
    assert not world.control.redirects
    world.clock.advance(31)
    await world.router.sweep()
    call = await world.state.get_call(answer.call_id)
    assert call is not None and call.agent_id == "s"
    assert call.decision is not None and call.decision.step == 1
    assert "step 1" in call.decision.reason
    assert len(world.control.redirects) == 1


async def test_freed_agent_takes_highest_priority_then_longest_waiting(make_world) -> None:  # type: ignore[no-untyped-def]
    policies = [
        {
            "name": "vip",
            "when": 'caller.number == "+14155550142"',
            "route": {"queue": "sales", "priority": 90},
        },
    ]
    world = await make_world([{"id": "a"}], policies)
    await world.available("a")
    busy = await world.call()
    assert isinstance(busy, Connect)
    assert await world.router.accept("a", busy.call_id)
    early = await world.call(caller="+15125550111")
    world.clock.advance(5)
    later = await world.call(caller="+15125550112")
    world.clock.advance(5)
    vip = await world.call(caller="+14155550142")
    assert all(isinstance(x, Enqueue) for x in (early, later, vip))
    await world.router.end_call(busy.call_id, reason="completed")
    assert (await world.state.get_call(vip.call_id)).agent_id == "a"  # type: ignore[union-attr]
    assert await world.router.accept("a", vip.call_id)
    await world.router.end_call(vip.call_id, reason="completed")
    assert (await world.state.get_call(early.call_id)).agent_id == "a"  # type: ignore[union-attr]
    assert (await world.state.get_call(later.call_id)).agent_id is None  # type: ignore[union-attr]


async def test_caller_hanging_up_in_queue_leaves_the_queue(make_world) -> None:  # type: ignore[no-untyped-def]
    world = await make_world([{"id": "a"}])
    answer = await world.call()
    assert isinstance(answer, Enqueue)
    assert [q.call_id for q in await world.state.queued("support")] == [answer.call_id]
    gone = await world.router.on_queue_exit(answer.call_id, "hangup")
    assert isinstance(gone, Hangup)
    assert await world.state.queued("support") == []
    await world.available("a")
    assert not world.control.redirects


async def test_sticky_routes_a_returning_caller_to_their_last_agent(make_world) -> None:  # type: ignore[no-untyped-def]
    policies = [
        {"name": "all", "when": "true", "route": {"queue": "support", "strategy": "sticky"}}
    ]
    world = await make_world([{"id": "a"}, {"id": "b"}, {"id": "c"}], policies)
    await world.available("a", "b", "c")
    first = await world.call(caller="+15125550111")
    assert isinstance(first, Connect)
    assert await world.router.accept(first.agent_id, first.call_id)
    await world.router.end_call(first.call_id, reason="completed")
    again = await world.call(caller="+15125550111")
    assert isinstance(again, Connect) and again.agent_id == first.agent_id


@pytest.mark.parametrize(
    ("at", "open_"),
    [
        (datetime(2026, 1, 5, 14, 0, tzinfo=UTC), True),  # Monday 09:00 New York
        (datetime(2026, 1, 5, 12, 59, tzinfo=UTC), False),  # Monday 07:59
        (datetime(2026, 1, 10, 16, 0, tzinfo=UTC), True),  # Saturday 11:00
        (datetime(2026, 1, 11, 16, 0, tzinfo=UTC), False),  # Sunday: closed
        (datetime(2026, 12, 25, 16, 0, tzinfo=UTC), False),  # holiday
    ],
)
def test_business_hours(at: datetime, open_: bool) -> None:
    from datetime import date

    from loopline.config.schema import BusinessHours
    from loopline.router.hours import time_facts

    hours = BusinessHours(
        timezone="America/New_York",
        days={"mon": "08:00-20:00", "sat": "10:00-14:00"},
        holidays=[date(2026, 12, 25)],
    )
    assert time_facts(hours, at).in_business_hours is open_
