"""A lean HTTP/1.1 client for load generators: keep-alive connections over asyncio streams.

A load generator on the same small machine as the server competes with it for the processor;
httpx spent about 5 ms of CPU on each simulated call (three webhooks), as much as a quarter of
what the node itself spent. This client only does what a webhook needs: a POST with a
pre-built head, a response with a Content-Length, and a pool of persistent connections.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from urllib.parse import urlencode


class HttpError(Exception):
    """The connection failed, or the answer was not HTTP/1.1 with a Content-Length."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def form_request(host: str, path: str, params: dict[str, str], headers: dict[str, str]) -> bytes:
    """The bytes of a form POST, built once (before the clock starts, where it can be)."""
    body = urlencode(params).encode()
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}",
        "Content-Type: application/x-www-form-urlencoded",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class LeanHttp:
    """At most `size` connections to one host; a request waits for a free one."""

    def __init__(self, host: str, port: int, *, size: int = 100, timeout_s: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self._idle: list[Connection] = []
        self._slots = asyncio.Semaphore(size)

    async def send(self, request: bytes) -> Reply:
        async with self._slots:
            for attempt in (1, 2):
                fresh = attempt == 2 or not self._idle
                conn = await self._connect() if fresh else self._idle.pop()
                try:
                    async with asyncio.timeout(self.timeout_s):
                        reply = await self._exchange(conn, request)
                except (OSError, asyncio.IncompleteReadError, HttpError) as exc:
                    conn[1].close()
                    # A kept-alive connection the server closed meanwhile: once more, fresh.
                    if fresh or attempt == 2:
                        raise HttpError(type(exc).__name__) from exc
                    continue
                self._idle.append(conn)
                return reply
        raise AssertionError("not reached")

    async def _connect(self) -> Connection:
        try:
            return await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            raise HttpError(type(exc).__name__) from exc

    @staticmethod
    async def _exchange(conn: Connection, request: bytes) -> Reply:
        reader, writer = conn
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise HttpError("not an HTTP/1.x answer")
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if length is None:
            raise HttpError("no Content-Length")
        body = await reader.readexactly(length) if length else b""
        return Reply(int(parts[1]), body)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()
        for _, writer in idle:
            with contextlib.suppress(OSError):
                await writer.wait_closed()
