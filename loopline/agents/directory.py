"""The agent directory: configured agents joined with their live state."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from loopline.domain.agents import Agent, AgentSnapshot, AgentState, Presence
from loopline.domain.events import AgentStateChanged
from loopline.state.base import EventBus, StateStore


class AgentDirectory:
    def __init__(self, agents: Iterable[Agent], state: StateStore, bus: EventBus) -> None:
        self._agents = {a.id: a for a in agents}
        self._state = state
        self._bus = bus
        # agent id -> the snapshot last built for routing; reused while the store hands back
        # the same (unchanged) state object.
        self._routable: dict[str, AgentSnapshot] = {}

    def get(self, agent_id: str) -> Agent | None:
        return self._agents.get(agent_id)

    def __contains__(self, agent_id: object) -> bool:
        return agent_id in self._agents

    @property
    def agents(self) -> list[Agent]:
        return list(self._agents.values())

    async def register_all(self) -> None:
        """Make sure every configured agent exists in live state, keeping what it holds."""
        for agent in self._agents.values():
            await self._state.register_agent(agent.id, agent.capacity)

    async def snapshots(self) -> list[AgentSnapshot]:
        """Every configured agent with its live state, in configuration order."""
        states = {s.agent_id: s for s in await self._state.list_agents()}
        out = []
        for agent in self._agents.values():
            state = states.get(agent.id) or AgentState(agent_id=agent.id, capacity=agent.capacity)
            out.append(AgentSnapshot.model_construct(agent=agent, state=state))
        return out

    async def routable(self) -> list[AgentSnapshot]:
        """The configured agents available with room, in id order: all a call can be offered
        to now. Runs on every routing decision, so it builds a snapshot only for an agent whose
        state changed since the last call."""
        previous = self._routable
        configured = self._agents
        current: dict[str, AgentSnapshot] = {}
        for state in await self._state.agents_with_room():
            agent_id = state.agent_id
            snap = previous.get(agent_id)
            if snap is None or snap.state is not state:
                agent = configured.get(agent_id)
                if agent is None:
                    continue  # in live state but no longer configured
                # Both parts are validated models already.
                snap = AgentSnapshot.model_construct(agent=agent, state=state)
            current[agent_id] = snap
        self._routable = current
        return list(current.values())

    @property
    def size(self) -> int:
        return len(self._agents)

    async def set_presence(self, agent_id: str, presence: Presence, now: datetime) -> AgentState:
        if agent_id not in self._agents:
            raise KeyError(agent_id)
        state = await self._state.set_presence(agent_id, presence, now)
        await self.announce(state, now)
        return state

    async def announce(self, state: AgentState, now: datetime) -> None:
        await self._bus.publish(
            AgentStateChanged(
                at=now, agent_id=state.agent_id, presence=state.presence, load=state.load
            )
        )
