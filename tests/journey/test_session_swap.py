"""Session summaries and swap precedence: tables of cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from loopline.journey.session import StoredTouch, summarize
from loopline.journey.swap import SourceNumber, SwapRules, choose_swap

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
LANDING = "https://site.example/pricing?utm_source=google&utm_medium=cpc&utm_campaign=spring-sale&utm_term=home+insurance&gclid=abc123&x=1"


def test_summary_reads_landing_params_pages_and_time() -> None:
    touches = [
        StoredTouch(
            at=T0,
            kind="pageview",
            url=LANDING,
            title="Pricing",
            landing=LANDING,
            referrer="https://www.google.com/",
            cookies={"_ga": "GA1.1.1", "other": "x"},
            tz="America/Chicago",
        ),
        StoredTouch(
            at=T0 + timedelta(seconds=40),
            kind="pageview",
            url="https://site.example/quote",
            title="Quote",
        ),
        StoredTouch(at=T0 + timedelta(seconds=70), kind="event", event="quote_form_start"),
        StoredTouch(
            at=T0 + timedelta(seconds=90), kind="pageview", url="https://site.example/pricing?y=2"
        ),
    ]
    s = summarize("s1", touches)
    assert (s.campaign, s.source, s.medium, s.keyword) == (
        "spring-sale",
        "google",
        "cpc",
        "home insurance",
    )
    assert s.click_ids == {"gclid": "abc123"}
    assert s.pages == ["/pricing", "/quote"]
    assert s.titles == ["Pricing", "Quote"]
    assert s.events == ["quote_form_start"]
    assert s.cookies == {"_ga": "GA1.1.1"}
    assert s.time_on_site_s == 90.0
    assert s.referrer == "https://www.google.com/" and s.tz == "America/Chicago"


def test_empty_session() -> None:
    s = summarize("s", [])
    assert s.landing_page is None and s.pages == [] and s.time_on_site_s == 0.0


RULES = SwapRules(
    sources=[
        SourceNumber("+15005550100", "spring-sale", "google", "cpc"),
        SourceNumber("+15005550101", "spring-sale-es", "facebook", "paid-social"),
        SourceNumber("+15005550103", "radio-fall", "radio", None, always_swap=True),
        SourceNumber("+15005550104", "yelp-listing", "yelp", "listing", always_swap=True),
    ],
    referrer_rules=[(r"(^|\.)facebook\.com", "spring-sale-es")],
    pool="web",
)


@pytest.mark.parametrize(
    ("landing", "referrer", "kind", "number"),
    [
        (
            "https://s/?ll_campaign=radio-fall&utm_source=yelp&utm_medium=listing",
            "https://m.facebook.com/",
            "param",
            "+15005550103",
        ),
        (
            "https://s/?utm_source=yelp&utm_medium=listing",
            "https://m.facebook.com/x",
            "referrer",
            "+15005550101",
        ),
        ("https://s/?utm_source=yelp&utm_medium=listing", None, "source", "+15005550104"),
        ("https://s/?utm_source=yelp&utm_medium=cpc", None, "pool", None),  # medium differs
        ("https://s/?utm_source=radio", None, "source", "+15005550103"),  # any medium
        ("https://s/?utm_source=google&utm_medium=cpc", None, "pool", None),  # not always-swap
        ("https://s/?ll_campaign=unknown", None, "pool", None),
        (None, None, "pool", None),
    ],
)
def test_swap_precedence(landing, referrer, kind, number) -> None:  # type: ignore[no-untyped-def]
    choice = choose_swap(landing, referrer, RULES)
    assert (choice.kind, choice.number) == (kind, number)


def test_without_a_pool_the_page_keeps_its_number() -> None:
    assert choose_swap("https://s/", None, SwapRules()).kind == "default"
