"""Word error rate: (substitutions + deletions + insertions) / reference words. Pure."""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9']+")
# Titles Whisper writes abbreviated where a transcript spells them out (as Whisper's own
# English normaliser maps them): "Mr. Dashwood" and "mister Dashwood" are the same words.
_SPELLED = {"mr": "mister", "mrs": "missus", "ms": "miss", "dr": "doctor"}


def words(text: str) -> list[str]:
    """Lower case, punctuation dropped ("Americans," and "americans" are one word), titles
    spelled out."""
    return [_SPELLED.get(w, w) for w in _WORD.findall(text.lower().replace("-", " "))]


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, start=1):
        current = [i] + [0] * len(hypothesis)
        for j, hyp in enumerate(hypothesis, start=1):
            current[j] = min(
                previous[j] + 1,  # deletion
                current[j - 1] + 1,  # insertion
                previous[j - 1] + (ref != hyp),  # substitution or match
            )
        previous = current
    return previous[-1]


def wer(reference: str, hypothesis: str) -> float:
    ref = words(reference)
    if not ref:
        return 0.0 if not words(hypothesis) else 1.0
    return edit_distance(ref, words(hypothesis)) / len(ref)
