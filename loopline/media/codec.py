"""G.711 μ-law and resampling: what Twilio sends (8 kHz μ-law) into what the models read."""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

PCM = npt.NDArray[np.int16]
Samples = npt.NDArray[np.float32]

TWILIO_RATE: Final = 8_000
ASR_RATE: Final = 16_000
ULAW_SILENCE: Final = 0xFF  # decodes to 0
_BIAS: Final = 0x84
_CLIP: Final = 32_635


def _decode_table() -> PCM:
    codes = np.arange(256, dtype=np.int32)
    inverted = ~codes & 0xFF
    sign = inverted & 0x80
    exponent = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    table = np.where(sign != 0, -magnitude, magnitude).astype(np.int16)
    table.flags.writeable = False
    return table


def _exponent_table() -> npt.NDArray[np.uint8]:
    # The position of the highest set bit of (biased sample >> 7), for bytes 0..255.
    values = np.arange(256)
    table = np.zeros(256, dtype=np.uint8)
    nonzero = values > 0
    table[nonzero] = np.floor(np.log2(values[nonzero])).astype(np.uint8)
    table.flags.writeable = False
    return table


_DECODE: Final = _decode_table()
_EXPONENT: Final = _exponent_table()


def ulaw_decode(data: bytes) -> PCM:
    """μ-law bytes to 16-bit linear PCM."""
    return _DECODE[np.frombuffer(data, dtype=np.uint8)]


def ulaw_encode(pcm: PCM) -> bytes:
    """16-bit linear PCM to μ-law bytes (G.711, as a telephone network would)."""
    samples = pcm.astype(np.int32)
    sign = np.where(samples < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(samples), _CLIP) + _BIAS
    exponent = _EXPONENT[(magnitude >> 7) & 0xFF].astype(np.int32)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    code = ~(sign | (exponent << 4) | mantissa) & 0xFF
    return bytes(code.astype(np.uint8).tobytes())


def to_float(pcm: PCM) -> Samples:
    """PCM to float32 in [-1, 1), what Silero and Whisper read."""
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32, copy=False)


def to_pcm(samples: Samples) -> PCM:
    clipped = np.clip(samples, -1.0, 32767 / 32768)
    return (clipped * 32768.0).astype(np.int16)


def resample(samples: Samples, from_rate: int, to_rate: int) -> Samples:
    """Resample with soxr (CPU work: call it on the speech worker pool, not on the loop)."""
    if from_rate == to_rate or samples.size == 0:
        return samples.astype(np.float32, copy=False)
    import soxr

    out = soxr.resample(samples, from_rate, to_rate, quality="HQ")
    return np.asarray(out, dtype=np.float32)
