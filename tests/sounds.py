"""Sounds made in memory for matching tests (no encoding): harmonic songs and their fingerprints."""

from __future__ import annotations

import numpy as np

from mediadna import audio as A
from mediadna.fingerprint import Fingerprint


def harmonic_song(seed: int, seconds: float) -> np.ndarray:
    """Random harmonic notes over a faint floor, 8 kHz."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 8000)
    x = 0.003 * rng.standard_normal(n)
    t = 0.0
    while t < seconds:
        dur = rng.uniform(0.12, 0.5)
        i0 = int(t * 8000)
        tt = np.arange(min(n - i0, int(1.6 * dur * 8000))) / 8000
        f0 = 110.0 * 2 ** (rng.integers(0, 36) / 12.0)
        x[i0 : i0 + len(tt)] += rng.uniform(0.3, 1.0) * np.exp(-tt / (0.6 * dur)) * sum(
            0.7**k * np.sin(2 * np.pi * f0 * (k + 1) * tt) for k in range(4) if f0 * (k + 1) < 3800)
        t += dur
    return (0.8 * x / np.abs(x).max()).astype(np.float32)


def sound_fingerprint(x: np.ndarray, shifts: int = 1) -> Fingerprint:
    """The audio-only fingerprint of 8 kHz samples (``shifts`` > 1: with the sub-hop grids of a short query)."""
    ex = A.AudioExtractor(8000, shifts=shifts)
    ex.feed(x)
    track = ex.finish()
    return Fingerprint(duration=len(x) / 8000, sha256="", media_type="audio", params={"audio_rate": 8000},
                       audio=track, shifted=ex.shifted)
