"""A minimal conversions sink for the outbox bench: accepts every POST, counts conversions.

Run by the bench in its own process: `python -m uvicorn bench.attribution_sink:app`.
"""

from __future__ import annotations

import json
from typing import Any

COUNT = {"conversions": 0, "requests": 0}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["method"] == "POST":
        COUNT["requests"] += 1
        COUNT["conversions"] += len(json.loads(body).get("conversions", []))
        payload = b'{"ok":true}'
    else:
        payload = json.dumps(COUNT).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": payload})
