"""Several writers on one database (two nodes, or two processes): nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
import os
import random
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from records_script import T0, comparable, journey
from records_writer import write

from loopline.records import SqlRecords
from loopline.records.fold import apply_event

HERE = Path(__file__).parent
REPO = HERE.parent.parent


def expected(call_id: str) -> dict[str, object]:
    record = None
    for _, event in journey(call_id):
        record = apply_event(record, call_id, event, T0)
    return comparable(record)


@pytest_asyncio.fixture
async def nodes(records_url: str) -> AsyncIterator[tuple[SqlRecords, SqlRecords]]:
    """Two records writers on one database, each with its own engine and connections."""
    first, second = SqlRecords(records_url), SqlRecords(records_url)
    await asyncio.gather(first.start(), second.start())
    try:
        yield first, second
    finally:
        await asyncio.gather(first.close(), second.close())


async def _write_calls(records: SqlRecords, call_ids: list[str]) -> None:
    async def one(call_id: str) -> None:
        for event_id, event in journey(call_id):
            assert await records.apply(event_id, event) is True

    async with asyncio.TaskGroup() as group:
        for call_id in call_ids:
            group.create_task(one(call_id))


async def _assert_complete(records: SqlRecords, call_ids: list[str]) -> None:
    assert await records.count_calls() == len(call_ids)
    for call_id in call_ids:
        assert comparable(await records.get_call(call_id)) == expected(call_id), call_id


async def test_two_writers_on_different_calls_lose_nothing(
    nodes: tuple[SqlRecords, SqlRecords],
) -> None:
    first, second = nodes
    a_calls = [f"a-{n}" for n in range(15)]
    b_calls = [f"b-{n}" for n in range(15)]
    await asyncio.gather(_write_calls(first, a_calls), _write_calls(second, b_calls))
    await _assert_complete(first, a_calls + b_calls)


async def test_one_calls_events_split_across_writers(
    nodes: tuple[SqlRecords, SqlRecords],
) -> None:
    call_ids = [f"split-{n}" for n in range(6)]
    deliveries = []
    rng = random.Random(7)
    for call_id in call_ids:
        script = journey(call_id)
        rng.shuffle(script)
        deliveries += [
            (nodes[i % 2], event_id, event) for i, (event_id, event) in enumerate(script)
        ]
    rng.shuffle(deliveries)
    applied = await asyncio.gather(*(node.apply(i, e) for node, i, e in deliveries))
    assert all(applied)
    await _assert_complete(nodes[0], call_ids)


async def test_an_event_delivered_to_both_writers_is_applied_once(
    nodes: tuple[SqlRecords, SqlRecords],
) -> None:
    first, second = nodes
    for event_id, event in journey():
        applied = await asyncio.gather(first.apply(event_id, event), second.apply(event_id, event))
        assert sorted(applied) == [False, True]
    await _assert_complete(second, ["call-1"])


async def test_a_writer_in_another_process_at_the_same_time(
    records: SqlRecords, records_url: str
) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)])}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / "records_writer.py"),
        records_url,
        "child",
        "15",
        cwd=REPO,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        ready = await asyncio.wait_for(child.stdout.readline(), timeout=60)
        assert ready == b"ready\n", (await child.stderr.read()).decode()[-2000:]  # type: ignore[union-attr]
        child.stdin.write(b"go\n")
        await write(records_url, "parent", 15)
        _, stderr = await asyncio.wait_for(child.communicate(), timeout=90)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    assert child.returncode == 0, stderr.decode()[-2000:]
    await _assert_complete(
        records, [f"{who}-{n}" for who in ("parent", "child") for n in range(15)]
    )
