"""Outcome classification: rules over the call and its transcript, the trained model's answer,
and the agent's disposition, which always wins. Pure: values in, an `Outcome` out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from loopline.attribution.facts import CallFacts
from loopline.attribution.phrases import PhraseSet, evidence_of
from loopline.attribution.transcript import Transcript
from loopline.config.attribution import AttributionConfig, OutcomeRule
from loopline.domain.outcomes import Evidence, Outcome


@dataclass(frozen=True)
class Prediction:
    """The transcript classifier's answer: its best label and the runners-up."""

    label: str
    confidence: float
    ranked: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class _Compiled:
    rule: OutcomeRule
    phrases: PhraseSet


class OutcomeRules:
    def __init__(self, config: AttributionConfig) -> None:
        self.config = config
        self._rules = [_Compiled(rule, PhraseSet(rule.phrases)) for rule in config.rules]

    def match(
        self, facts: CallFacts, transcript: Transcript
    ) -> tuple[OutcomeRule, list[Evidence]] | None:
        """The surest rule that holds (the first on a tie), with its evidence."""
        best: tuple[OutcomeRule, list[Evidence]] | None = None
        for compiled in self._rules:
            evidence = _holds(compiled, facts, transcript)
            if evidence is None:
                continue
            if best is None or compiled.rule.confidence > best[0].confidence:
                best = (compiled.rule, evidence)
        return best

    def classify(
        self,
        facts: CallFacts,
        transcript: Transcript,
        prediction: Prediction | None,
        now: datetime,
    ) -> Outcome:
        matched = self.match(facts, transcript)
        threshold = self.config.classifier.min_confidence
        model_usable = (
            prediction is not None
            and facts.answered
            and not transcript.empty
            and prediction.label in self.config.labels
            and prediction.confidence >= threshold
        )
        if (
            model_usable
            and prediction is not None
            and (matched is None or prediction.confidence > matched[0].confidence)
        ):
            runners = ", ".join(f"{label} {p:.2f}" for label, p in prediction.ranked[1:3])
            detail = f"transcript model: {prediction.label} {prediction.confidence:.2f}"
            evidence = [
                Evidence(kind="model", detail=detail + (f" (then {runners})" if runners else ""))
            ]
            if matched is not None:
                evidence.append(
                    Evidence(
                        kind="fact",
                        detail=f"rules said {matched[0].label} {matched[0].confidence:.2f}",
                    )
                )
            return self._outcome(
                facts, prediction.label, prediction.confidence, "classifier", evidence, now
            )
        if matched is not None:
            rule, evidence = matched
            return self._outcome(facts, rule.label, rule.confidence, "rules", evidence, now)
        evidence = [
            Evidence(kind="fact", detail="no rule held and no model answer was sure enough")
        ]
        return self._outcome(facts, self.config.default_label, 0.3, "default", evidence, now)

    @staticmethod
    def _outcome(
        facts: CallFacts,
        label: str,
        confidence: float,
        source: str,
        evidence: list[Evidence],
        now: datetime,
    ) -> Outcome:
        return Outcome(
            call_id=facts.call_id,
            label=label,
            confidence=round(min(1.0, max(0.0, confidence)), 4),
            source=source,
            evidence=evidence,
            agent_id=facts.agent_id,
            at=now,
        )


def _holds(compiled: _Compiled, facts: CallFacts, transcript: Transcript) -> list[Evidence] | None:
    """The evidence that every condition of the rule holds, or None when one does not."""
    rule = compiled.rule
    evidence: list[Evidence] = []
    if rule.answered is not None:
        if facts.answered != rule.answered:
            return None
        evidence.append(
            Evidence(kind="fact", detail="answered" if facts.answered else "not answered")
        )
    duration = facts.duration_s
    if rule.min_duration_s is not None or rule.max_duration_s is not None:
        if duration is None:
            return None
        if rule.min_duration_s is not None and duration < rule.min_duration_s:
            return None
        if rule.max_duration_s is not None and duration > rule.max_duration_s:
            return None
        evidence.append(Evidence(kind="fact", detail=f"lasted {duration:.0f} s"))
    if rule.end_reasons:
        if (facts.end_reason or "") not in rule.end_reasons:
            return None
        evidence.append(Evidence(kind="fact", detail=f"ended: {facts.end_reason}"))
    if compiled.phrases:
        hit = compiled.phrases.first(transcript, rule.speaker)
        if hit is None:
            return None
        evidence.append(evidence_of(hit, transcript))
    return evidence


def disposition_outcome(
    facts_call_id: str,
    label: str,
    *,
    value: float | None,
    currency: str | None,
    notes: str | None,
    agent_id: str | None,
    decided_by: str,
    now: datetime,
) -> Outcome:
    """The agent's (or a supervisor's) word on the call: certain, and kept as a training label."""
    return Outcome(
        call_id=facts_call_id,
        label=label,
        confidence=1.0,
        source="disposition",
        evidence=[Evidence(kind="disposition", detail=f"dispositioned by {decided_by}")],
        value=value,
        currency=currency,
        notes=notes,
        agent_id=agent_id,
        decided_by=decided_by,
        at=now,
    )
