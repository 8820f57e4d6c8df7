from __future__ import annotations

import pytest

from loopline.media.wer import wer


@pytest.mark.parametrize(
    ("ref", "hyp", "expected"),
    [
        ("ask not what your country", "Ask not, what your country!", 0.0),
        ("a b c d", "a x c d", 0.25),
        ("a b c d", "a c d", 0.25),
        ("a b c d", "a b c d e", 0.25),
        ("a b", "", 1.0),
        ("", "", 0.0),
        ("and mister John Dashwood", "And Mr. John Dashwood", 0.0),
        ("doctor who", "Dr. Who", 0.0),
    ],
)
def test_wer(ref: str, hyp: str, expected: float) -> None:
    assert wer(ref, hyp) == pytest.approx(expected)
