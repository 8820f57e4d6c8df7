"""What the router asks of the journey room: the web session behind a call, and intent.

The journey issue fills these with DNI pools, session matching and intent scoring; until then
the router runs with `NoJourney` and `NoIntent`, which know nothing and say so.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from loopline.domain.intent import Intent
from loopline.domain.journey import JourneyMatch


class JourneyLookup(Protocol):
    async def match(self, dialed: str, at: datetime, caller: str) -> JourneyMatch | None:
        """The web session that leased `dialed` at `at`, if any."""
        ...


class IntentScorer(Protocol):
    def score(
        self, journey: JourneyMatch | None, crm: dict[str, Any], caller: str, campaign: str | None
    ) -> Intent:
        """Pure: the caller's intent from what is known before they speak."""
        ...


class NoJourney:
    async def match(self, dialed: str, at: datetime, caller: str) -> JourneyMatch | None:
        return None


class NoIntent:
    def score(
        self, journey: JourneyMatch | None, crm: dict[str, Any], caller: str, campaign: str | None
    ) -> Intent:
        return Intent()
