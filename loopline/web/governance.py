"""Governance wired to one node: data-subject export and erasure across every store, the
retention sweeper task, the ADMT assessment, and the audit entries of configuration loads.

The records side lives in `loopline.compliance` (it may not import the live state); this
module adds the live state, the journey store and the bus, which only the web room holds.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from loopline.compliance.admt import Assessment, assessment
from loopline.compliance.admt_records import opt_out_usage
from loopline.compliance.retention import RetentionReport, RetentionSweeper
from loopline.compliance.subjects import Holdings, Subject, SubjectRecords
from loopline.config.compliance import ComplianceConfig
from loopline.policies import PolicySet
from loopline.state.base import StateUnavailable

if TYPE_CHECKING:
    from loopline.web.node import Node

log = logging.getLogger(__name__)


def config_digest(data: Any) -> str:
    raw = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass
class GovernanceService:
    node: Node
    config: ComplianceConfig
    subjects: SubjectRecords
    sweeper: RetentionSweeper

    @classmethod
    def build(cls, node: Node) -> GovernanceService:
        assert node.access is not None, "governance needs the access records started"
        config = node.settings.deployment.compliance
        engine = node.access.engine
        return cls(node, config, SubjectRecords(engine), RetentionSweeper(engine, config.retention))

    def subject(self, raw: Subject) -> Subject:
        return raw.normalised(self.node.settings.deployment.deployment.default_region)

    # -- data-subject rights -----------------------------------------------------------------
    async def _holdings(self, subject: Subject) -> Holdings:
        found = await self.subjects.find(subject)
        journey = self.node.journey
        if journey is not None and found.visitor_ids:
            found.session_ids |= await journey.service.store.sessions_of(found.visitor_ids)
        return found

    async def export(self, subject: Subject) -> dict[str, Any]:
        """Every record held about the subject, as JSON-ready data."""
        found = await self._holdings(subject)
        node = self.node
        calls: list[dict[str, Any]] = []
        transcripts: dict[str, list[dict[str, Any]]] = {}
        live: list[dict[str, Any]] = []
        for call_id in sorted(found.call_ids):
            record = await node.records.get_call(call_id)
            if record is not None:
                data = record.model_dump(mode="json")
                transcripts[call_id] = data.pop("transcript", None) or []
                calls.append(data)
            try:
                state = await node.state.get_call(call_id)
            except StateUnavailable:
                state = None
            if state is not None:
                live.append(state.model_dump(mode="json"))
        journeys: list[dict[str, Any]] = []
        if node.journey is not None:
            store = node.journey.service.store
            for session_id in sorted(found.session_ids):
                touches = [json.loads(t) for t in await store.touches(session_id)]
                journeys.append({"session_id": session_id, "touches": touches})
        attribution = await self.subjects.export_attribution(found)
        return {
            "generated_at": node.clock.now().isoformat(),
            "calls": calls,
            "transcripts": transcripts,
            "live_calls": live,
            "journeys": journeys,
            "visitor_ids": sorted(found.visitor_ids),
            **attribution,
        }

    async def erase(self, subject: Subject) -> dict[str, int]:
        """Erase the subject everywhere and leave tombstones; counts of what went."""
        node = self.node
        now = node.clock.now()
        found = await self._holdings(subject)
        erased = await self.subjects.erase(subject, found, now)
        counts = dict(erased.counts)
        counts["tombstones"] = erased.tombstones
        live = 0
        for call_id in found.call_ids:
            if await node.state.get_call(call_id) is not None:
                await node.state.delete_call(call_id)
                live += 1
        counts["live_calls"] = live
        numbers = set(found.caller_numbers) | ({subject.phone} if subject.phone else set())
        counts["last_agent"] = sum([await node.state.forget_caller(n) for n in sorted(numbers)])
        counts["bus_events"] = await node.bus.forget_calls(found.call_ids, found.session_ids)
        if node.journey is not None:
            counts["journey"] = await node.journey.service.store.forget(
                found.visitor_ids, found.session_ids, now
            )
        if node.attribution is not None:
            for call_id in found.call_ids:
                node.attribution.pipeline.buffer.take(call_id)
        log.info("data subject erased", extra={"counts": counts})
        return counts

    # -- retention ---------------------------------------------------------------------------
    async def sweep(self, *, dry_run: bool = False) -> RetentionReport:
        now = self.node.clock.now()
        report = await self.sweeper.run(now, dry_run=dry_run)
        before = report.cutoffs.get("journeys")
        journey = self.node.journey
        if before is not None and journey is not None and not dry_run:
            gone = await journey.service.store.expire_sessions(
                before, self.config.retention.batch_size
            )
            report.add("journeys", gone)
        return report

    async def run_sweeper(self) -> None:
        """The node task: sweep, then wait the configured interval."""
        while True:
            try:
                await self.sweep()
                self.node.degraded.pop("retention", None)
            except Exception as exc:  # the records may be away; the next sweep catches up
                self.node.degraded["retention"] = type(exc).__name__
                log.warning("retention sweep failed", extra={"error": type(exc).__name__})
            await asyncio.sleep(self.config.retention.sweep_interval_s)

    # -- ADMT --------------------------------------------------------------------------------
    async def assessment(self, days: int) -> Assessment:
        node = self.node
        deployment = node.settings.deployment
        policies = PolicySet.compile(deployment.policies, deployment.default_route)
        reads = {
            p.name: PolicySet.compile([p], deployment.default_route).projection
            for p in deployment.policies
        }
        now = node.clock.now()
        assert node.access is not None
        calls, by = await opt_out_usage(node.access.engine, now - timedelta(days=days))
        journey_conf = deployment.journey
        sources = sorted({_intent_source(r) for r in journey_conf.intent_rules})
        return assessment(
            policies=deployment.policies,
            default_route=deployment.default_route,
            projection=dict(policies.projection),
            policy_reads={k: dict(v) for k, v in reads.items()},
            config=self.config.admt,
            intent_sources=sources,
            calls=calls,
            opted_out_by=by,
            generated_at=now.isoformat(),
            window_days=days,
        )

    # -- configuration audit -----------------------------------------------------------------
    async def audit_config_load(self) -> None:
        """One entry per start: which configuration was loaded; another when its policies
        differ from the previous load's (who changed them is in the deployment's history)."""
        node = self.node
        assert node.access is not None
        deployment = node.settings.deployment
        audit = node.access.audit
        policies = [p.model_dump(mode="json") for p in deployment.policies]
        policy_digest = config_digest(
            {"policies": policies, "default": deployment.default_route.model_dump(mode="json")}
        )
        detail = {
            "config": config_digest(deployment.model_dump(mode="json")),
            "policies": policy_digest,
            "policy_names": [p.name for p in deployment.policies],
            "compliance": config_digest(deployment.compliance.model_dump(mode="json")),
            "node": node.settings.env.node_id,
        }
        previous = next((e for e in await audit.recent(200) if e.action == "config.loaded"), None)
        now = node.clock.now()
        await audit.append(
            "system", "config.loaded", now, target=node.settings.config_path, detail=detail
        )
        if previous is not None and previous.detail.get("policies") != policy_digest:
            await audit.append(
                "system",
                "policy.changed",
                now,
                target=node.settings.config_path,
                detail={
                    "from": previous.detail.get("policies"),
                    "to": policy_digest,
                    "before": previous.detail.get("policy_names"),
                    "after": detail["policy_names"],
                },
            )


def _intent_source(rule: Any) -> str:
    for name in ("url", "event", "keyword", "campaign", "crm"):
        if getattr(rule, name, None):
            return f"journey.{name}" if name != "crm" else f"crm.{rule.crm}"
    return "other"
