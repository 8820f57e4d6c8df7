"""CRM look-ups: what we know of a caller before an agent picks up (`crm.tier`, ...).

A look-up sits on the path of a ringing call, so it never raises and never waits long: when a
CRM is slow, down or talks nonsense the call is routed without it (`{}`), a warning is logged
and `failures` counts it. Numbers never appear in log text.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx
import phonenumbers
import yaml

from loopline.providers.crm_files import SQLITE_SUFFIXES, parse_crm_csv, read_crm_sqlite

log = logging.getLogger(__name__)

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


class CrmError(Exception):
    """A CRM source is unusable (e.g. its file does not load). Only `FileCrm.load` raises it."""


CrmStatus = Literal["ok", "unknown", "over_budget", "failed"]


@dataclass(frozen=True)
class CrmAnswer:
    """A look-up's record and how it went: `over_budget` means the call routes without it."""

    record: dict[str, Any]
    status: CrmStatus


class CrmClient(ABC):
    """Looks a caller up by E.164 number."""

    async def fetch(self, number_e164: str) -> CrmAnswer:
        """Like `lookup`, saying whether an empty record means unknown, failed or over budget.
        Never raises."""
        record = await self.lookup(number_e164)
        return CrmAnswer(record, "ok" if record else "unknown")

    @abstractmethod
    async def lookup(self, number_e164: str) -> dict[str, Any]:
        """The caller's record, or `{}` when unknown, the number is not E.164 or the CRM
        failed. Never raises."""

    async def close(self) -> None:  # noqa: B027 - optional hook, file-backed CRMs hold nothing
        """Release connections; the client is not used afterwards."""


class FileCrm(CrmClient):
    """Records from a YAML or JSON file mapping E.164 numbers to records, or from a table:
    a `.csv` export or an SQLite file (`.sqlite`, `.sqlite3`, `.db`), see `crm_files`.

    The file is read in a worker thread on first use and read again when its modification
    time or size changes, so an edited file takes effect without a restart: within `recheck_s`
    (one second by default), since a look-up checks the file at most that often. Between
    checks a look-up is a dictionary read, with no lock and no thread: it sits on the path of
    every ringing call. A reload that fails keeps the records already loaded. Keys are
    normalised to E.164, so `"+1 415 555 2671"` and an unquoted YAML `+14155552671` (which YAML
    reads as an integer) both work.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        recheck_s: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = Path(path)
        self._records: dict[str, dict[str, Any]] = {}
        self._stamp: tuple[int, int] | None = None
        self._lock = asyncio.Lock()
        self._recheck_s = recheck_s
        self._monotonic = monotonic
        self._checked_at: float | None = None
        self.failures = 0

    async def load(self) -> int:
        """Read the file now; returns how many records it holds. Raises `CrmError`."""
        async with self._lock:
            await asyncio.to_thread(self._refresh, True)
            self._checked_at = self._monotonic()
            return len(self._records)

    def _due(self) -> bool:
        checked = self._checked_at
        return checked is None or self._monotonic() - checked >= self._recheck_s

    async def lookup(self, number_e164: str) -> dict[str, Any]:
        if not _E164.fullmatch(number_e164):
            return {}
        if self._due():
            async with self._lock:
                if self._due():  # not already done by a look-up that held the lock
                    try:
                        await asyncio.to_thread(self._refresh, False)
                    except CrmError as exc:
                        self.failures += 1
                        log.warning("crm file unusable, serving the last good records: %s", exc)
                    self._checked_at = self._monotonic()
        record = self._records.get(number_e164)
        return dict(record) if record is not None else {}

    def _refresh(self, force: bool) -> None:
        """Runs in a worker thread: stat the file and load it if it changed."""
        try:
            info = self._path.stat()
        except OSError as exc:
            raise CrmError(f"cannot read {self._path.name}: {type(exc).__name__}") from exc
        stamp = (info.st_mtime_ns, info.st_size)
        if not force and stamp == self._stamp:
            return
        suffix = self._path.suffix.lower()
        if suffix in SQLITE_SUFFIXES:
            self._records = read_crm_sqlite(self._path, _key_to_e164, CrmError)
            self._stamp = stamp
            return
        try:
            text = self._path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CrmError(f"cannot read {self._path.name}: {type(exc).__name__}") from exc
        if suffix == ".csv":
            self._records = parse_crm_csv(text, _key_to_e164, CrmError)
        else:
            self._records = parse_crm_records(text, json_only=suffix == ".json")
        self._stamp = stamp


def parse_crm_records(text: str, *, json_only: bool = False) -> dict[str, dict[str, Any]]:
    """Parse a CRM file's text into E.164 -> record. Raises `CrmError` (no numbers in it)."""
    try:
        data = json.loads(text) if json_only else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise CrmError(f"not valid {'JSON' if json_only else 'YAML'}") from exc
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise CrmError("the file must map numbers to records")
    records: dict[str, dict[str, Any]] = {}
    for position, (key, record) in enumerate(data.items(), start=1):
        number = _key_to_e164(key)
        if number is None:
            raise CrmError(f"entry {position}: the key is not a phone number")
        if not isinstance(record, Mapping):
            raise CrmError(f"entry {position}: the record is not a mapping")
        records[number] = {str(k): v for k, v in record.items()}
    return records


def _key_to_e164(key: object) -> str | None:
    if isinstance(key, bool) or not isinstance(key, str | int):
        return None
    text = f"+{key}" if isinstance(key, int) else key.strip()
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


class HttpCrm(CrmClient):
    """Records from an HTTP endpoint: GET `url_template.format(number=<quoted E.164>)`.

    A 2xx JSON object is the record; 404 means unknown. Anything else (another status, a body
    that is not a JSON object, a network error, or no answer within `budget_s`) is a failure.
    """

    def __init__(
        self,
        url_template: str,
        *,
        budget_s: float = 0.3,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if "{number}" not in url_template:
            raise ValueError("url_template must contain {number}")
        if budget_s <= 0:
            raise ValueError("budget_s must be positive")
        self._url_template = url_template
        self._budget_s = budget_s
        self._http = httpx.AsyncClient(
            headers=dict(headers or {}), timeout=budget_s, follow_redirects=False
        )
        self.failures = 0

    async def lookup(self, number_e164: str) -> dict[str, Any]:
        return (await self.fetch(number_e164)).record

    async def fetch(self, number_e164: str) -> CrmAnswer:
        if not _E164.fullmatch(number_e164):
            return CrmAnswer({}, "unknown")
        url = self._url_template.format(number=quote(number_e164, safe=""))
        try:
            async with asyncio.timeout(self._budget_s):
                response = await self._http.get(url)
        except (TimeoutError, httpx.TimeoutException):
            return self._failed("no answer within the budget", "over_budget")
        except httpx.HTTPError as exc:
            # The exception text may hold the URL, and so the number: log its type only.
            return self._failed(type(exc).__name__)
        if response.status_code == 404:
            return CrmAnswer({}, "unknown")
        if not response.is_success:
            return self._failed(f"HTTP {response.status_code}")
        try:
            record = response.json()
        except ValueError:
            return self._failed("the body is not JSON")
        if not isinstance(record, dict):
            return self._failed("the body is not a JSON object")
        return CrmAnswer(record, "ok")

    async def close(self) -> None:
        await self._http.aclose()

    def _failed(self, reason: str, status: CrmStatus = "failed") -> CrmAnswer:
        self.failures += 1
        log.warning("crm lookup failed, routing without it: %s", reason)
        return CrmAnswer({}, status)


class ChainedCrm(CrmClient):
    """Asks every source at once and merges their records key by key; where two sources give
    the same key, the one listed first wins (list a local override file before a remote CRM).
    Takes as long as the slowest source, each of which keeps its own budget. `failures` counts
    sources that raised despite the contract; each source still counts its own failures."""

    def __init__(self, sources: Sequence[CrmClient]) -> None:
        self._sources = list(sources)
        self.failures = 0

    async def lookup(self, number_e164: str) -> dict[str, Any]:
        return (await self.fetch(number_e164)).record

    async def fetch(self, number_e164: str) -> CrmAnswer:
        results = await asyncio.gather(
            *(source.fetch(number_e164) for source in self._sources), return_exceptions=True
        )
        merged: dict[str, Any] = {}
        statuses: set[CrmStatus] = set()
        for result in reversed(results):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                # A source broke its promise not to raise; the others still count.
                self.failures += 1
                statuses.add("failed")
                log.warning("crm source raised %s, skipped", type(result).__name__)
                continue
            statuses.add(result.status)
            merged.update(result.record)
        # The worst news wins: one source over budget means the call routed without it.
        for status in ("over_budget", "failed"):
            if status in statuses:
                return CrmAnswer(merged, status)
        return CrmAnswer(merged, "ok" if merged else "unknown")

    async def close(self) -> None:
        for source in self._sources:
            await source.close()
