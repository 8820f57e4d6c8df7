"""What reaches the transcript classifier and the exporters is redacted text only: the node
redacts every line with the deployment's policy (PCI always, PHI for health deployments), the
classifier reads the lines as published, and exporters are handed conversions, which carry no
words at all."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from loopline.attribution.transcript import Transcript
from loopline.attribution.transcripts import LineBuffer
from loopline.compliance.redaction import redact
from loopline.config import load_settings
from loopline.domain.events import UtteranceEvent
from loopline.domain.outcomes import Conversion
from loopline.web.node import Node

DEMO = Path(__file__).parents[2] / "config" / "loopline.yaml"
SPOKEN = "my card is 4111 1111 1111 1111 and my member id is AB 1234 5678, I have diabetes"


def _node(tmp_path: Path, phi: bool) -> Node:
    data: dict[str, Any] = yaml.safe_load(DEMO.read_text())
    data["crm"] = {}
    data["media"] = {"redact": ["email"]}  # a deployment that forgot card data
    data["compliance"] = {"redact_phi": phi}
    path = tmp_path / "loopline.yaml"
    path.write_text(yaml.safe_dump(data))
    env = {
        "LOOPLINE_RECORDS_URL": f"sqlite+aiosqlite:///{tmp_path}/r.db",
        "LOOPLINE_TOKEN_SECRET": "t" * 40,
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "token",
    }
    return Node.build(load_settings(path, environ=env))


@pytest.mark.parametrize(
    ("phi", "hidden", "kept"),
    [(False, ["4111"], ["diabetes"]), (True, ["4111", "AB 1234", "diabetes"], [])],
)
def test_the_node_redacts_by_policy(
    tmp_path: Path, phi: bool, hidden: list[str], kept: list[str]
) -> None:
    node = _node(tmp_path, phi)
    assert node.media is not None
    kinds = frozenset(node.media.settings.redact)
    text = redact(SPOKEN, kinds=kinds)[0].text
    assert all(h not in text for h in hidden), text
    assert all(k in text for k in kept), text


def test_the_classifier_reads_the_published_text() -> None:
    redacted = redact(SPOKEN, kinds=frozenset({"card", "mrn", "health"}))[0].text
    buffer = LineBuffer()
    buffer.add(
        UtteranceEvent(
            type="utterance.final",
            call_id="CL1",
            at=datetime(2026, 1, 1, tzinfo=UTC),
            track="inbound",
            speaker="caller",
            text=redacted,
            start_ms=0,
            end_ms=1000,
        )
    )
    plain = Transcript.of(buffer.take("CL1")).plain()
    assert plain == redacted
    assert "4111" not in plain and "diabetes" not in plain


def test_exporters_get_no_words() -> None:
    # Exporters are handed `Conversion`s; none of its fields holds what anyone said.
    wordy = {"text", "transcript", "notes", "evidence", "utterances", "summary"}
    assert not (wordy & set(Conversion.model_fields))
