"""Build the call context: caller, campaign, CRM record, journey, intent, time, queues."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from loopline.config.schema import DeploymentConfig
from loopline.domain.calls import CallContext, InboundCall, QueueStats
from loopline.domain.intent import Intent
from loopline.domain.journey import JourneyMatch
from loopline.journey.base import IntentScorer, JourneyLookup
from loopline.providers.crm import CrmAnswer, CrmClient
from loopline.providers.crm_fields import normalise_crm_record
from loopline.providers.phone import normalize_caller
from loopline.router.hours import time_facts

log = logging.getLogger(__name__)

# What the decision's reason (and so the screen-pop) says when the CRM missed its budget.
CRM_OVER_BUDGET = "routed without CRM (over budget)"


class ContextBuilder:
    def __init__(
        self,
        deployment: DeploymentConfig,
        crm: CrmClient,
        journey: JourneyLookup,
        intent: IntentScorer,
        *,
        journey_budget_s: float = 0.2,
        crm_budget_s: float | None = None,
    ) -> None:
        self._deployment = deployment
        self._crm = crm
        self._journey = journey
        self._intent = intent
        self._journey_budget_s = journey_budget_s
        # The HTTP adapter's own timeout fires first and says so; this guards every source
        # (a file on a hung disk, a misbehaving adapter) with a little grace on top.
        self._crm_budget_s = (
            crm_budget_s
            if crm_budget_s is not None
            else deployment.crm.http_budget_ms / 1000 + 0.05
        )
        self._campaigns = {t.number: t.campaign for t in deployment.tracking_numbers}

    def campaign_for(self, dialed: str) -> str | None:
        """The campaign of a tracking number; None sends the call down the default route."""
        return self._campaigns.get(dialed)

    async def build(
        self,
        call_id: str,
        inbound: InboundCall,
        queues: dict[str, QueueStats],
        now: datetime,
        *,
        skip_intent: Callable[[dict[str, Any], JourneyMatch | None], bool] | None = None,
    ) -> CallContext:
        """`skip_intent` true for this CRM record and journey: the caller opted out of
        automated decision-making, so no intent is scored (nor kept from the journey)."""
        caller = normalize_caller(
            inbound.from_number,
            default_region=self._deployment.deployment.default_region,
            name=inbound.caller_name,
            provider_state=inbound.from_state,
        )
        dialed = normalize_caller(
            inbound.to_number, default_region=self._deployment.deployment.default_region
        ).number
        campaign = self.campaign_for(dialed)
        # CRM (own time budget inside the adapter) and journey run side by side.
        crm_task = self._crm_fetch(caller.number) if caller.valid else _unknown()
        answer, journey = await asyncio.gather(
            crm_task, self._journey_match(dialed, now, caller.number)
        )
        crm = normalise_crm_record(answer.record)
        if campaign is None and journey is not None:
            campaign = journey.campaign  # a pool number's campaign is the session's
        if crm.get("name") and not caller.name:
            caller = caller.model_copy(update={"name": str(crm["name"])})
        if skip_intent is not None and skip_intent(crm, journey):
            intent = Intent()
            if journey is not None and "text_intent" in journey.extra:
                extra = {k: v for k, v in journey.extra.items() if k != "text_intent"}
                journey = journey.model_copy(update={"extra": extra})
        else:
            intent = self._intent.score(journey, crm, caller.number, campaign)
        return CallContext(
            call_id=call_id,
            caller=caller,
            dialed=dialed,
            campaign=campaign,
            crm=crm,
            crm_status=answer.status,
            journey=journey,
            intent=intent,
            time=time_facts(self._deployment.business_hours, now),
            queues=queues,
        )

    async def _crm_fetch(self, number: str) -> CrmAnswer:
        try:
            async with asyncio.timeout(self._crm_budget_s):
                return await self._crm.fetch(number)
        except TimeoutError:
            log.warning("crm lookup over budget; routing without it")
            return CrmAnswer({}, "over_budget")

    async def _journey_match(self, dialed: str, now: datetime, caller: str) -> JourneyMatch | None:
        try:
            async with asyncio.timeout(self._journey_budget_s):
                return await self._journey.match(dialed, now, caller)
        except TimeoutError:
            log.warning("journey lookup over budget; routing without it")
            return None


async def _unknown() -> CrmAnswer:
    return CrmAnswer({}, "unknown")
