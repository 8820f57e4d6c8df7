"""Which kinds a deployment redacts: card data always (PCI DSS), the configured personal data,
and health information for health deployments (`compliance.redact_phi`). Pure."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

PCI_KINDS: Final = frozenset({"card", "cvv", "expiry"})
# HIPAA's identifiers that a call's words carry, on top of the health details themselves.
PHI_KINDS: Final = frozenset({"mrn", "health", "dob", "ssn", "phone", "email"})


def redaction_kinds(configured: Iterable[str], *, phi: bool) -> frozenset[str]:
    """The kinds redacted from every transcript line: PCI can never be switched off."""
    kinds = set(configured) | PCI_KINDS
    if phi:
        kinds |= PHI_KINDS
    return frozenset(kinds)
