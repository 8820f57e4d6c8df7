"""Browser-test helpers: Debian chromium driven by Playwright, headless, against a real node.

Never `playwright install`: the browser is the system's chromium (`make install` puts it there
when it can). Outside CI the browser tests skip with a clear message when it is missing;
under CI=true they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from loopline.domain.intent import Intent, Signal
from loopline.domain.journey import JourneyMatch

OUTPUT = Path(os.environ.get("LOOPLINE_TEST_OUTPUT", Path(__file__).parents[2] / "test-output"))
DEMO_PASSWORD = "demo-pass-8c1f"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def chromium_or_skip() -> str:
    path = shutil.which("chromium")
    if path is None:
        message = (
            "no chromium for the browser tests: "
            "run `make install` as root, or `apt-get install chromium`"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: browser tests must run)")
        pytest.skip(message)
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[dev]'")
    return path


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A headless Debian chromium; closed (with its driver) when the block ends."""
    from playwright.async_api import async_playwright

    path = chromium_or_skip()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def sign_in(browser: Any, base: str, username: str, password: str = DEMO_PASSWORD) -> Any:
    """A new page in its own context (its own cookies), signed in as `username`."""
    context = await browser.new_context(viewport={"width": 1440, "height": 1000})
    page = await context.new_page()
    await page.goto(f"{base}/signin")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(password)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Sign in").click()
    return page


async def screenshot(page: Any, name: str) -> Path:
    await asyncio.to_thread(OUTPUT.mkdir, parents=True, exist_ok=True)
    path = OUTPUT / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


class FixedJourney:
    """The web visit behind every call: stands in for the journey room's DNI matching."""

    async def match(self, dialed: str, at: datetime, caller: str) -> JourneyMatch | None:
        return JourneyMatch(
            session_id="s-e2e-1",
            confidence="active",
            campaign="spring-sale",
            source="google",
            medium="cpc",
            keyword="home insurance quote",
            landing_page="https://harbor.example/quote",
            pages=["https://harbor.example/quote", "https://harbor.example/pricing"],
            time_on_site_s=312.0,
            matched_at=at,
        )


class FixedIntent:
    def score(
        self, journey: JourneyMatch | None, crm: dict[str, Any], caller: str, campaign: str | None
    ) -> Intent:
        return Intent(
            name="quote",
            confidence=0.82,
            signals=[Signal(source="journey", detail="visited the pricing page", weight=0.6)],
        )
