"""decide() over 1,000 agents and 50 policies, the matching one late in the list.

Run: `python -m bench.bench_policies` (writes bench/results/policies_decide.json).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from bench.samples import sample_context
from loopline.domain import (
    Agent,
    AgentSnapshot,
    AgentState,
    CallContext,
    Endpoint,
    Policy,
    Presence,
    QueueStats,
    Route,
    RouteStep,
    Strategy,
    TimeFacts,
)
from loopline.policies import ENGINE, PolicySet, decide, rank

RESULTS = Path(__file__).parent / "results" / "policies_decide.json"
SKILLS = ("billing", "sales", "support", "retention", "tech", "claims")
QUEUES = ("sales", "support", "billing", "retention", "tech")
INTENTS = ("cancel", "buy", "upgrade", "billing_question", "outage")
NOW = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
MATCHING_AT = 47  # of 50: the call is evaluated against 47 rules that do not match first


def make_agents(count: int, rng: random.Random) -> list[AgentSnapshot]:
    presences = (
        [Presence.AVAILABLE] * 4
        + [Presence.BUSY] * 3
        + [
            Presence.AWAY,
            Presence.WRAP_UP,
            Presence.OFFLINE,
        ]
    )
    agents = []
    for i in range(count):
        capacity = rng.choice((1, 1, 1, 2, 3))
        skills = {s: rng.randint(1, 5) for s in rng.sample(SKILLS, rng.randint(1, 4))}
        agent = Agent(
            id=f"a{i:04d}",
            name=f"Agent {i}",
            skills=skills,
            languages=["en"] + (["es"] if rng.random() < 0.3 else []),
            capacity=capacity,
            endpoint=Endpoint(kind="client", address=f"agent{i}"),
            queues=rng.sample(QUEUES, 2) if rng.random() < 0.2 else [],
            close_rates={n: round(rng.random(), 2) for n in rng.sample(INTENTS, 2)},
        )
        load = rng.randint(0, capacity)
        state = AgentState(
            agent_id=agent.id,
            presence=rng.choice(presences),
            capacity=capacity,
            active=[f"c{i}-{j}" for j in range(load)],
            idle_since=None
            if rng.random() < 0.05
            else NOW - timedelta(seconds=rng.randint(0, 3600)),
            last_offered_at=NOW - timedelta(seconds=rng.randint(0, 7200)),
        )
        agents.append(AgentSnapshot(agent=agent, state=state))
    return agents


def _route(queue: str, strategy: Strategy, **skills: int) -> Route:
    return Route(queue=queue, skills=skills, strategy=strategy)


def make_policies(strategy: Strategy) -> PolicySet:
    """49 rules that do not match this call, one that does at MATCHING_AT; a realistic mix."""
    misses = [
        'crm.tier == "platinum"',
        'intent.name == "outage" && intent.confidence > 0.5',
        'caller.region in ["NY", "NJ", "CT"]',
        "has(crm.fraud_flag) && crm.fraud_flag",
        'journey != null && journey.campaign == "winter"',
        "time.hour < 8 || time.hour >= 20",
        "queues.support.waiting > 50",
        'call.dialed == "+18005550199"',
        'crm.account.startsWith("B-")',
        "crm.ltv > 100000",
        'journey != null && journey.source == "bing"',
        'caller.country != "US"',
        "time.weekday >= 5",
        'intent.signals.exists(s, s.source == "speech")',
        "queues.sales.longest_wait_s > 600.0",
    ]
    policies = []
    for i in range(50):
        if i == MATCHING_AT:
            when = (
                'intent.name == "cancel" && intent.confidence > 0.6 '
                "&& has(crm.churn_risk) && crm.churn_risk > 0.7"
            )
            route = Route(
                queue="retention",
                skills={"retention": 3},
                languages=["en"],
                priority=80,
                strategy=strategy,
                steps=[RouteStep(after_s=30, skills={"retention": 2}, priority_boost=5)],
            )
        else:
            when = misses[i % len(misses)]
            if i >= len(misses):
                when = f'({when}) && crm.segment == "s{i}"'
            route = _route(QUEUES[i % len(QUEUES)], Strategy.LONGEST_IDLE, **{SKILLS[i % 6]: 2})
        policies.append(Policy(name=f"p{i:02d}", when=when, route=route))
    return PolicySet.compile(policies, default=Route(queue="support"))


def make_context() -> CallContext:
    return sample_context(
        crm={"tier": "gold", "segment": "s999"},
        time=TimeFacts(hour=15, weekday=0, in_business_hours=True, iso=NOW.isoformat()),
        queues={q: QueueStats(waiting=3, longest_wait_s=42.0, agents_available=7) for q in QUEUES},
    )


def measure(
    subjects: dict[str, Callable[[], object]], runs: int, block: int = 50
) -> dict[str, dict[str, float]]:
    """Time every subject `runs` times, taking turns a block at a time, so that a shared
    machine's slow spells fall on all of them alike rather than on whichever ran then."""
    samples: dict[str, list[float]] = {name: [] for name in subjects}
    for fn in subjects.values():
        for _ in range(block):
            fn()  # warm-up
    gc.collect()
    while any(len(taken) < runs for taken in samples.values()):
        for name, fn in subjects.items():
            taken = samples[name]
            for _ in range(min(block, runs - len(taken))):
                start = time.perf_counter_ns()
                fn()
                taken.append((time.perf_counter_ns() - start) / 1000)
    return {name: _summary(taken) for name, taken in samples.items()}


def _summary(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "p50_us": round(samples[len(samples) // 2], 1),
        "p99_us": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 1),
        "mean_us": round(statistics.fmean(samples), 1),
        "max_us": round(samples[-1], 1),
        "runs": len(samples),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    agents = make_agents(args.agents, rng)
    context = make_context()
    policies = make_policies(Strategy.BEST_MATCH)
    decision = decide(context, policies, agents, NOW)
    assert decision.policy == f"p{MATCHING_AT:02d}", decision.reason
    route = policies.policies[MATCHING_AT].route
    ranking = rank(route, agents, context, NOW)

    subjects: dict[str, Callable[[], object]] = {
        "decide": partial(decide, context, policies, agents, NOW),
        # Reading one attribute pair of every agent: the floor of any pure-Python decide()
        # on this machine, to scale the other figures by.
        "scan_floor": partial(_scan, agents),
        "cel_vars": context.cel_vars,
        "match": lambda: policies.match(context.cel_vars()),
        "rank": partial(rank, route, agents, context, NOW),
    }
    for strategy in Strategy:
        per_strategy = make_policies(strategy)
        subjects[f"decide[{strategy.value}]"] = partial(
            decide, context, per_strategy, agents, NOW, last_agent_id="a0001"
        )
    figures = measure(subjects, args.runs)

    result: dict[str, Any] = {
        "benchmark": "policies.decide",
        "command": "python -m bench.bench_policies",
        "engine": ENGINE,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "agents": args.agents,
        "policies": len(policies),
        "matching_policy_index": MATCHING_AT,
        "eligible": ranking.eligible_count,
        "rejected": ranking.rejected_count,
        "candidates_kept": len(decision.candidates),
        "rejected_kept": len(decision.rejected),
        "reason": decision.reason,
        "decide": figures.pop("decide"),
        "parts": {name: figures.pop(name) for name in ("scan_floor", "cel_vars", "match", "rank")},
        "decide_by_strategy": {
            name.removeprefix("decide[").removesuffix("]"): value for name, value in figures.items()
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


def _scan(agents: list[AgentSnapshot]) -> None:
    for snapshot in agents:
        snapshot.state.presence  # noqa: B018


if __name__ == "__main__":
    main()
