"""The journey end to end on a real server: touches → tracking number → call → screen-pop."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.conftest import Running, next_of, token_for

pytestmark = pytest.mark.e2e

LANDING = (
    "http://127.0.0.1/demo/site/landing?utm_source=google&utm_medium=cpc"
    "&utm_campaign=spring-sale&utm_term=home+insurance&gclid=TeSt-gclid-123"
)
CALLER = "+14085550177"  # not in the demo CRM


def only_ana(data: dict[str, Any]) -> None:
    agent = next(a for a in data["agents"] if a["id"] == "ana")
    agent["skills"] = {"sales": 5, "support": 5, "billing": 5, "retention": 5, "spanish": 5}
    data["agents"] = [agent]


def small_pool(data: dict[str, Any]) -> None:
    only_ana(data)
    data["journey"]["pools"][0]["numbers"] = data["journey"]["pools"][0]["numbers"][:2]
    data["journey"]["rate_limit"] = {"per_visitor_per_min": 5, "per_address_per_min": 1000}


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "memory":
        return {"LOOPLINE_STATE": "memory"}
    url = request.getfixturevalue("redis_clean")
    return {"LOOPLINE_STATE": "redis", "LOOPLINE_REDIS_URL": url}


def batch(visitor: str, session: str, *touches: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "visitor_id": visitor,
        "session_id": session,
        "landing": LANDING,
        "referrer": "https://www.google.com/",
        "touches": list(touches),
        **extra,
    }


async def post(node: Running, body: Any, **headers: str) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await node.http.post(
        node.base + "/v1/touches", content=data, headers={"content-type": "text/plain", **headers}
    )


async def test_visit_then_call_fills_the_screen_pop(start_node, backend) -> None:  # type: ignore[no-untyped-def]
    async with start_node(only_ana, env=backend) as node, node.agent("ana") as ws:
        first = await post(
            node,
            batch(
                "visitor-0001",
                "session-0001",
                {"kind": "pageview", "url": LANDING, "title": "Harbor Home Insurance"},
            ),
        )
        assert first.status_code == 200, first.text
        number = first.json()["number"]
        assert first.json()["kind"] == "pool" and number.startswith("+150055501")
        more = await post(
            node,
            batch(
                "visitor-0001",
                "session-0001",
                {
                    "kind": "pageview",
                    "url": "http://127.0.0.1/demo/site/pricing",
                    "title": "Pricing",
                },
                {"kind": "event", "event": "quote_submit"},
            ),
        )
        assert more.json()["number"] == number  # the session keeps its number

        resp = await node.voice("CA" + "7" * 32, CALLER, dialed=number)
        assert resp.status_code == 200
        pop = await next_of(ws, "call.offered")
        journey = pop["journey"]
        assert journey["confidence"] == "active" and journey["session_id"] == "session-0001"
        assert journey["landing_page"] == LANDING
        assert journey["click_ids"] == {"gclid": "TeSt-gclid-123"}
        assert journey["pages"] == ["/demo/site/landing", "/demo/site/pricing"]
        assert (journey["campaign"], journey["source"], journey["keyword"]) == (
            "spring-sale",
            "google",
            "home insurance",
        )
        assert pop["intent"]["name"] == "quote"
        assert "visited /demo/site/pricing" in [s["detail"] for s in pop["intent"]["signals"]]
        # The session's campaign routes the call (paid-search-sales), as a source number would.
        assert pop["decision"]["policy"] == "paid-search-sales"

        pools = await node.http.get(
            node.base + "/v1/pools",
            headers={"Authorization": f"Bearer {token_for('supervisor', 'sam')}"},
        )
        [web] = pools.json()
        assert (web["name"], web["in_use"], web["leases"], web["fallbacks"]) == ("web", 1, 1, 0)
        assert 0 < web["expected_match_rate"] <= 1 and web["recommended_size"] >= 1


async def test_source_numbers_and_swap_precedence(start_node) -> None:  # type: ignore[no-untyped-def]
    async with start_node(only_ana) as node:
        fb = await post(
            node,
            batch(
                "visitor-0002",
                "session-0002",
                {"kind": "pageview"},
                referrer="https://m.facebook.com/ad",
            ),
        )
        assert fb.json() == {
            "number": "+15005550101",
            "kind": "referrer",
            "campaign": "spring-sale-es",
            "heartbeat_s": 60,
        }
        param = await post(
            node,
            batch(
                "visitor-0003",
                "session-0003",
                {"kind": "pageview"},
                landing="http://127.0.0.1/?ll_campaign=radio-fall",
            ),
        )
        assert (param.json()["kind"], param.json()["number"]) == ("param", "+15005550103")
        assert (
            await node.node.router._context._journey.match(
                "+15005550103", node.node.clock.now(), CALLER
            )
            is not None
        )  # type: ignore[attr-defined]


async def test_pool_exhaustion_one_number_per_visitor_and_bad_input(start_node) -> None:  # type: ignore[no-untyped-def]
    async with start_node(small_pool) as node:
        got = [
            await post(node, batch(f"visitor-{i:04d}", f"session-{i:04d}", {"kind": "pageview"}))
            for i in range(3)
        ]
        assert [r.json()["kind"] for r in got] == ["pool", "pool", "fallback"]
        assert got[2].json()["number"] == "+15005550199"
        # A visitor asking again (a new session too) keeps its one number: it cannot drain the pool.
        again = await post(node, batch("visitor-0000", "session-9999", {"kind": "pageview"}))
        assert again.json()["number"] == got[0].json()["number"]

        bad = await post(node, batch("visitor-0000", "session-0000", {"kind": "teleport"}))
        assert bad.status_code == 422 and bad.json()["detail"][0]["field"].startswith(
            "touches.0.kind"
        )
        short = await post(node, batch("v", "session-0000", {"kind": "pageview"}))
        assert short.status_code == 422 and short.json()["detail"][0]["field"] == "visitor_id"
        assert (await post(node, b"{not json")).status_code == 422
        huge = await post(
            node,
            batch("visitor-0000", "session-0000", {"kind": "pageview", "title": "x" * 200})
            | {"pad": "y" * 20000},
        )
        assert huge.status_code == 413
        evil = await post(
            node,
            batch("visitor-0000", "session-0000", {"kind": "pageview"}),
            origin="https://evil.example",
        )
        assert evil.status_code == 403
        ok = await post(
            node,
            batch("visitor-0000", "session-0000", {"kind": "pageview"}),
            origin="http://127.0.0.1:8080",
        )
        assert ok.headers["access-control-allow-origin"] == "http://127.0.0.1:8080"
        statuses = [
            (
                await post(node, batch("visitor-0042", "session-0042", {"kind": "heartbeat"}))
            ).status_code
            for _ in range(6)
        ]
        assert statuses == [200] * 5 + [429]

        js = await node.http.get(node.base + "/dni.js")
        assert js.status_code == 200 and js.headers["content-type"].startswith(
            "application/javascript"
        )
        page = await node.http.get(node.base + "/demo/site/pricing")
        assert page.status_code == 200 and '<script src="/dni.js"' in page.text
        assert (await node.http.get(node.base + "/demo/site/../../etc")).status_code == 404
        assert (await node.http.get(node.base + "/v1/pools")).status_code == 401
