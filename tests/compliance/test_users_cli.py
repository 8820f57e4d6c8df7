"""`loopline users ...` against a real SQLite records database."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from loopline.cli import main
from loopline.compliance.access import AccessRecords

CONFIG = str(Path(__file__).parents[2] / "config" / "loopline.yaml")


@pytest.fixture
def records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/records.db"
    monkeypatch.setenv("LOOPLINE_RECORDS_URL", url)
    return url


def run(monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["users", *argv, "--config", CONFIG])


def test_users_add_list_disable_and_keys(
    records: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pw = "a sturdy passphrase\n"
    assert (
        run(
            monkeypatch,
            "add",
            "ana",
            "--role",
            "agent",
            "--agent-id",
            "ana",
            "--password-stdin",
            stdin=pw,
        )
        == 0
    )
    assert (
        run(
            monkeypatch,
            "add",
            "sam",
            "--role",
            "supervisor",
            "--name",
            "Sam",
            "--password-stdin",
            stdin=pw,
        )
        == 0
    )
    assert "added agent ana (agent ana)" in capsys.readouterr().out
    # Refusals: unknown agent, duplicate, weak password.
    assert (
        run(
            monkeypatch,
            "add",
            "zed",
            "--role",
            "agent",
            "--agent-id",
            "zed",
            "--password-stdin",
            stdin=pw,
        )
        == 2
    )
    assert run(monkeypatch, "add", "ana", "--role", "admin", "--password-stdin", stdin=pw) == 2
    assert (
        run(monkeypatch, "add", "kim", "--role", "admin", "--password-stdin", stdin="short\n") == 2
    )
    err = capsys.readouterr().err
    assert "no agent 'zed'" in err and "exists already" in err and "8 characters" in err

    assert run(monkeypatch, "disable", "sam") == 0
    assert run(monkeypatch, "api-key", "wallboard") == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert key.startswith("llk_")
    assert run(monkeypatch, "list") == 0
    listing = capsys.readouterr().out
    assert "ana\tagent agent=ana" in listing and "sam\tsupervisor (disabled)" in listing
    assert "wallboard\tactive" in listing

    async def check() -> None:
        access = AccessRecords(records)
        await access.start()
        try:
            assert await access.users.authenticate("ana", "a sturdy passphrase") is not None
            assert await access.users.authenticate("sam", "a sturdy passphrase") is None
            assert await access.users.verify_api_key(key) is not None
            report = await access.audit.verify()
            actions = [e.action for e in await access.audit.recent()]
        finally:
            await access.close()
        assert report.ok
        assert actions == ["apikey.added", "user.disabled", "user.added", "user.added"]

    asyncio.run(check())
