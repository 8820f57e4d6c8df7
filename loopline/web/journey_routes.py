"""The journey's HTTP edge: POST /v1/touches, GET /dni.js, GET /v1/pools, the demo site.

`build_journey` turns the `journey:` config section into a `JourneyService` and an intent
scorer, once, for `Node.build`. Touches come from any visitor's browser, so everything here
treats input as hostile: a size cap (413), strict validation (422 naming the field), per-visitor
and per-address budgets (429), CORS only for configured sites (403), and no personal data in
log text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from loopline.config.settings import Settings
from loopline.domain.clock import Clock
from loopline.journey.base import IntentScorer
from loopline.journey.intent import IntentRule, RuleIntentScorer
from loopline.journey.matching import CallTiming
from loopline.journey.ratelimit import WindowLimiter
from loopline.journey.service import JourneyService, PoolSetup, TextClassifier
from loopline.journey.session import StoredTouch
from loopline.journey.store import JourneyStore, MemoryJourneyStore, PoolSpec, epoch_s
from loopline.journey.swap import SourceNumber
from loopline.journey.zones import zone_of_state
from loopline.providers.phone import normalize_caller
from loopline.state.base import EventBus, StateUnavailable

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static" / "journey"
DEMO_PAGES = {"landing", "pricing", "quote", "thanks"}
HEARTBEAT_S = 60
Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
Url = Annotated[str, Field(max_length=2048)]


class TouchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["pageview", "event", "heartbeat", "form_start"]
    url: Url | None = None
    title: Annotated[str, Field(max_length=300)] | None = None
    event: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")] | None = None


class TouchBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    visitor_id: Id
    session_id: Id
    landing: Url | None = None
    referrer: Url | None = None
    cookies: dict[Literal["_fbp", "_fbc", "_ga"], Annotated[str, Field(max_length=256)]] = Field(
        default_factory=dict
    )
    tz: Annotated[str, Field(max_length=64)] | None = None
    touches: list[TouchIn] = Field(min_length=1, max_length=50)


class JourneyEdge:
    """The per-node parts of the touch route: service, allowed origins, limits."""

    def __init__(
        self, service: JourneyService, settings: Settings, clock: Clock, origins: set[str]
    ) -> None:
        conf = settings.deployment.journey
        self.service = service
        self.clock = clock
        self.origins = origins
        self.max_body = conf.max_body_bytes
        self.per_visitor = WindowLimiter(conf.rate_limit.per_visitor_per_min)
        self.per_address = WindowLimiter(conf.rate_limit.per_address_per_min)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def build_journey(
    settings: Settings, clock: Clock, bus: EventBus | None = None
) -> tuple[JourneyEdge | None, IntentScorer | None]:
    """The journey service and intent scorer the config asks for (None, None when idle)."""
    conf = settings.deployment.journey
    if not conf.active:
        return None, None
    store: JourneyStore
    if settings.state_backend == "redis" and settings.env.redis_url:
        from loopline.journey.redis_store import RedisJourneyStore

        store = RedisJourneyStore.from_url(settings.env.redis_url, prefix=conf.state_prefix)
    else:
        store = MemoryJourneyStore()
    service = JourneyService(
        store,
        pools=[
            PoolSetup(
                PoolSpec(
                    p.name,
                    list(p.numbers),
                    idle_hold_s=p.idle_hold_s,
                    history=p.history,
                    zone_window=p.zone_window,
                ),
                p.fallback_number,
            )
            for p in conf.pools
        ],
        sources=[
            SourceNumber(t.number, t.campaign, t.source, t.medium, t.always_swap)
            for t in settings.deployment.tracking_numbers
        ],
        landing_param=conf.landing_param,
        referrer_rules=[(r.pattern, r.campaign) for r in conf.referrer_rules],
        default_number=conf.default_number,
        timing=CallTiming(**conf.timing.model_dump()),
        max_since_s=conf.max_since_s,
        bus=bus,
        classifier=_classifier(conf.intent_model),
        caller_zone=_caller_zone(settings.deployment.deployment.default_region),
    )
    origins = {_origin(s) for s in conf.sites} | {_origin(settings.public_url)}
    scorer = RuleIntentScorer(
        [
            IntentRule(
                r.intent,
                "url"
                if r.url
                else "event"
                if r.event
                else "keyword"
                if r.keyword
                else "campaign"
                if r.campaign
                else "crm",
                r.url or r.event or r.keyword or r.campaign or r.crm or "",
                weight=r.weight,
                equals=r.equals,
                gte=r.gte,
                lte=r.lte,
            )
            for r in conf.intent_rules
        ]
    )
    return JourneyEdge(service, settings, clock, origins), scorer


def _caller_zone(default_region: str) -> Callable[[str], str | None]:
    def zone(number: str) -> str | None:
        return zone_of_state(normalize_caller(number, default_region=default_region).region)

    return zone


def _classifier(path: str | None) -> TextClassifier | None:
    if not path:
        return None
    from loopline.journey.classifier import TextIntentClassifier

    return TextIntentClassifier(path)


def _edge(request: Request) -> JourneyEdge:
    edge: JourneyEdge | None = getattr(request.app.state.node, "journey", None)
    if edge is None:
        raise HTTPException(404, "no journey configured on this node")
    return edge


def _cors(edge: JourneyEdge, request: Request) -> dict[str, str]:
    origin = request.headers.get("origin")
    if origin is None:
        return {}
    if origin not in edge.origins:
        raise HTTPException(403, "origin not allowed")
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


async def _body(edge: JourneyEdge, request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > edge.max_body:
        raise HTTPException(413, f"body over {edge.max_body} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > edge.max_body:
            raise HTTPException(413, f"body over {edge.max_body} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _stored(batch: TouchBatch, at: Any) -> list[StoredTouch]:
    out = []
    for i, t in enumerate(batch.touches):
        out.append(
            StoredTouch(
                at=at,
                kind=t.kind,
                url=t.url,
                title=t.title,
                event=t.event or ("form_start" if t.kind == "form_start" else None),
                # The first touch of a batch carries the visit's context once.
                landing=batch.landing if i == 0 else None,
                referrer=batch.referrer if i == 0 else None,
                cookies=dict(batch.cookies) if i == 0 else {},
                tz=batch.tz if i == 0 else None,
            )
        )
    return out


def build_journey_router() -> APIRouter:
    router = APIRouter()

    @router.options("/v1/touches")
    async def touches_preflight(request: Request) -> Response:
        headers = _cors(_edge(request), request)
        headers.update(
            {
                "Access-Control-Allow-Methods": "POST",
                "Access-Control-Allow-Headers": "content-type",
                "Access-Control-Max-Age": "600",
            }
        )
        return Response(status_code=204, headers=headers)

    @router.post("/v1/touches")
    async def post_touches(request: Request) -> JSONResponse:
        edge = _edge(request)
        headers = _cors(edge, request)
        raw = await _body(edge, request)
        try:
            # sendBeacon posts text/plain: the body is JSON whatever the content type says.
            batch = TouchBatch.model_validate_json(raw)
        except ValidationError as exc:
            errors = [
                {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "error": e["msg"]}
                for e in exc.errors(include_url=False, include_input=False)
            ]
            return JSONResponse({"detail": errors}, status_code=422, headers=headers)
        now = edge.clock.now()
        address = request.client.host if request.client else "?"
        if not edge.per_address.allow(address, epoch_s(now)) or not edge.per_visitor.allow(
            batch.visitor_id, epoch_s(now)
        ):
            log.warning("touch rate limit reached")
            return JSONResponse(
                {"detail": "too many touches"},
                status_code=429,
                headers={**headers, "Retry-After": "60"},
            )
        try:
            answer = await edge.service.record(
                batch.session_id,
                batch.visitor_id,
                _stored(batch, now),
                batch.landing,
                batch.referrer,
                now,
                region=batch.tz or "",
            )
        except StateUnavailable:
            log.warning("journey state unavailable; the page keeps its number")
            return JSONResponse(
                {"number": None, "kind": "default"}, status_code=503, headers=headers
            )
        body = {
            "number": answer.number,
            "kind": answer.kind,
            "campaign": answer.campaign,
            "heartbeat_s": HEARTBEAT_S,
        }
        return JSONResponse(body, headers=headers)

    @router.get("/v1/pools")
    async def pools(request: Request) -> list[dict[str, object]]:
        # Imported here: the api module imports the node, which imports this module.
        from loopline.web.api import caller

        who = (await caller(request)).principal
        if who.role not in ("supervisor", "admin"):
            raise HTTPException(403, "supervisor role required")
        edge = _edge(request)
        try:
            return await edge.service.pools_report(edge.clock.now())
        except StateUnavailable as exc:
            raise HTTPException(503, "live state unavailable") from exc

    @router.get("/dni.js")
    async def dni_js() -> FileResponse:
        return FileResponse(
            STATIC / "dni.js",
            media_type="application/javascript",
            headers={"Cache-Control": "public, max-age=300"},
        )

    @router.get("/demo/site/{page}")
    async def demo_page(page: str) -> FileResponse:
        name = page.removesuffix(".html") or "landing"
        if name not in DEMO_PAGES:
            raise HTTPException(404, "no such demo page")
        return FileResponse(STATIC / "demo" / f"{name}.html", media_type="text/html")

    @router.get("/demo/site")
    async def demo_home() -> FileResponse:
        return FileResponse(STATIC / "demo" / "landing.html", media_type="text/html")

    return router
