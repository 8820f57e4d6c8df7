"""What governance decided for one call: recording consent and the automated-decision opt-out.

Kept in the domain so the call's live state, its events and its record can carry them; the
rules that decide them live in `loopline.compliance`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

# How a caller opted out of automated decision-making (California ADMT rules).
OptOutVia = Literal["dtmf", "crm", "journey"]


class ConsentDecision(BaseModel):
    """What the answer does before media streaming, and why; stored on the call."""

    disclose: bool  # play the disclosure before the stream starts
    stream: bool  # start the media stream (transcription) at all
    basis: str  # the rule that decided, in words a compliance officer reads
    jurisdiction: str | None  # the caller's state/region when known
    all_party: bool
    disclosure: str | None = None
    disclosure_audio_url: str | None = None
