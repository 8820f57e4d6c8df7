"""Governance over HTTP, for admins only and every use audited:

- `GET /v1/subjects/export` and `DELETE /v1/subjects`: a data subject's records, by phone
  number, e-mail address or visitor id, given as a JSON body (never in the URL, which access
  logs keep);
- `GET /v1/admt/assessment`: the automated-decision risk assessment's inputs;
- `POST /v1/retention/run`: a retention sweep now (`dry_run` counts what would go).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import ValidationError

from loopline.compliance.subjects import Subject, SubjectError
from loopline.web.api import By
from loopline.web.governance import GovernanceService
from loopline.web.node import Node
from loopline.web.session_auth import Caller, audit

MAX_BODY = 4_096


def _governance(request: Request) -> tuple[Node, GovernanceService]:
    node: Node = request.app.state.node
    if node.governance is None:
        raise HTTPException(503, "governance is not running")
    return node, node.governance


async def _admin(node: Node, by: Caller, action: str) -> None:
    if by.principal.role != "admin":
        await audit(node, by.actor, action, outcome="denied")
        raise HTTPException(403, "admin role required")


async def _subject(request: Request, governance: GovernanceService) -> Subject:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise HTTPException(413, "body too large")
    if request.url.query:
        raise HTTPException(
            422, "send the subject as a JSON body (phone, email or visitor_id), not in the URL"
        )
    try:
        subject = Subject.model_validate_json(raw or b"{}")
        return governance.subject(subject)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) or "(body)" for e in exc.errors()})
        raise HTTPException(422, f"give phone, email or visitor_id ({', '.join(fields)})") from None
    except SubjectError as exc:
        raise HTTPException(422, str(exc)) from None


def build_compliance_router() -> APIRouter:
    api = APIRouter()

    @api.get("/v1/subjects/export")
    async def export_subject(request: Request, by: By) -> dict[str, Any]:
        node, governance = _governance(request)
        await _admin(node, by, "subject.export")
        subject = await _subject(request, governance)
        data = await governance.export(subject)
        await audit(
            node,
            by.actor,
            "subject.export",
            target=subject.label(),
            detail={"calls": len(data["calls"]), "conversions": len(data["conversions"])},
        )
        return data

    @api.delete("/v1/subjects")
    async def erase_subject(request: Request, by: By) -> dict[str, Any]:
        node, governance = _governance(request)
        await _admin(node, by, "subject.erase")
        subject = await _subject(request, governance)
        # Audited before and after: an erasure that fails half-way still left its mark.
        await audit(node, by.actor, "subject.erase.requested", target=subject.label())
        counts = await governance.erase(subject)
        await audit(node, by.actor, "subject.erase", target=subject.label(), detail=counts)
        return {"erased": counts}

    @api.get("/v1/admt/assessment")
    async def admt_assessment(
        request: Request, by: By, days: Annotated[int, Query(ge=1, le=730)] = 90
    ) -> dict[str, Any]:
        node, governance = _governance(request)
        await _admin(node, by, "admt.assessment")
        result = await governance.assessment(days)
        await audit(node, by.actor, "admt.assessment", detail={"days": days})
        return result.model_dump(mode="json")

    @api.post("/v1/retention/run")
    async def retention_run(request: Request, by: By, dry_run: bool = True) -> dict[str, Any]:
        node, governance = _governance(request)
        await _admin(node, by, "retention.run")
        report = await governance.sweep(dry_run=dry_run)
        await audit(
            node, by.actor, "retention.run", detail={"dry_run": dry_run, "counts": report.counts}
        )
        return report.as_dict()

    return api
