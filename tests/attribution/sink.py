"""A local stand-in for the ad platforms and the CRM: it records what arrives, checks it
against the documented format, de-duplicates by each platform's key as they do, and fails
on demand (500s, slow answers, refusals) by a plan of one mode per request."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from loopline.attribution.exporters.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from loopline.domain.clock import SystemClock

WEBHOOK_SECRET = "whsec-test-0123456789abcdef"


@dataclass
class Sink:
    plan: list[str] = field(default_factory=list)  # "ok", "500", "slow", "400", "429"
    slow_s: float = 2.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    # conversion id -> how many platforms took it (each platform takes an id once: its dedupe)
    accepted: Counter[str] = field(default_factory=Counter)
    taken: set[tuple[str, str]] = field(default_factory=set)  # (platform, conversion id)
    duplicates: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def _mode(self) -> str:
        return self.plan.pop(0) if self.plan else "ok"

    async def _answer(self, mode: str) -> Response | None:
        if mode == "slow":
            await asyncio.sleep(self.slow_s)
            return JSONResponse({"error": "too slow"}, status_code=503)
        if mode in ("500", "400", "429"):
            return JSONResponse(
                {"error": {"message": "on demand", "code": 100}}, status_code=int(mode)
            )
        return None

    def _take(self, platform: str, ids: list[str]) -> None:
        for i in ids:
            if (platform, i) in self.taken:
                self.duplicates[i] += 1
            else:
                self.taken.add((platform, i))
                self.accepted[i] += 1
        self.arrived.set()

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hooks/crm")
        async def crm(request: Request) -> Response:
            body = await request.body()
            ok = verify(
                WEBHOOK_SECRET,
                body,
                request.headers.get(TIMESTAMP_HEADER),
                request.headers.get(SIGNATURE_HEADER),
                SystemClock().now(),
            )
            data = json.loads(body)
            self.requests.append(
                {"kind": "webhook", "body": data, "headers": dict(request.headers)}
            )
            if not ok:
                self.problems.append("webhook signature did not verify")
                return JSONResponse({"error": "bad signature"}, status_code=401)
            failure = await self._answer(self._mode())
            if failure is not None:
                return failure
            self._take("webhook", [c["id"] for c in data["conversions"]])
            return JSONResponse({"ok": True})

        @app.post("/{version}/{pixel}/events")
        async def meta(version: str, pixel: str, request: Request) -> Response:
            data = await request.json()
            self.requests.append({"kind": "meta", "body": data, "path": (version, pixel)})
            for event in data.get("data", []):
                for key in ("event_name", "event_time", "event_id", "action_source", "user_data"):
                    if key not in event:
                        self.problems.append(f"meta event without {key}")
                if event.get("action_source") != "phone_call":
                    self.problems.append("meta action_source is not phone_call")
            if not data.get("access_token"):
                self.problems.append("meta request without access_token")
            failure = await self._answer(self._mode())
            if failure is not None:
                return failure
            self._take("meta", [e["event_id"] for e in data["data"]])
            return JSONResponse({"events_received": len(data["data"]), "fbtrace_id": "t"})

        @app.post("/v1/events:ingest")
        async def datamanager(request: Request) -> Response:
            data = await request.json()
            self.requests.append(
                {"kind": "datamanager", "body": data, "auth": request.headers.get("authorization")}
            )
            refs = {d.get("reference") for d in data.get("destinations", [])}
            for event in data.get("events", []):
                if not set(event.get("destinationReferences", [])) <= refs:
                    self.problems.append("datamanager event names an unknown destination")
                if "eventTimestamp" not in event or "transactionId" not in event:
                    self.problems.append("datamanager event without timestamp or transaction id")
            failure = await self._answer(self._mode())
            if failure is not None:
                return failure
            self._take("datamanager", [e["transactionId"] for e in data["events"]])
            return JSONResponse({"requestId": "req-1"})

        @app.post("/mp/collect")
        async def ga4(request: Request) -> Response:
            data = await request.json()
            self.requests.append({"kind": "ga4", "body": data, "query": dict(request.query_params)})
            if len(data.get("events", [])) > 25:
                self.problems.append("ga4 request with more than 25 events")
            failure = await self._answer(self._mode())
            if failure is not None:
                return failure
            self._take("ga4", [e["params"]["transaction_id"] for e in data["events"]])
            return Response(status_code=204)

        @app.post("/upload/google-ads")
        async def csv_upload(request: Request) -> Response:
            text = (await request.body()).decode()
            self.requests.append({"kind": "csv", "text": text})
            if not text.startswith("Parameters:TimeZone="):
                self.problems.append("csv without its Parameters:TimeZone line")
            failure = await self._answer(self._mode())
            if failure is not None:
                return failure
            lines = text.splitlines()
            if lines[1].startswith("Google Click ID"):
                self._take("csv", [row.split(",")[-1] for row in lines[2:]])
            return Response(status_code=200)

        return app

    async def wait_for(self, n: int, within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            while sum(self.accepted.values()) < n:
                self.arrived.clear()
                await self.arrived.wait()
