"""A CRM webhook: the conversions as JSON, signed with HMAC-SHA256 over the timestamp and the
body, so the receiver can check who sent it and refuse a replay.

Headers: `X-Loopline-Timestamp` (Unix seconds), `X-Loopline-Signature: v1=<hex>` where hex is
HMAC-SHA256(secret, f"{timestamp}.{body}"), and `Idempotency-Key` (the same for a resend of
the same conversions). A receiver answers 2xx, or 409 for a key it has already taken.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import datetime

from loopline.attribution.exporters.base import (
    Exporter,
    Judgement,
    Outgoing,
    Skip,
    batch_size,
    secret,
)
from loopline.config.attribution import WebhookDestination
from loopline.domain.outcomes import Conversion

TIMESTAMP_HEADER = "X-Loopline-Timestamp"
SIGNATURE_HEADER = "X-Loopline-Signature"
WEBHOOK_LIMIT = 500


def signature(key: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(
    key: str,
    body: bytes,
    timestamp: str | None,
    signed: str | None,
    now: datetime,
    tolerance_s: int = 300,
) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    if not timestamp or not signed:
        return False
    try:
        at = int(timestamp)
    except ValueError:
        return False
    if abs(now.timestamp() - at) > tolerance_s:
        return False
    return hmac.compare_digest(signature(key, at, body), signed)


def payload(conversions: Sequence[Conversion]) -> dict[str, object]:
    return {
        "type": "conversions",
        "conversions": [
            {
                "id": c.id,
                "call_id": c.call_id,
                "name": c.name,
                "outcome": c.outcome,
                "value": c.value,
                "currency": c.currency,
                "occurred_at": c.occurred_at.isoformat(),
                "caller_number": c.caller_number,
                "click_ids": c.click_ids,
                "campaign": c.campaign,
                "source": c.source,
            }
            for c in conversions
        ],
    }


class WebhookExporter(Exporter):
    kind = "webhook"

    def __init__(self, destination: WebhookDestination, env: Mapping[str, str]) -> None:
        self.name = destination.name
        self.destination = destination
        self._env = env
        self.batch_limit = batch_size(destination.batch_size, WEBHOOK_LIMIT)

    def render(
        self, conversions: Sequence[Conversion], now: datetime
    ) -> tuple[list[Outgoing], list[Skip]]:
        if not conversions:
            return [], []
        key = secret(self._env, self.destination.secret_env)
        body = json.dumps(payload(conversions), separators=(",", ":")).encode()
        timestamp = int(now.timestamp())
        ids = tuple(c.id for c in conversions)
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature(key, timestamp, body),
            "Idempotency-Key": hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:40],
        }
        return [Outgoing(ids, "POST", self.destination.url, headers, body)], []

    def judge(self, status: int, body: bytes) -> Judgement:
        if status == 409:
            return Judgement(accepted=True)  # the receiver already has these
        return super().judge(status, body)
