"""What every exporter is: sans-IO. It renders conversions into HTTP requests and judges the
destination's answer; the outbox's deliverer owns the sockets, retries and bookkeeping."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from loopline.domain.outcomes import Conversion


@dataclass(frozen=True)
class Outgoing:
    """One request, carrying the conversions `ids`."""

    ids: tuple[str, ...]
    method: str
    url: str
    headers: dict[str, str]
    content: bytes
    params: dict[str, str] = field(default_factory=dict)

    def json(self) -> object:
        return json.loads(self.content)


@dataclass(frozen=True)
class Skip:
    """A conversion this destination can never take (no identifier it can match on)."""

    id: str
    reason: str


@dataclass(frozen=True)
class Judgement:
    accepted: bool
    retryable: bool = False
    error: str | None = None


class CredentialMissing(RuntimeError):
    """The environment variable a destination names holds nothing (retried: it may be set)."""


class Exporter(ABC):
    name: str
    kind: str
    # The most conversions one request may carry, as the destination documents.
    batch_limit: int = 1

    @abstractmethod
    def render(
        self, conversions: Sequence[Conversion], now: datetime
    ) -> tuple[list[Outgoing], list[Skip]]:
        """The requests that carry these conversions, and those that cannot go at all.

        Raises `CredentialMissing` when a credential is not set.
        """

    def judge(self, status: int, body: bytes) -> Judgement:
        """The destination's answer: 2xx is accepted; 408, 429 and 5xx are worth a retry."""
        if 200 <= status < 300:
            return Judgement(accepted=True)
        retryable = status in (408, 429) or status >= 500
        return Judgement(accepted=False, retryable=retryable, error=f"HTTP {status}")


def secret(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "")
    if not value:
        raise CredentialMissing(f"environment variable {name} is not set")
    return value


def batch_size(configured: int | None, limit: int) -> int:
    return max(1, min(configured or limit, limit))
