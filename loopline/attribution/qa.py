"""The QA scorecard, scored from what the agent said, with the words behind every item. Pure.

An item that does not apply to a call (no hold, no account details discussed, no agent speech)
is `passed=None` and counts neither for nor against the score.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from loopline.attribution.phrases import Hit, PhraseSet, evidence_of
from loopline.attribution.transcript import Transcript
from loopline.config.attribution import QaItem
from loopline.domain.outcomes import Evidence, QaItemScore, QaScore


@dataclass(frozen=True)
class _Compiled:
    item: QaItem
    phrases: PhraseSet
    second: PhraseSet
    trigger: PhraseSet


class Scorecard:
    def __init__(self, items: list[QaItem]) -> None:
        self._items = [
            _Compiled(
                i, PhraseSet(i.phrases), PhraseSet(i.second_phrases), PhraseSet(i.trigger_phrases)
            )
            for i in items
        ]

    def score(
        self,
        call_id: str,
        transcript: Transcript,
        now: datetime,
        *,
        disclosure_required: bool = True,
    ) -> QaScore:
        """`disclosure_required` False: the consent policy needs no spoken disclosure on this
        call (`compliance.consent`), so disclosure items do not apply to it."""
        results = [
            _result(c, None, [Evidence(kind="fact", detail="not required by the consent policy")])
            if c.item.kind == "disclosure" and not disclosure_required
            else _score_item(c, transcript)
            for c in self._items
        ]
        applicable = [r for r in results if r.passed is not None]
        points = sum(r.points for r in applicable)
        max_points = sum(r.max_points for r in applicable)
        score = round(100.0 * points / max_points, 1) if max_points else 0.0
        return QaScore(
            call_id=call_id,
            score=score,
            points=points,
            max_points=max_points,
            items=results,
            at=now,
        )


def _result(c: _Compiled, passed: bool | None, evidence: list[Evidence]) -> QaItemScore:
    weight = c.item.weight
    return QaItemScore(
        id=c.item.id,
        title=c.item.title,
        passed=passed,
        points=weight if passed else 0.0,
        max_points=weight,
        evidence=evidence,
    )


def _agent_start_ms(transcript: Transcript) -> int | None:
    return next((line.start_ms for line in transcript.lines if line.speaker == "agent"), None)


def _in_time(hit: Hit, transcript: Transcript, start_ms: int, within_s: float | None) -> bool:
    if within_s is None:
        return True
    return transcript.lines[hit.line].start_ms - start_ms <= within_s * 1000


def _score_item(c: _Compiled, t: Transcript) -> QaItemScore:
    item = c.item
    agent_start = _agent_start_ms(t)
    if agent_start is None:
        return _result(c, None, [Evidence(kind="fact", detail="the agent said nothing")])
    match item.kind:
        case "greeting" | "disclosure":
            hit = c.phrases.first(t, "agent")
            if hit is None:
                return _result(c, False, [Evidence(kind="fact", detail="not said")])
            if not _in_time(hit, t, agent_start, item.within_s):
                late = (t.lines[hit.line].start_ms - agent_start) / 1000
                return _result(c, False, [evidence_of(hit, t, f"said {late:.0f} s in, too late")])
            return _result(c, True, [evidence_of(hit, t)])
        case "identity_before_account":
            reveal = c.second.first(t, "agent")
            if reveal is None:
                return _result(c, None, [Evidence(kind="fact", detail="no account details given")])
            verify = c.phrases.first(t, "agent")
            if verify is not None and verify.start < reveal.start:
                return _result(
                    c, True, [evidence_of(verify, t, "verified"), evidence_of(reveal, t, "then")]
                )
            return _result(c, False, [evidence_of(reveal, t, "account details before verifying")])
        case "prohibited":
            hits = list(c.phrases.hits(t, "agent"))
            if hits:
                return _result(c, False, [evidence_of(h, t, "prohibited") for h in hits[:5]])
            return _result(c, True, [Evidence(kind="fact", detail="none said")])
        case "resolution":
            hit = c.phrases.first(t, "agent")
            if hit is None:
                return _result(c, False, [Evidence(kind="fact", detail="no resolution offered")])
            return _result(c, True, [evidence_of(hit, t)])
        case "hold_etiquette":
            hold = c.trigger.first(t, "agent")
            if hold is None:
                return _result(c, None, [Evidence(kind="fact", detail="no hold")])
            asked = c.phrases.first(t, "agent")
            thanked = next((h for h in c.second.hits(t, "agent") if h.start > hold.start), None)
            evidence: list[Evidence] = []
            if asked is not None:
                evidence.append(evidence_of(asked, t, "asked"))
            else:
                evidence.append(evidence_of(hold, t, "hold without asking"))
            if thanked is not None:
                evidence.append(evidence_of(thanked, t, "thanked"))
            else:
                evidence.append(Evidence(kind="fact", detail="no thanks after the hold"))
            return _result(c, asked is not None and thanked is not None, evidence)
    raise AssertionError(f"unknown QA kind {item.kind}")
