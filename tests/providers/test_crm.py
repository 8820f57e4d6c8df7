"""CRM look-ups: a file, a real local HTTP CRM (fast, slow, broken) and the chain of both."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from loopline.providers.crm import (
    ChainedCrm,
    CrmClient,
    CrmError,
    FileCrm,
    HttpCrm,
    parse_crm_records,
)

ServeApp = Callable[[ASGIApp], AbstractAsyncContextManager[str]]

ALICE = "+14155552671"
BOB = "+442079460958"
ALICE_RECORD = {"name": "Alice Smith", "tier": "gold", "account_id": "A-1", "churn_risk": 0.7}


# --- the file CRM ---


@pytest.mark.parametrize(
    ("text", "json_only", "expected"),
    [
        (
            "'+14155552671': {name: Alice Smith, tier: gold}\n",
            False,
            {ALICE: {"name": "Alice Smith", "tier": "gold"}},
        ),
        # Unquoted, YAML reads the key as the integer 14155552671.
        ("+14155552671:\n  tier: gold\n", False, {ALICE: {"tier": "gold"}}),
        # Keys are normalised to E.164.
        ("'+1 (415) 555-2671': {tier: gold}\n", False, {ALICE: {"tier": "gold"}}),
        ("'+44 20 7946 0958': {open_ticket: true}\n", False, {BOB: {"open_ticket": True}}),
        ('{"+14155552671": {"tier": "gold"}}', True, {ALICE: {"tier": "gold"}}),
        ("", False, {}),
        ("# nobody yet\n", False, {}),
    ],
)
def test_parse_crm_records(text: str, json_only: bool, expected: dict[str, dict[str, Any]]) -> None:
    assert parse_crm_records(text, json_only=json_only) == expected


@pytest.mark.parametrize(
    ("text", "json_only", "message"),
    [
        ("- a\n- b\n", False, "must map numbers to records"),
        ("'+14155552671': gold\n", False, "entry 1: the record is not a mapping"),
        ("'+14155552671': {tier: gold}\nnot-a-number: {}\n", False, "entry 2: the key"),
        ("'4155552671': {tier: gold}\n", False, "entry 1: the key"),
        ("{unclosed: [", False, "not valid YAML"),
        ("{'+14155552671': {}}", True, "not valid JSON"),
    ],
)
def test_parse_crm_records_rejects(text: str, json_only: bool, message: str) -> None:
    with pytest.raises(CrmError, match=message) as caught:
        parse_crm_records(text, json_only=json_only)
    assert "415" not in str(caught.value)


async def test_file_crm_looks_up_by_number(tmp_path: Path) -> None:
    path = tmp_path / "crm.yaml"
    path.write_text(json.dumps({ALICE: ALICE_RECORD}))  # JSON is YAML too
    crm = FileCrm(path)
    assert await crm.load() == 1
    assert await crm.lookup(ALICE) == ALICE_RECORD
    assert await crm.lookup(BOB) == {}
    assert await crm.lookup("anonymous") == {}
    assert crm.failures == 0


async def test_file_crm_returns_copies(tmp_path: Path) -> None:
    path = tmp_path / "crm.json"
    path.write_text(json.dumps({ALICE: ALICE_RECORD}))
    crm = FileCrm(path)
    first = await crm.lookup(ALICE)
    first["tier"] = "tampered"
    assert (await crm.lookup(ALICE))["tier"] == "gold"


async def test_file_crm_reloads_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "crm.yaml"
    path.write_text("'+14155552671': {tier: silver}\n")
    crm = FileCrm(path, recheck_s=0)
    assert await crm.lookup(ALICE) == {"tier": "silver"}
    path.write_text("'+14155552671': {tier: gold}\n'+442079460958': {tier: bronze}\n")
    # Make the change visible even on filesystems with a coarse mtime.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    assert await crm.lookup(ALICE) == {"tier": "gold"}
    assert await crm.lookup(BOB) == {"tier": "bronze"}


async def test_file_crm_keeps_last_good_records_when_a_reload_fails(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "crm.yaml"
    path.write_text("'+14155552671': {tier: gold}\n")
    crm = FileCrm(path, recheck_s=0)
    assert await crm.lookup(ALICE) == {"tier": "gold"}
    path.write_text("{broken: [\n")
    with caplog.at_level(logging.WARNING, logger="loopline.providers.crm"):
        assert await crm.lookup(ALICE) == {"tier": "gold"}
    assert crm.failures == 1
    assert "not valid YAML" in caplog.text
    assert "415" not in caplog.text


async def test_file_crm_checks_the_file_at_most_every_recheck_interval(tmp_path: Path) -> None:
    path = tmp_path / "crm.yaml"
    path.write_text("'+14155552671': {tier: silver}\n")
    now = [100.0]
    crm = FileCrm(path, recheck_s=1.0, monotonic=lambda: now[0])
    assert await crm.lookup(ALICE) == {"tier": "silver"}
    path.write_text("'+14155552671': {tier: gold}\n")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    now[0] += 0.9
    assert await crm.lookup(ALICE) == {"tier": "silver"}  # not checked again yet
    now[0] += 0.1
    assert await crm.lookup(ALICE) == {"tier": "gold"}


async def test_file_crm_missing_file(tmp_path: Path) -> None:
    crm = FileCrm(tmp_path / "absent.yaml")
    with pytest.raises(CrmError, match="cannot read absent.yaml"):
        await crm.load()
    assert await crm.lookup(ALICE) == {}
    assert crm.failures == 1


# --- the HTTP CRM, against a real server ---


class FakeCrmServer:
    """One route per behaviour a real CRM might show; records the numbers it was asked for."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.release = asyncio.Event()

    async def ok(self, request: Request) -> Response:
        number = request.path_params["number"]
        self.asked.append(number)
        if number == ALICE:
            return JSONResponse(ALICE_RECORD)
        return JSONResponse({"error": "not found"}, status_code=404)

    async def by_query(self, request: Request) -> Response:
        number = request.query_params["phone"]
        self.asked.append(number)
        return JSONResponse(ALICE_RECORD if number == ALICE else {})

    async def slow(self, request: Request) -> Response:
        self.asked.append(request.path_params["number"])
        try:
            async with asyncio.timeout(5):
                await self.release.wait()
        except TimeoutError:
            pass
        return JSONResponse(ALICE_RECORD)

    async def broken(self, request: Request) -> Response:
        return PlainTextResponse("boom", status_code=500)

    async def not_json(self, request: Request) -> Response:
        return PlainTextResponse("<html>login</html>")

    async def a_list(self, request: Request) -> Response:
        return JSONResponse([ALICE_RECORD])

    async def redirect(self, request: Request) -> Response:
        return Response(status_code=302, headers={"location": "/ok/x"})

    async def headers(self, request: Request) -> Response:
        return JSONResponse({"auth": request.headers.get("authorization")})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/ok/{number}", self.ok),
                Route("/by-query", self.by_query),
                Route("/slow/{number}", self.slow),
                Route("/broken/{number}", self.broken),
                Route("/not-json/{number}", self.not_json),
                Route("/list/{number}", self.a_list),
                Route("/redirect/{number}", self.redirect),
                Route("/headers/{number}", self.headers),
            ]
        )


async def test_http_crm_finds_a_record(serve_app: ServeApp) -> None:
    server = FakeCrmServer()
    async with serve_app(server.app()) as base_url:
        crm = HttpCrm(base_url + "/ok/{number}?fields=all")
        try:
            assert await crm.lookup(ALICE) == ALICE_RECORD
            assert await crm.lookup(BOB) == {}  # 404: unknown, not a failure
            assert await crm.lookup("anonymous") == {}  # never asked
        finally:
            await crm.close()
    assert server.asked == [ALICE, BOB]
    assert crm.failures == 0


async def test_http_crm_quotes_the_number(serve_app: ServeApp) -> None:
    server = FakeCrmServer()
    async with serve_app(server.app()) as base_url:
        crm = HttpCrm(base_url + "/by-query?phone={number}")
        try:
            assert await crm.lookup(ALICE) == ALICE_RECORD
        finally:
            await crm.close()
    # Unquoted, the "+" of a query string would have arrived as a space.
    assert server.asked == [ALICE]


async def test_http_crm_sends_headers(serve_app: ServeApp) -> None:
    async with serve_app(FakeCrmServer().app()) as base_url:
        crm = HttpCrm(base_url + "/headers/{number}", headers={"Authorization": "Bearer k"})
        try:
            assert await crm.lookup(ALICE) == {"auth": "Bearer k"}
        finally:
            await crm.close()


@pytest.mark.parametrize(
    ("route", "reason"),
    [
        ("broken", "HTTP 500"),
        ("not-json", "the body is not JSON"),
        ("list", "the body is not a JSON object"),
        ("redirect", "HTTP 302"),
    ],
)
async def test_http_crm_failures_route_without_it(
    serve_app: ServeApp, caplog: pytest.LogCaptureFixture, route: str, reason: str
) -> None:
    async with serve_app(FakeCrmServer().app()) as base_url:
        crm = HttpCrm(base_url + f"/{route}/{{number}}")
        try:
            with caplog.at_level(logging.WARNING, logger="loopline.providers.crm"):
                assert await crm.lookup(ALICE) == {}
        finally:
            await crm.close()
    assert crm.failures == 1
    assert [r.getMessage() for r in caplog.records] == [
        f"crm lookup failed, routing without it: {reason}"
    ]


async def test_http_crm_gives_up_at_its_budget(
    serve_app: ServeApp, caplog: pytest.LogCaptureFixture
) -> None:
    server = FakeCrmServer()
    async with serve_app(server.app()) as base_url:
        crm = HttpCrm(base_url + "/slow/{number}", budget_s=0.2)
        loop = asyncio.get_running_loop()
        try:
            with caplog.at_level(logging.WARNING, logger="loopline.providers.crm"):
                started = loop.time()
                assert await crm.lookup(ALICE) == {}
                elapsed = loop.time() - started
        finally:
            server.release.set()
            await crm.close()
    assert 0.15 < elapsed < 0.6
    assert crm.failures == 1
    assert server.asked == [ALICE]
    assert "budget" in caplog.text or "Timeout" in caplog.text
    assert ALICE not in caplog.text and "14155552671" not in caplog.text


async def test_http_crm_unreachable(serve_app: ServeApp, caplog: pytest.LogCaptureFixture) -> None:
    async with serve_app(FakeCrmServer().app()) as base_url:
        pass  # the port is free again: nothing listens
    crm = HttpCrm(base_url + "/ok/{number}")
    try:
        with caplog.at_level(logging.WARNING, logger="loopline.providers.crm"):
            assert await crm.lookup(ALICE) == {}
    finally:
        await crm.close()
    assert crm.failures == 1
    assert "ConnectError" in caplog.text
    assert "14155552671" not in caplog.text


@pytest.mark.parametrize(
    ("template", "budget_s"), [("http://crm/lookup", 0.3), ("http://crm/{number}", 0.0)]
)
def test_http_crm_rejects_bad_settings(template: str, budget_s: float) -> None:
    with pytest.raises(ValueError):
        HttpCrm(template, budget_s=budget_s)


# --- the chain ---


class StaticCrm(CrmClient):
    """A CRM whose answers are given up front (a real implementation of the interface)."""

    def __init__(self, records: dict[str, dict[str, Any]], delay_s: float = 0.0) -> None:
        self.records = records
        self.delay_s = delay_s
        self.closed = False

    async def lookup(self, number_e164: str) -> dict[str, Any]:
        await asyncio.sleep(self.delay_s)
        return dict(self.records.get(number_e164, {}))

    async def close(self) -> None:
        self.closed = True


class BrokenCrm(CrmClient):
    async def lookup(self, number_e164: str) -> dict[str, Any]:
        raise RuntimeError("bug")


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        ([], {}),
        ([{ALICE: {"tier": "gold"}}], {"tier": "gold"}),
        # Keys merge; on a conflict the first source wins.
        (
            [{ALICE: {"tier": "vip", "note": "override"}}, {ALICE: {"tier": "gold", "id": "A-1"}}],
            {"tier": "vip", "note": "override", "id": "A-1"},
        ),
        ([{}, {ALICE: {"tier": "gold"}}], {"tier": "gold"}),
        ([{BOB: {"tier": "gold"}}, {}], {}),
    ],
)
async def test_chained_crm_merges_first_wins(
    sources: list[dict[str, dict[str, Any]]], expected: dict[str, Any]
) -> None:
    crm = ChainedCrm([StaticCrm(records) for records in sources])
    assert await crm.lookup(ALICE) == expected


async def test_chained_crm_asks_sources_at_once() -> None:
    crm = ChainedCrm([StaticCrm({ALICE: {"a": 1}}, 0.2), StaticCrm({ALICE: {"b": 2}}, 0.2)])
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await crm.lookup(ALICE) == {"a": 1, "b": 2}
    assert loop.time() - started < 0.35


async def test_chained_crm_survives_a_raising_source() -> None:
    crm = ChainedCrm([BrokenCrm(), StaticCrm({ALICE: {"tier": "gold"}})])
    assert await crm.lookup(ALICE) == {"tier": "gold"}
    assert crm.failures == 1


async def test_chained_crm_with_file_and_http(tmp_path: Path, serve_app: ServeApp) -> None:
    path = tmp_path / "overrides.yaml"
    path.write_text("'+14155552671': {tier: platinum, vip_note: call back}\n")
    async with serve_app(FakeCrmServer().app()) as base_url:
        crm = ChainedCrm([FileCrm(path), HttpCrm(base_url + "/ok/{number}")])
        try:
            record = await crm.lookup(ALICE)
            assert record == {**ALICE_RECORD, "tier": "platinum", "vip_note": "call back"}
        finally:
            await crm.close()


async def test_chained_crm_closes_every_source() -> None:
    sources = [StaticCrm({}), StaticCrm({})]
    await ChainedCrm(sources).close()
    assert all(source.closed for source in sources)
