"""What the router learns of the web journey that preceded a call."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class JourneyMatch(BaseModel):
    """The web session matched to a call, with how sure the match is."""

    session_id: str
    confidence: str = "none"  # active | last_holder | source_only | none
    campaign: str | None = None
    source: str | None = None
    medium: str | None = None
    keyword: str | None = None
    landing_page: str | None = None
    click_ids: dict[str, str] = Field(default_factory=dict)
    pages: list[str] = Field(default_factory=list)
    time_on_site_s: float = 0.0
    extra: dict[str, Any] = Field(default_factory=dict)
    matched_at: datetime | None = None
