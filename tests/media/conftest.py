"""Media fixtures: the committed audio clips at 8 kHz, through a μ-law phone line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from loopline.media.codec import to_float, ulaw_decode
from loopline.media.simulate import read_audio, telephone

AUDIO = Path(__file__).parents[1] / "fixtures" / "audio"
MANIFEST = json.loads((AUDIO / "manifest.json").read_text())


def phone_line(name: str, channel: int | None = None) -> npt.NDArray[np.float32]:
    """A clip as the pipeline hears it: 8 kHz, μ-law encoded and decoded."""
    samples, rate = read_audio(AUDIO / name)
    mono = samples.mean(axis=1) if channel is None else samples[:, channel]
    return to_float(ulaw_decode(telephone(mono, rate)))


@pytest.fixture(scope="session")
def ldc() -> npt.NDArray[np.float32]:
    return phone_line("ldc93s1_8k.wav")
