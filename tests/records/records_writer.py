"""A second node in its own process: applies the journeys of some calls to a records database.

Usage: python records_writer.py URL PREFIX COUNT. Once connected it prints "ready" and waits
for a line on stdin, so that the test can start both writers at the same moment.
"""

from __future__ import annotations

import asyncio
import sys

from records_script import journey

from loopline.records import SqlRecords


async def write(url: str, prefix: str, count: int, *, handshake: bool = False) -> None:
    records = SqlRecords(url)
    await records.start()
    try:
        if handshake:
            print("ready", flush=True)
            await asyncio.to_thread(sys.stdin.readline)

        async def one(call_id: str) -> None:
            for event_id, event in journey(call_id):
                await records.apply(event_id, event)

        async with asyncio.TaskGroup() as group:
            for n in range(count):
                group.create_task(one(f"{prefix}-{n}"))
    finally:
        await records.close()


if __name__ == "__main__":
    asyncio.run(write(sys.argv[1], sys.argv[2], int(sys.argv[3]), handshake=True))
