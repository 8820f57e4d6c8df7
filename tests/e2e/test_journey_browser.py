"""A real browser (Debian chromium, headless, via Playwright) on the demo site: the number
swaps, a signed simulated call to it reaches the agent with the journey on the screen-pop."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from loopline.journey.commands import place_call
from tests.e2e.conftest import next_of
from tests.e2e.test_journey import only_ana
from tests.support import AUTH_TOKEN

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CALLER = "+14085550177"


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    if CHROMIUM is None:
        pytest.skip("no chromium: apt-get install chromium (make install does)")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield b
        finally:
            await b.close()


async def test_demo_site_swaps_number_and_call_shows_journey(start_node, browser) -> None:  # type: ignore[no-untyped-def]
    async with start_node(only_ana) as node, node.agent("ana") as ws:
        page = await browser.new_page()
        landing = (
            f"{node.base}/demo/site/landing?utm_source=google&utm_medium=cpc"
            "&utm_campaign=spring-sale&gclid=Browser-Gclid-42"
        )
        async with page.expect_response(lambda r: r.url.endswith("/v1/touches")):
            await page.goto(landing)
        await page.wait_for_function("document.documentElement.dataset.looplineNumber")
        number = await page.get_attribute("html", "data-loopline-number")
        assert number is not None and re.fullmatch(r"\+1500555011\d", number)
        # Swapped in place, in the page's own formats.
        national = number[2:]
        assert (
            await page.text_content("#phone") == f"({national[:3]}) {national[3:6]}-{national[6:]}"
        )
        assert (
            await page.text_content("#inline-phone")
            == f"{national[:3]}.{national[3:6]}.{national[6:]}"
        )
        assert await page.get_attribute("#phone", "href") == f"tel:{number}"

        async with page.expect_response(lambda r: r.url.endswith("/v1/touches")):
            await page.click("text=See pricing")
        await page.wait_for_url("**/demo/site/pricing")
        assert (
            await page.text_content("#phone") == f"({national[:3]}) {national[3:6]}-{national[6:]}"
        )

        status, twiml = await place_call(node.base, AUTH_TOKEN, number, CALLER)
        assert status == 200 and "<Client>ana</Client>" in twiml
        pop = await next_of(ws, "call.offered")
        journey = pop["journey"]
        assert journey["confidence"] == "active"
        assert journey["landing_page"] == landing
        assert journey["click_ids"] == {"gclid": "Browser-Gclid-42"}
        assert journey["pages"] == ["/demo/site/landing", "/demo/site/pricing"]
        assert journey["extra"]["events"] == ["see_pricing"]
        assert pop["intent"]["name"] == "quote"
        await page.close()


async def test_without_consent_nothing_is_sent_and_the_number_stays(start_node, browser) -> None:  # type: ignore[no-untyped-def]
    async with start_node(only_ana) as node:
        page = await browser.new_page()
        sent: list[str] = []
        page.on("request", lambda r: sent.append(r.url) if "/v1/touches" in r.url else None)
        await page.goto(f"{node.base}/demo/site/landing?consent=no&gclid=x")
        await page.wait_for_function("window.loopline && window.loopline.started")
        await page.evaluate("window.loopline.flush()")
        await page.goto(f"{node.base}/demo/site/pricing?consent=no")
        await page.wait_for_function("window.loopline && window.loopline.started")
        assert sent == []
        assert await page.text_content("#phone") == "(500) 555-0199"
        assert await page.get_attribute("html", "data-loopline-number") is None
        await page.close()
