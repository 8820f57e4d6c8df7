"""Closing the loop: outcomes, QA scores, conversions, the outbox and its exporters, KPIs."""
