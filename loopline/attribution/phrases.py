"""Phrase lists matched as whole words, case-insensitive, in a transcript's lines."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from loopline.attribution.transcript import Transcript
from loopline.domain.outcomes import Evidence


@dataclass(frozen=True)
class Hit:
    phrase: str
    start: int
    end: int
    line: int
    speaker: str


class PhraseSet:
    """One compiled pattern for many phrases; spaces in a phrase match any run of spaces."""

    def __init__(self, phrases: Sequence[str]) -> None:
        self.phrases = tuple(p.strip().lower() for p in phrases if p.strip())
        if self.phrases:
            alternatives = "|".join(
                r"\s+".join(re.escape(word) for word in phrase.split())
                for phrase in sorted(self.phrases, key=len, reverse=True)
            )
            self._pattern: re.Pattern[str] | None = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")
        else:
            self._pattern = None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def hits(self, transcript: Transcript, speaker: str = "any") -> Iterator[Hit]:
        """Matches in time order, in lines of `speaker` ("any": everyone's)."""
        if self._pattern is None:
            return
        for match in self._pattern.finditer(transcript.lowered):
            index = transcript.line_at(match.start())
            if match.start() < transcript.starts[index]:
                continue  # inside the "speaker: " tag, not the words
            line = transcript.lines[index]
            if speaker != "any" and line.speaker != speaker:
                continue
            yield Hit(match.group(0), match.start(), match.end(), index, line.speaker)

    def first(self, transcript: Transcript, speaker: str = "any") -> Hit | None:
        return next(self.hits(transcript, speaker), None)


def evidence_of(hit: Hit, transcript: Transcript, why: str = "") -> Evidence:
    said = transcript.text[hit.start : hit.end]
    detail = f"{why}: said {said!r}" if why else f"said {said!r}"
    return Evidence(kind="phrase", detail=detail, span=(hit.start, hit.end), speaker=hit.speaker)
