"""Transcript helpers for the attribution tests: `agent: ...` / `caller: ...` lines."""

from __future__ import annotations

from loopline.attribution.transcript import Line, Transcript


def lines(*said: str, step_ms: int = 4000) -> list[Line]:
    out = []
    for i, entry in enumerate(said):
        speaker, _, text = entry.partition(": ")
        out.append(
            Line(
                speaker=speaker, text=text, start_ms=i * step_ms, end_ms=i * step_ms + step_ms - 500
            )
        )
    return out


def transcript(*said: str, step_ms: int = 4000) -> Transcript:
    return Transcript.of(lines(*said, step_ms=step_ms))
