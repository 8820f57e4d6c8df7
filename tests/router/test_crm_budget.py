"""The CRM on the routing path: its known fields reach the screen-pop typed, and a CRM over
its budget never holds the call (it routes without it and says so)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest_asyncio

from loopline.agents.directory import AgentDirectory
from loopline.config import parse_deployment
from loopline.domain import FakeClock, InboundCall, Presence
from loopline.domain.events import CallOffered, CallRouted, Event
from loopline.journey import NoIntent, NoJourney
from loopline.policies import PolicySet
from loopline.providers.crm import ChainedCrm, CrmClient, FileCrm
from loopline.router.answers import Connect
from loopline.router.context import CRM_OVER_BUDGET, ContextBuilder
from loopline.router.lifecycle import CallRouter
from loopline.state.memory import MemoryEventBus, MemoryStateStore
from tests.router.test_lifecycle import RecordingControl

CALLER = "+15125550111"


class StalledCrm(CrmClient):
    """A CRM that never answers: only the router's budget can end its look-up."""

    def __init__(self) -> None:
        self.asked = 0

    async def lookup(self, number_e164: str) -> dict[str, Any]:
        self.asked += 1
        await asyncio.Event().wait()
        return {}


Route = Callable[[CrmClient], Coroutine[Any, Any, tuple[Any, list[Event]]]]


@pytest_asyncio.fixture
async def route(clock: FakeClock) -> AsyncIterator[Route]:
    buses: list[MemoryEventBus] = []

    async def _route(crm: CrmClient) -> tuple[Any, list[Event]]:
        dep = parse_deployment(
            {
                "queues": [{"name": "support"}],
                "agents": [
                    {"id": "a", "name": "A", "endpoint": {"kind": "client", "address": "a"}}
                ],
                "default_route": {"queue": "support"},
                "crm": {"http_budget_ms": 50},
            }
        )
        state, bus = MemoryStateStore(), MemoryEventBus()
        buses.append(bus)
        events: list[Event] = []
        original = bus.publish

        async def publish(event: Event) -> str:
            events.append(event)
            return await original(event)

        bus.publish = publish  # type: ignore[method-assign]
        directory = AgentDirectory(dep.agents, state, bus)
        await directory.register_all()
        router = CallRouter(
            deployment=dep,
            state=state,
            bus=bus,
            policies=PolicySet.compile(dep.policies, dep.default_route),
            agents=directory,
            context=ContextBuilder(dep, crm, NoJourney(), NoIntent()),
            call_control=RecordingControl(),
            clock=clock,
            public_url="https://calls.example.com",
        )
        await router.set_presence("a", Presence.AVAILABLE)
        answer = await router.on_incoming(
            InboundCall(
                provider_call_id="CA" + "1" * 32,
                from_number=CALLER,
                to_number="+15005550100",
                received_at=clock.now(),
            )
        )
        return answer, events

    yield _route
    for bus in buses:
        await bus.close()


async def test_a_stalled_crm_routes_without_it_and_says_so(route: Route) -> None:
    crm = StalledCrm()
    loop = asyncio.get_running_loop()
    started = loop.time()
    answer, events = await route(ChainedCrm([crm]))
    assert loop.time() - started < 1.0  # budget 50 ms + 50 ms grace; a hang would be 120 s
    assert isinstance(answer, Connect) and crm.asked == 1
    routed = next(e for e in events if isinstance(e, CallRouted))
    offered = next(e for e in events if isinstance(e, CallOffered))
    assert CRM_OVER_BUDGET in routed.decision.reason
    assert CRM_OVER_BUDGET in offered.decision.reason  # the screen-pop's "Reason"
    assert offered.crm == {}


async def test_crm_fields_reach_the_screen_pop_typed(route: Route, tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_text(f'phone,name,LTV,churn,open tickets\n{CALLER},Ada,"$1,500",70%,1\n')
    answer, events = await route(FileCrm(path))
    offered = next(e for e in events if isinstance(e, CallOffered))
    assert offered.crm == {
        "name": "Ada",
        "lifetime_value": 1500.0,
        "churn_risk": 0.7,
        "open_tickets": 1,
    }
    assert CRM_OVER_BUDGET not in offered.decision.reason
