"""The socket hub: routing, ids, the resume ring, supervisor coalescing, overflow."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from loopline.agents.hub import TOO_SLOW, Connection, Merge, SocketHub, merge_rule, with_id
from loopline.domain.agents import Presence
from loopline.domain.events import (
    AgentStateChanged,
    CallAnswered,
    CallerView,
    CallReceived,
    Event,
    LeaseGranted,
    MediaLag,
    SentimentUpdated,
    SessionTouched,
    UtteranceEvent,
)
from loopline.state.memory import MemoryEventBus

AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def said(call: str, text: str, *, final: bool = True, track: str = "inbound") -> UtteranceEvent:
    return UtteranceEvent(
        type="utterance.final" if final else "utterance.partial",
        call_id=call,
        at=AT,
        track=track,  # type: ignore[arg-type]
        speaker="caller" if track == "inbound" else "agent",
        text=text,
        start_ms=0,
        end_ms=100,
        agent_id="ana",
    )


def feel(call: str, rolling: float, *, alert: bool = False) -> SentimentUpdated:
    return SentimentUpdated(
        call_id=call, at=AT, track="inbound", rolling=rolling, trend=0, alert=alert, agent_id="ana"
    )


def texts(conn: Connection) -> list[Any]:
    return [json.loads(m).get("text", json.loads(m)["type"]) for m in conn.take()]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (said("c1", "hi", final=False), Merge(key=("partial", "c1", "inbound"))),
        (said("c1", "hi"), Merge(supersedes=("partial", "c1", "inbound"))),
        (SessionTouched(at=AT, session_id="s1", kind="pageview"), Merge(key=("session", "s1"))),
        (feel("c1", 0.2), Merge(key=("sentiment", "c1", "inbound"))),
        (feel("c1", -0.8, alert=True), Merge()),  # an alert is never merged away
        (
            AgentStateChanged(at=AT, agent_id="ana", presence=Presence.AWAY),
            Merge(key=("agent", "ana")),
        ),
        (MediaLag(at=AT, node="n1", lag_s=3.0), Merge(key=("lag", "n1"))),
        (CallAnswered(call_id="c1", at=AT, agent_id="ana"), Merge()),
    ],
)
def test_merge_rules(event: Event, expected: Merge) -> None:
    assert merge_rule(event) == expected


def test_with_id_puts_the_id_first_and_stays_json() -> None:
    message = with_id('{"type":"x","n":1}', "17-3")
    assert json.loads(message) == {"id": "17-3", "type": "x", "n": 1}
    assert message.startswith('{"id":"17-3",')


def test_agents_get_their_own_events_supervisors_everything_but_web_traffic() -> None:
    hub = SocketHub(MemoryEventBus())
    ana, ben = hub.add_agent("ana"), hub.add_agent("ben")
    sup = hub.add_supervisor("sam")
    hub.dispatch(said("c1", "for ana"), "1-0")
    hub.dispatch(
        CallReceived(
            call_id="c2",
            at=AT,
            provider_call_id="CA1",
            caller=CallerView(number="+15125550111"),
            dialed="+15005550100",
        ),
        "2-0",
    )
    hub.dispatch(SessionTouched(at=AT, session_id="s1", kind="pageview"), "3-0")
    hub.dispatch(LeaseGranted(at=AT, session_id="s1", number="+15005550101", pool="p"), "4-0")
    hub.dispatch(SessionTouched(at=AT, session_id="s1", kind="heartbeat"), "5-0")
    assert texts(ana) == ["for ana"]
    assert texts(ben) == []
    # Journeys show live, one pending touch per session; leases stay off the monitor.
    assert texts(sup) == ["for ana", "call.received", "session.touched"]
    assert ana.last_id == "1-0" and sup.last_id == "5-0"


def test_supervisor_outbox_keeps_newest_partial_and_every_final_in_order() -> None:
    hub = SocketHub(MemoryEventBus())
    sup = hub.add_supervisor("sam")
    agent = hub.add_agent("ana")
    events: list[Event] = [
        said("c1", "I", final=False),
        said("c1", "I want", final=False),
        feel("c1", 0.1),
        said("c2", "other call", final=False),
        said("c1", "I want a quote"),  # supersedes c1's pending partial
        said("c1", "also", final=False),
        feel("c1", 0.3),  # replaces the earlier sentiment, moving behind the final
        feel("c1", -0.9, alert=True),
    ]
    for n, event in enumerate(events, start=1):
        hub.dispatch(event, f"{n}-0")
    got = [json.loads(m) for m in sup.take()]
    assert [(g["type"], g.get("text", g.get("rolling"))) for g in got] == [
        ("utterance.partial", "other call"),
        ("utterance.final", "I want a quote"),
        ("utterance.partial", "also"),
        ("sentiment.updated", 0.3),
        ("sentiment.updated", -0.9),
    ]
    assert got[-1]["id"] == "8-0" and sup.last_id == "8-0"
    # The agent's desktop gets every one of its events, unmerged.
    assert len(agent.take()) == len(events)


def test_resume_from_the_ring_gives_what_was_missed_then_live() -> None:
    hub = SocketHub(MemoryEventBus(), ring_size=100)
    for n in range(1, 6):
        hub.dispatch(said("c1", f"line {n}"), f"{n}-0")
    assert hub.covers("2-0") and hub.covers("5-0") and not hub.covers("0-5")
    conn = hub.add_agent("ana", after="2-0")
    hub.dispatch(said("c1", "line 6"), "6-0")
    assert texts(conn) == ["line 3", "line 4", "line 5", "line 6"]
    again = hub.add_agent("ana", after="6-0")
    assert texts(again) == []


def test_a_small_ring_does_not_cover_an_old_id_and_catch_up_fills_the_front() -> None:
    hub = SocketHub(MemoryEventBus())
    hub.resize_ring(2)
    for n in range(1, 6):
        hub.dispatch(said("c1", f"line {n}"), f"{n}-0")
    assert not hub.covers("2-0")
    conn = hub.add_agent("ana", after="2-0")
    assert conn.first_id == (4, 0)  # the ring gave lines 4 and 5
    older = [(f"{n}-0", said("c1", f"line {n}")) for n in range(3, 6)]
    conn.prepend(hub.catch_up_messages(conn, older, conn.first_id))
    assert texts(conn) == ["line 3", "line 4", "line 5"]


def test_a_socket_that_falls_behind_is_told_to_go() -> None:
    hub = SocketHub(MemoryEventBus(), outbox_limit=3)
    conn = hub.add_agent("ana")
    for n in range(1, 5):
        hub.dispatch(said("c1", f"line {n}"), f"{n}-0")
    assert conn.take() == [TOO_SLOW]
    hub.dispatch(said("c1", "later"), "9-0")
    assert conn.overflowed and conn.take() == []


def test_remove_forgets_the_socket() -> None:
    hub = SocketHub(MemoryEventBus())
    conn = hub.add_agent("ana")
    assert hub.agent_connected("ana") and hub.sockets == 1
    hub.remove(conn)
    assert not hub.agent_connected("ana") and hub.sockets == 0


def test_beat_reaches_only_idle_sockets_once_per_period() -> None:
    hub = SocketHub(MemoryEventBus())
    hub.heartbeat_s = 10.0
    idle, busy = hub.add_agent("ana"), hub.add_supervisor("sam")
    idle.last_active = 100.0
    busy.last_active = 105.0
    hub.beat(111.0)
    assert [json.loads(m)["type"] for m in idle.take()] == ["heartbeat"]
    assert busy.take() == []
    idle.last_active = 111.0
    hub.beat(115.0)
    assert idle.take() == []
