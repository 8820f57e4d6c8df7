"""The results dashboard in a real browser: a seeded month of calls and spend, the six
headline KPIs, the table by campaign, the CSV download, and the page kept from agents."""

from __future__ import annotations

import asyncio

import pytest

from tests.attribution.test_kpis import seed_month
from tests.e2e.browser import DEMO_PASSWORD, chromium, chromium_or_skip, screenshot, sign_in

pytestmark = pytest.mark.e2e
ENV = {"LOOPLINE_DEMO_PASSWORD": DEMO_PASSWORD}


async def test_supervisor_reads_the_month_on_the_dashboard(start_node) -> None:  # type: ignore[no-untyped-def]
    chromium_or_skip()
    from playwright.async_api import expect

    async with start_node(env=ENV) as node, chromium() as browser:
        service = node.node.attribution
        async with asyncio.timeout(10):
            await service.ready.wait()
        await seed_month(service.store)

        page = await sign_in(browser, node.base, "sam")
        await page.goto(f"{node.base}/dashboard")
        await page.fill("#from", "2026-01-01")
        await page.fill("#to", "2026-01-31")
        await page.get_by_role("button", name="Show").click()
        await expect(page.locator("#status")).to_have_text("2026-01-01 to 2026-01-31")
        await expect(page.locator("#k-roas")).to_have_text("1.01×")
        await expect(page.locator("#k-cpa")).to_have_text("160")
        await expect(page.locator("#k-close")).to_contain_text("50")
        await expect(page.locator("#k-speed")).to_have_text("16 s")
        rows = page.locator("#table tbody tr")
        await expect(rows).to_have_count(2)
        await expect(rows.nth(1)).to_contain_text("spring-sale")
        await expect(page.locator("#table tfoot")).to_contain_text("Total")
        href = await page.locator("#csv").get_attribute("href")
        assert href is not None and "format=csv" in href and "from=2026-01-01" in href
        csv = await page.request.get(node.base + href)
        assert csv.ok and (await csv.text()).startswith("campaign,calls,answered,spend")
        await screenshot(page, "attribution-dashboard")

        agent = await sign_in(browser, node.base, "ana")
        resp = await agent.goto(f"{node.base}/dashboard")
        assert resp is not None and resp.status == 403
