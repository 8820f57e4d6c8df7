"""A call's transcript as the scorers read it: lines joined into one text with known offsets."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydantic import BaseModel


class Line(BaseModel):
    speaker: str  # caller | agent
    text: str
    start_ms: int = 0
    end_ms: int = 0


@dataclass(frozen=True)
class Transcript:
    """Lines in time order and their joined text, `speaker: words` one per line.

    Evidence spans index into `text`; `starts[i]` is where line i's words begin in it.
    """

    lines: tuple[Line, ...] = ()
    text: str = ""
    starts: tuple[int, ...] = ()
    lowered: str = field(default="", repr=False)

    @classmethod
    def of(cls, lines: Iterable[Line]) -> Transcript:
        ordered = sorted(
            _dedupe(lines), key=lambda line: (line.start_ms, line.end_ms, line.speaker)
        )
        parts: list[str] = []
        starts: list[int] = []
        offset = 0
        for line in ordered:
            prefix = f"{line.speaker}: "
            starts.append(offset + len(prefix))
            part = prefix + _plain_quotes(line.text.strip())
            parts.append(part)
            offset += len(part) + 1
        text = "\n".join(parts)
        return cls(tuple(ordered), text, tuple(starts), text.lower())

    def words_of(self, speaker: str) -> str:
        return " ".join(line.text for line in self.lines if line.speaker == speaker)

    def plain(self) -> str:
        """The words alone, for the classifier (speaker tags would be features of their own)."""
        return " ".join(line.text for line in self.lines)

    def line_at(self, offset: int) -> int:
        """The index of the line that holds the character at `offset`."""
        return max(0, bisect_right(self.starts, offset) - 1)

    @property
    def empty(self) -> bool:
        return not self.lines


def _dedupe(lines: Iterable[Line]) -> list[Line]:
    """One copy of each line: the same line may come from the bus and from the records."""
    seen: set[tuple[str, int, str]] = set()
    out: list[Line] = []
    for line in lines:
        key = (line.speaker, line.start_ms, line.text.strip())
        if key not in seen:
            seen.add(key)
            out.append(line)
    return out


def _plain_quotes(text: str) -> str:
    # Speech engines write "I’ll" as often as "I'll"; phrases are written with the plain one.
    return text.replace("\u2019", "'").replace("\u2018", "'")
