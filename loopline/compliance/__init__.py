"""Compliance: users and roles, the audit log (redaction, consent and retention live here too)."""
