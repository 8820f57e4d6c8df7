"""μ-law and resampling: the values G.711 defines, and round trips."""

from __future__ import annotations

import numpy as np
import pytest

from loopline.media.codec import resample, to_float, to_pcm, ulaw_decode, ulaw_encode


@pytest.mark.parametrize(
    ("code", "pcm"),
    [(0xFF, 0), (0x7F, 0), (0x00, -32124), (0x80, 32124), (0xFE, 8), (0x7E, -8), (0xF0, 120)],
)
def test_decode_known_values(code: int, pcm: int) -> None:
    assert int(ulaw_decode(bytes([code]))[0]) == pcm


def test_every_code_round_trips() -> None:
    codes = bytes(range(256))
    decoded = ulaw_decode(codes)
    again = ulaw_decode(ulaw_encode(decoded))
    assert np.array_equal(decoded, again)


@pytest.mark.parametrize(("value", "code"), [(0, 0xFF), (32767, 0x80), (-32768, 0x00), (-1, 0x7F)])
def test_encode_known_values(value: int, code: int) -> None:
    assert ulaw_encode(np.array([value], dtype=np.int16)) == bytes([code])


def test_encoding_error_is_small_relative_to_the_signal() -> None:
    t = np.arange(8000) / 8000
    tone = to_pcm((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    back = ulaw_decode(ulaw_encode(tone)).astype(np.float64)
    noise = np.mean((back - tone) ** 2)
    assert 10 * np.log10(np.mean(tone.astype(np.float64) ** 2) / noise) > 30  # dB SNR


def test_resample_doubles_the_samples_and_keeps_the_tone() -> None:
    t = np.arange(8000) / 8000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    wide = resample(tone, 8000, 16000)
    assert wide.dtype == np.float32 and len(wide) == 16000
    spectrum = np.abs(np.fft.rfft(wide))
    assert abs(np.argmax(spectrum) * 16000 / len(wide) - 440) < 2


def test_to_float_range() -> None:
    pcm = np.array([-32768, 0, 32767], dtype=np.int16)
    assert to_float(pcm).tolist() == pytest.approx([-1.0, 0.0, 32767 / 32768])
