"""A web session from its touches: campaign, source, click ids, pages, time on site. Pure.

Touches arrive as the JSON the touch route stored (`StoredTouch`); the landing URL's query
string is the one source of UTM parameters and click ids, read here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, Field

CLICK_IDS = ("gclid", "gbraid", "wbraid", "fbclid", "msclkid")
COOKIES = ("_fbp", "_fbc", "_ga")
MAX_PAGES = 50


class StoredTouch(BaseModel):
    """One touch as kept on the session: server time, what the page sent."""

    at: datetime
    kind: str
    url: str | None = None
    title: str | None = None
    event: str | None = None
    landing: str | None = None
    referrer: str | None = None
    cookies: dict[str, str] = Field(default_factory=dict)
    tz: str | None = None


class SessionSummary(BaseModel):
    session_id: str
    landing_page: str | None = None
    referrer: str | None = None
    campaign: str | None = None
    source: str | None = None
    medium: str | None = None
    keyword: str | None = None
    content: str | None = None
    click_ids: dict[str, str] = Field(default_factory=dict)
    cookies: dict[str, str] = Field(default_factory=dict)
    pages: list[str] = Field(default_factory=list)
    titles: list[str] = Field(default_factory=list)
    events: list[str] = Field(default_factory=list)
    first_at: datetime | None = None
    last_at: datetime | None = None
    tz: str | None = None

    @property
    def time_on_site_s(self) -> float:
        if self.first_at is None or self.last_at is None:
            return 0.0
        return (self.last_at - self.first_at).total_seconds()


def url_params(url: str | None) -> dict[str, str]:
    if not url:
        return {}
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=False))


def page_path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path or "/"


def summarize(session_id: str, touches: Iterable[StoredTouch]) -> SessionSummary:
    out = SessionSummary(session_id=session_id)
    for touch in touches:
        out.first_at = touch.at if out.first_at is None else min(out.first_at, touch.at)
        out.last_at = touch.at if out.last_at is None else max(out.last_at, touch.at)
        if out.landing_page is None and (touch.landing or touch.url):
            out.landing_page = touch.landing or touch.url
            out.referrer = touch.referrer or None
        if touch.kind == "pageview" and touch.url:
            path = page_path(touch.url)
            if path not in out.pages and len(out.pages) < MAX_PAGES:
                out.pages.append(path)
            if touch.title and touch.title not in out.titles and len(out.titles) < MAX_PAGES:
                out.titles.append(touch.title)
        if touch.event and touch.event not in out.events and len(out.events) < MAX_PAGES:
            out.events.append(touch.event)
        for name, value in touch.cookies.items():
            if name in COOKIES:
                out.cookies.setdefault(name, value)
        if touch.tz and out.tz is None:
            out.tz = touch.tz
    params = url_params(out.landing_page)
    out.campaign = params.get("utm_campaign")
    out.source = params.get("utm_source")
    out.medium = params.get("utm_medium")
    out.keyword = params.get("utm_term")
    out.content = params.get("utm_content")
    out.click_ids = {k: params[k] for k in CLICK_IDS if k in params}
    return out


def journey_fields(summary: SessionSummary) -> dict[str, Any]:
    """The summary in the shape of `JourneyMatch` (without session id and confidence)."""
    return {
        "campaign": summary.campaign,
        "source": summary.source,
        "medium": summary.medium,
        "keyword": summary.keyword,
        "landing_page": summary.landing_page,
        "click_ids": summary.click_ids,
        "pages": summary.pages,
        "time_on_site_s": summary.time_on_site_s,
        "extra": {
            "referrer": summary.referrer,
            "titles": summary.titles,
            "events": summary.events,
            "cookies": summary.cookies,
        },
    }
