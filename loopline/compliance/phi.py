"""Protected health information in a transcript line: record and member numbers said after
their name, and health conditions, treatments and medications. Pure, regular expressions only.

Used by `redaction.redact` when a deployment redacts PHI (`compliance.redact_phi`); dates of
birth, SSNs, phone numbers and e-mail addresses are found there already.
"""

from __future__ import annotations

import re
from typing import Final, Literal

PhiKind = Literal["mrn", "health"]

# "my member ID is AB 1234 5678", "medical record number 00451", "policy number: HX-99812".
_ID_CUE: Final = re.compile(
    r"\b(?:medical\s+record|mrn|member|patient|health\s+plan|insurance|policy|group|"
    r"subscriber|beneficiary|prescription|rx|medicare|medicaid)"
    r"(?:\s+(?:id|identification|number|no\.?|#))?(?:\s+(?:is|was))?\s*[:#]?\s*",
    re.IGNORECASE,
)
_ID_VALUE: Final = re.compile(
    r"(?:[A-Za-z]{1,4}[\s-]?)?\d[\d\s-]{2,}\d|(?:[A-Za-z]{1,4}[\s-]?)?\d{3,}", re.IGNORECASE
)
_SPOKEN_DIGITS: Final = re.compile(
    r"(?:(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)[\s,-]+){3,}"
    r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)\b",
    re.IGNORECASE,
)
_CONDITIONS: Final = (
    "diabetes|diabetic|cancer|tumou?r|leukemia|lymphoma|chemo(?:therapy)?|radiation therapy|"
    "hiv|aids|hepatitis(?:\\s+[abc])?|tuberculosis|syphilis|chlamydia|gonorrh(?:o)?ea|herpes|"
    "depression|anxiety disorder|bipolar|schizophreni[ac]|ptsd|dementia|alzheimer'?s|"
    "epilep(?:sy|tic)|seizures?|asthma|copd|hypertension|high blood pressure|heart attack|"
    "stroke|heart failure|dialysis|kidney failure|pregnan(?:t|cy)|miscarriage|abortion|"
    "overdose|opioids?|methadone|suboxone|insulin|metformin|chemotherapy|rehab(?:ilitation)?|"
    "substance abuse|alcoholism|suicidal|autism|multiple sclerosis|parkinson'?s"
)
_HEALTH: Final = re.compile(rf"\b(?:{_CONDITIONS})\b", re.IGNORECASE)
# "diagnosed with <one to three words>", "prescribed <word>", "treated for <words>".
_DIAGNOSIS: Final = re.compile(
    r"\b(?:diagnosed\s+with|prescribed|treated\s+for|suffering\s+from|taking\s+medication\s+for)"
    r"\s+((?:[A-Za-z'-]+\s?){1,3})",
    re.IGNORECASE,
)
_STOP: Final = frozenset({"and", "but", "so", "because", "the", "a", "an", "last", "in", "on"})


def find_phi(text: str) -> list[tuple[PhiKind, int, int]]:
    """Spans (kind, start, end) of PHI in `text`, in the original's character offsets."""
    spans: list[tuple[PhiKind, int, int]] = []
    for cue in _ID_CUE.finditer(text):
        rest = text[cue.end() :]
        value = _ID_VALUE.match(rest) or _SPOKEN_DIGITS.match(rest)
        if value is not None and value.group(0).strip():
            start = cue.end() + value.start()
            end = cue.end() + len(value.group(0).rstrip(" -,"))
            spans.append(("mrn", start, end))
    spans.extend(("health", m.start(), m.end()) for m in _HEALTH.finditer(text))
    for m in _DIAGNOSIS.finditer(text):
        words = m.group(1).split()
        kept: list[str] = []
        for word in words:
            if word.lower() in _STOP:
                break
            kept.append(word)
        if kept:
            start = m.start(1)
            end = start + len(" ".join(kept))
            if text[start:end] == " ".join(kept):
                spans.append(("health", start, end))
    return sorted(spans, key=lambda s: (s[1], -s[2]))
