"""Attribution over HTTP: dispositions, outcomes, spend, KPIs, the outbox, the Google Ads CSV
for scheduled uploads, and the KPI dashboard page."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from importlib.resources import files
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from loopline.attribution.exporters.google_ads import call_csv, click_csv, click_id_of
from loopline.attribution.kpis import GroupBy, report_csv
from loopline.attribution.pipeline import UnknownCall, UnknownOutcome
from loopline.attribution.service import AttributionService
from loopline.attribution.spend import SpendError, parse_csv, parse_rows
from loopline.config.attribution import GoogleAdsDestination
from loopline.web.api import Who
from loopline.web.auth import Principal
from loopline.web.node import Node
from loopline.web.pages import PAGE_HEADERS
from loopline.web.session_auth import AuthFailed, resolve_caller

MAX_SPEND_BODY = 5_000_000
MAX_KPI_DAYS = 731


class DispositionIn(BaseModel):
    outcome: str = Field(min_length=1, max_length=100)
    value: float | None = Field(default=None, ge=0, le=1e9)
    currency: str | None = Field(default=None, pattern=r"^[A-Za-z]{3}$")
    notes: str | None = Field(default=None, max_length=4000)


class ReplayIn(BaseModel):
    ids: list[int] | None = None
    destination: str | None = None


async def _service(request: Request) -> AttributionService:
    node: Node = request.app.state.node
    service = node.attribution
    if service is None:
        raise HTTPException(503, "attribution is not running")
    try:
        async with asyncio.timeout(5):
            await service.ready.wait()
    except TimeoutError:
        raise HTTPException(503, "attribution is starting") from None
    return service


def _supervisor(who: Principal) -> None:
    if who.role not in ("supervisor", "admin"):
        raise HTTPException(403, "supervisor role required")


def _range(service: AttributionService, start: date | None, end: date | None) -> tuple[date, date]:
    today = datetime.now(ZoneInfo(service.config.timezone)).date()
    end = end or today
    start = start or end - timedelta(days=29)
    if start > end:
        raise HTTPException(422, "from is after to")
    if (end - start).days > MAX_KPI_DAYS:
        raise HTTPException(422, f"at most {MAX_KPI_DAYS} days at once")
    return start, end


def build_attribution_router() -> APIRouter:
    api = APIRouter()

    @api.post("/v1/calls/{call_id}/disposition")
    async def disposition(
        request: Request, call_id: str, body: DispositionIn, who: Who
    ) -> dict[str, Any]:
        service = await _service(request)
        try:
            facts = await service.facts_for(call_id)
        except UnknownCall:
            raise HTTPException(404, "no such call") from None
        if who.role == "agent" and who.subject not in {facts.agent_id, *facts.offered_agents}:
            raise HTTPException(403, "not your call")
        if body.outcome not in service.config.labels:
            raise HTTPException(422, f"unknown outcome; one of: {', '.join(service.config.labels)}")
        try:
            outcome, result = await service.pipeline.disposition(
                call_id,
                body.outcome,
                value=body.value,
                currency=body.currency,
                notes=body.notes,
                decided_by=f"{who.role}:{who.subject}",
                facts=facts,
            )
        except UnknownOutcome:
            raise HTTPException(422, "unknown outcome") from None
        stored = await service.store.outcome_of(call_id)
        return {
            "call_id": call_id,
            "outcome": outcome.model_dump(mode="json"),
            "conversions": stored["conversions"] if stored else [],
            "superseded": result.superseded,
        }

    @api.get("/v1/calls/{call_id}/outcome")
    async def outcome(request: Request, call_id: str, who: Who) -> dict[str, Any]:
        service = await _service(request)
        stored = await service.store.outcome_of(call_id)
        if stored is None:
            raise HTTPException(404, "no outcome for this call yet")
        if who.role == "agent" and stored.get("agent_id") != who.subject:
            raise HTTPException(403, "not your call")
        return stored

    @api.get("/v1/outcomes/labels")
    async def labels(request: Request, who: Who) -> dict[str, Any]:
        service = await _service(request)
        return {"labels": service.config.labels, "currency": service.config.currency}

    @api.post("/v1/spend")
    async def spend(request: Request, who: Who) -> dict[str, Any]:
        _supervisor(who)
        service = await _service(request)
        raw = await request.body()
        if len(raw) > MAX_SPEND_BODY:
            raise HTTPException(413, "spend upload too large")
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if kind in ("text/csv", "text/plain"):
                lines = parse_csv(raw.decode("utf-8-sig"))
            else:
                data = await request.json()
                rows = data.get("rows") if isinstance(data, dict) else data
                if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                    raise HTTPException(
                        422, 'expected {"rows": [{day, source, campaign, cost}, ...]}'
                    )
                lines = parse_rows(rows)
        except SpendError as exc:
            raise HTTPException(422, {"errors": exc.problems[:50]}) from None
        except (UnicodeDecodeError, ValueError):
            raise HTTPException(422, "body is neither CSV nor JSON") from None
        count = await service.store.upsert_spend(
            [line.row() for line in lines], service.pipeline.clock.now()
        )
        return {"imported": count}

    @api.get("/v1/kpis", response_model=None)
    async def kpis(
        request: Request,
        who: Who,
        start: Annotated[date | None, Query(alias="from")] = None,
        end: Annotated[date | None, Query(alias="to")] = None,
        group_by: GroupBy = "campaign",
        format: Literal["json", "csv"] = "json",
    ) -> dict[str, Any] | Response:
        _supervisor(who)
        service = await _service(request)
        start, end = _range(service, start, end)
        report = await service.store.kpis(start, end, group_by)
        if format == "csv":
            name = f"kpis-{group_by}-{start.isoformat()}-{end.isoformat()}.csv"
            return PlainTextResponse(
                report_csv(report),
                media_type="text/csv",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        return report.as_dict()

    @api.get("/v1/outbox")
    async def outbox(
        request: Request,
        who: Who,
        status: str | None = None,
        destination: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        _supervisor(who)
        service = await _service(request)
        entries = await service.store.entries(status=status, destination=destination, limit=limit)
        return {
            "counts": await service.store.counts(),
            "entries": [
                {
                    **e.__dict__,
                    "next_attempt_at": e.next_attempt_at.isoformat(),
                    "delivered_at": e.delivered_at.isoformat() if e.delivered_at else None,
                }
                for e in entries
            ],
        }

    @api.post("/v1/outbox/replay")
    async def replay(request: Request, body: ReplayIn, who: Who) -> dict[str, Any]:
        _supervisor(who)
        service = await _service(request)
        count = await service.store.replay(
            now=service.pipeline.clock.now(), row_ids=body.ids, destination=body.destination
        )
        service.outbox.wake()
        return {"replayed": count}

    @api.get("/v1/exports/{destination}.csv")
    async def google_csv(
        request: Request,
        destination: str,
        who: Who,
        kind: Literal["clicks", "calls"] = "clicks",
        days: Annotated[int, Query(ge=1, le=90)] = 7,
    ) -> Response:
        """The Google Ads offline-conversions file, for a scheduled upload from this URL."""
        _supervisor(who)
        service = await _service(request)
        dest = service.config.destination(destination)
        if not isinstance(dest, GoogleAdsDestination):
            raise HTTPException(404, "no such Google Ads destination")
        now = service.pipeline.clock.now()
        found = await service.store.delivered_conversions(
            destination, now - timedelta(days=days), now
        )
        if kind == "clicks":
            text = click_csv(found, dest.timezone)
        else:
            text = call_csv([c for c in found if click_id_of(c) is None], dest.timezone)
        return PlainTextResponse(text, media_type="text/csv")

    @api.get("/dashboard", include_in_schema=False)
    async def dashboard(request: Request) -> Response:
        """The results page, for supervisors (signed in, or with a bearer token)."""
        node: Node = request.app.state.node
        try:
            caller = await resolve_caller(
                request,
                token_secret=node.settings.token_secret(),
                users=node.access.users if node.access is not None else None,
                public_url=node.settings.public_url,
            )
        except AuthFailed:
            caller = None
        if caller is None:
            return RedirectResponse("/signin?next=/dashboard", status_code=303)
        if caller.principal.role not in ("supervisor", "admin"):
            return HTMLResponse("<h1>This page is for supervisor accounts.</h1>", status_code=403)
        page = files("loopline.web").joinpath("static/dashboard/index.html").read_text()
        return HTMLResponse(page, headers=PAGE_HEADERS)

    @api.get("/dashboard/{asset}")
    async def dashboard_asset(asset: str) -> Response:
        kinds = {".js": "text/javascript", ".css": "text/css"}
        suffix = asset[asset.rfind(".") :] if "." in asset else ""
        if suffix not in kinds or "/" in asset or asset.startswith("."):
            raise HTTPException(404, "no such asset")
        path = files("loopline.web").joinpath(f"static/dashboard/{asset}")
        if not path.is_file():
            raise HTTPException(404, "no such asset")
        return Response(
            path.read_bytes(), media_type=kinds[suffix], headers={"Cache-Control": "no-cache"}
        )

    return api
