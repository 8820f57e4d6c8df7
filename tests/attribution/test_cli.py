"""`loopline spend import` and `loopline outbox` against a records database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from loopline.attribution.store import AttributionStore
from loopline.cli import main
from loopline.domain.clock import SystemClock
from loopline.records import migrate
from tests.attribution.conftest import seed

CONFIG = str(Path(__file__).parents[2] / "config" / "loopline.yaml")


def test_spend_import_and_outbox_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/records.db"
    monkeypatch.setenv("LOOPLINE_RECORDS_URL", url)
    spend = tmp_path / "spend.csv"
    spend.write_text(
        "day,source,campaign,cost\n2026-01-03,google,spring-sale,100.5\n2026-01-04,google,spring-sale,20\n"
    )
    assert main(["spend", "import", str(spend), "--config", CONFIG]) == 0
    assert "imported 2 spend row(s), 120.50 in all" in capsys.readouterr().out
    spend.write_text("day,source,campaign,cost\nyesterday,google,x,1\n")
    assert main(["spend", "import", str(spend), "--config", CONFIG]) == 2
    assert "line 2: bad or missing day" in capsys.readouterr().err

    async def one_dead_letter() -> None:
        await migrate(url)
        store = AttributionStore(url)
        await store.start()
        try:
            await seed(store, 1, ["crm"], SystemClock().now())
            [claimed] = await store.claim(
                "crm", limit=1, now=SystemClock().now(), owner="n", lease_s=5
            )
            await store.mark_failed(
                [(claimed.row_id, "HTTP 500", None, False)], "n", SystemClock().now()
            )
        finally:
            await store.close()

    asyncio.run(one_dead_letter())
    assert main(["outbox", "--config", CONFIG]) == 0
    out = capsys.readouterr().out
    assert (
        "crm: dead 1" in out
        and "\tcrm\tdead\tPhone sale\t450.00 USD\tcall call-00000\ttries 1\tHTTP 500" in out
    )
    assert main(["outbox", "replay", "--config", CONFIG]) == 2
    assert main(["outbox", "replay", "--all", "--config", CONFIG]) == 0
    assert "replayed 1 dead letter(s)" in capsys.readouterr().out
    assert main(["outbox", "list", "--status", "pending", "--config", CONFIG]) == 0
    assert "crm: pending 1" in capsys.readouterr().out
