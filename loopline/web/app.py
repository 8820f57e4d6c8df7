"""The ASGI app. `build_app(settings)` wires everything once; nothing is global."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from loopline.config.settings import Settings
from loopline.web.api import build_api_router
from loopline.web.attribution_routes import build_attribution_router
from loopline.web.compliance_routes import build_compliance_router
from loopline.web.journey_routes import build_journey_router
from loopline.web.media_routes import build_media_router
from loopline.web.node import Node
from loopline.web.pages import build_pages_router, mount_assets
from loopline.web.sockets import build_socket_router
from loopline.web.twilio_routes import build_twilio_router


def build_app(settings: Settings, **overrides: Any) -> FastAPI:
    """The app for one node. `overrides` replace parts (clock, call_control, crm, journey...)."""
    node = Node.build(settings, **overrides)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await node.start()
        try:
            yield
        finally:
            await node.stop()

    app = FastAPI(title="Loopline", version="0.1.0", lifespan=lifespan)
    app.state.node = node
    app.include_router(build_twilio_router())
    app.include_router(build_socket_router())
    app.include_router(build_api_router())
    app.include_router(build_attribution_router())
    app.include_router(build_journey_router())
    app.include_router(build_media_router())
    app.include_router(build_compliance_router())
    app.include_router(build_pages_router())
    mount_assets(app)
    return app
