"""Sessions, the sign-in throttle, redirects and origins: pure parts, tables of cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from starlette.requests import Request

from loopline.web.auth import Principal, TokenError, issue_token, verify_token
from loopline.web.pages import safe_next
from loopline.web.session_auth import (
    Session,
    SignInThrottle,
    failure_delay,
    issue_session,
    read_session,
    same_origin,
)

SECRET = "session-test-secret-0123456789abcdef-xyz"
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(0, 0.0), (1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (7, 30.0), (50, 30.0)],
)
def test_failure_delay_doubles_up_to_a_cap(failures: int, delay: float) -> None:
    assert failure_delay(failures, base_s=0.5, max_s=30.0) == delay


def test_throttle_grows_per_key_and_a_success_clears_it() -> None:
    throttle = SignInThrottle(base_s=1.0, max_s=8.0)
    keys = ["user:ana", "ip:10.0.0.7"]
    assert throttle.wait_s(keys, 0.0) == 0.0
    assert throttle.failed(keys, 0.0) == 1.0
    assert throttle.wait_s(keys, 0.5) == 0.5
    assert throttle.failed(keys, 1.0) == 2.0
    assert throttle.failed(keys, 3.0) == 4.0
    # Another username from the same address still meets that address's delay.
    assert throttle.wait_s(["user:ben", "ip:10.0.0.7"], 3.0) == 4.0
    assert throttle.wait_s(["user:ben", "ip:10.0.0.8"], 3.0) == 0.0
    throttle.succeeded(keys)
    assert throttle.wait_s(keys, 3.0) == 0.0 and throttle.failures("user:ana") == 0


def test_throttle_forgets_old_failures_and_stays_bounded() -> None:
    throttle = SignInThrottle(base_s=1.0, max_s=8.0, forget_s=60.0, max_keys=3)
    throttle.failed(["user:ana"], 0.0)
    throttle.failed(["user:ana"], 1.0)
    assert throttle.failed(["user:ana"], 100.0) == 1.0  # a fresh start after forget_s
    for name in ("b", "c", "d"):
        throttle.failed([f"user:{name}"], 101.0)
    assert throttle.failures("user:ana") == 0  # the least recently failed key went first
    assert throttle.failures("user:d") == 1


def test_session_cookie_round_trip_and_agent_principal() -> None:
    session = Session(username="ana.o", role="agent", agent_id="ana", name="Ana Ortiz")
    cookie = issue_session(SECRET, session, datetime.now(UTC))
    back = read_session(SECRET, cookie)
    assert back == session
    assert back.principal == Principal(role="agent", subject="ana")
    sam = Session(username="sam", role="supervisor")
    assert sam.principal == Principal(role="supervisor", subject="sam")


def test_cookies_and_bearer_tokens_are_not_interchangeable() -> None:
    far = datetime.now(UTC)
    bearer = issue_token(SECRET, Principal(role="admin", subject="root"), far)
    cookie = issue_session(SECRET, Session(username="root", role="admin"), far)
    with pytest.raises(TokenError):
        read_session(SECRET, bearer)
    with pytest.raises(TokenError):
        verify_token(SECRET, cookie)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c[:-2] + ("AA" if not c.endswith("AA") else "BB"),
        lambda c: c.split(".")[0] + ".e30." + c.split(".")[2],
        lambda c: "",
    ],
)
def test_a_tampered_cookie_is_refused(tamper: object) -> None:
    cookie = issue_session(SECRET, Session(username="sam", role="supervisor"), datetime.now(UTC))
    with pytest.raises(TokenError):
        read_session(SECRET, tamper(cookie))  # type: ignore[operator]


def test_an_expired_cookie_is_refused() -> None:
    cookie = issue_session(SECRET, Session(username="sam", role="supervisor"), NOW, ttl_s=60)
    assert NOW + timedelta(seconds=60) < datetime.now(UTC)
    with pytest.raises(TokenError):
        read_session(SECRET, cookie)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/agent", "/agent"),
        ("/calls/CL1?x=1", "/calls/CL1?x=1"),
        (None, "/home"),
        ("", "/home"),
        ("//evil.example/x", "/home"),
        ("https://evil.example/", "/home"),
        ("/\\evil.example", "/home"),
        ("/ok\r\nSet-Cookie: x", "/home"),
        ("agent", "/home"),
    ],
)
def test_safe_next_only_allows_paths_on_this_site(raw: str | None, expected: str) -> None:
    assert safe_next(raw, "/home") == expected


def _request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request(
        {"type": "http", "method": "POST", "headers": raw, "path": "/", "query_string": b""}
    )


@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        ({"host": "127.0.0.1:8080", "origin": "http://127.0.0.1:8080"}, True),
        ({"host": "10.1.1.1:9000", "origin": "https://loopline.example"}, True),  # public URL
        ({"host": "127.0.0.1:8080", "referer": "http://127.0.0.1:8080/agent"}, True),
        ({"host": "127.0.0.1:8080", "origin": "http://evil.example"}, False),
        ({"host": "127.0.0.1:8080", "origin": "http://127.0.0.1:8081"}, False),
        ({"host": "127.0.0.1:8080"}, False),
    ],
)
def test_same_origin(headers: dict[str, str], ok: bool) -> None:
    assert same_origin(_request(headers), "https://loopline.example") is ok
