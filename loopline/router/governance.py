"""What the router asks of governance for each new call: consent, and the ADMT opt-out.

`loopline.compliance.governance.CallGovernance` answers from the deployment's `compliance:`
section; the web room hands it to the router at start. Without one, every call streams with
no disclosure and every caller is routed by the policies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from loopline.domain.calls import Caller
from loopline.domain.consent import ConsentDecision, OptOutVia
from loopline.domain.journey import JourneyMatch


class Governance(Protocol):
    def consent(self, caller: Caller) -> ConsentDecision | None:
        """Pure: the disclosure and streaming this caller gets (None: no policy)."""
        ...

    def opt_out(
        self, digits: str | None, crm: Mapping[str, Any], journey: JourneyMatch | None
    ) -> OptOutVia | None:
        """Pure: how the caller opted out of automated decision-making, if they did."""
        ...
