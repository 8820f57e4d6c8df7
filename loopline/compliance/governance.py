"""The router's `Governance`, from the deployment's `compliance:` section. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loopline.compliance.admt import opt_out_via
from loopline.compliance.consent import consent_for
from loopline.config.compliance import ComplianceConfig
from loopline.domain.calls import Caller
from loopline.domain.consent import ConsentDecision, OptOutVia
from loopline.domain.journey import JourneyMatch


class CallGovernance:
    def __init__(self, config: ComplianceConfig) -> None:
        self.config = config

    def consent(self, caller: Caller) -> ConsentDecision | None:
        return consent_for(self.config.consent, caller)

    def opt_out(
        self, digits: str | None, crm: Mapping[str, Any], journey: JourneyMatch | None
    ) -> OptOutVia | None:
        return opt_out_via(self.config.admt, digits, crm, journey)
