"""Recording and transcription consent: pure, from the deployment's policy and the caller."""

from __future__ import annotations

from loopline.config.compliance import ConsentConfig
from loopline.domain.calls import Caller
from loopline.domain.consent import ConsentDecision

__all__ = ["ConsentDecision", "consent_for"]


def consent_for(policy: ConsentConfig, caller: Caller) -> ConsentDecision:
    """Decide the disclosure and streaming for one caller (US state from the number's area
    code, or the provider's FromState)."""
    region = caller.region if caller.country in (None, "US") else None
    known = region is not None
    all_party = (
        (region in policy.all_party_states) if known else (policy.unknown_location_is_all_party)
    )
    where = f"caller in {region}" if known else "caller location unknown"
    party = "all-party-consent" if all_party else "one-party-consent"
    if policy.mode == "off":
        disclose, stream, basis = False, True, "disclosure off for this deployment"
    elif policy.mode == "notify":
        disclose, stream, basis = True, True, "deployment discloses to every caller"
    elif policy.mode == "all-party":
        disclose, stream = all_party, True
        basis = f"{where}: {party} rules" + (", disclosure played" if all_party else "")
    else:  # no-stream-all-party
        disclose, stream = False, not all_party
        basis = f"{where}: {party} rules" + (", no stream started" if all_party else "")
    return ConsentDecision(
        disclose=disclose,
        stream=stream,
        basis=basis,
        jurisdiction=region,
        all_party=all_party,
        disclosure=policy.disclosure if disclose else None,
        disclosure_audio_url=policy.disclosure_audio_url if disclose else None,
    )
