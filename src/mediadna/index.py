"""What goes into the inverted index, and what a query looks up.

Visual terms: each 64-bit frame hash is cut into four 16-bit bands (multi-index
hashing: two hashes within 3 bits share at least one band exactly, and most
copies within ~10 bits still share one).  A term is ``band << 16 | value``.
Consecutive frames repeating a term (a static shot) post it once.

Audio terms: 20-bit landmark hashes at their anchor times.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from . import audio as A
from .fingerprint import Fingerprint
from .store.base import Postings

VISUAL_BANDS = 4
BAND_BITS = 16
#: Query-side time/pitch scales for audio: copies sped up or slowed by up to
#: 10 %.  Time-only (tempo change, pitch kept) in 2 % steps, time+pitch
#: (resampled) in 1 % steps: the rounding error of a peak stays under a bin.
TEMPO_SCALES = tuple(round(1.0 + 0.02 * k, 2) for k in range(-5, 6))
RESAMPLE_SCALES = tuple(round(1.0 + 0.01 * k, 2) for k in range(-10, 11) if k != 0)


def hashes2terms(hashes: np.ndarray) -> np.ndarray:
    """(N,) uint64 -> (N, VISUAL_BANDS) uint32 band terms."""
    h = np.asarray(hashes, np.uint64)
    cols = []
    for band in range(VISUAL_BANDS):
        shift = np.uint64(64 - BAND_BITS * (band + 1))
        value = (h >> shift) & np.uint64((1 << BAND_BITS) - 1)
        cols.append((np.uint64(band) << np.uint64(BAND_BITS)) | value)
    return np.stack(cols, axis=1).astype(np.uint32) if len(h) else np.zeros((0, VISUAL_BANDS), np.uint32)


def fingerprint2postings(fp: Fingerprint) -> Postings:
    vk = np.zeros(0, np.uint32)
    vt = np.zeros(0, np.float32)
    if fp.visual is not None and len(fp.visual):
        track = fp.visual.select(fp.visual.informative)
        terms = hashes2terms(track.hashes)
        keep = np.ones_like(terms, dtype=bool)
        keep[1:] = terms[1:] != terms[:-1]  # a run of one term posts once
        vk = terms[keep]
        vt = np.broadcast_to(track.times[:, None], terms.shape)[keep]
    ak = np.zeros(0, np.uint32)
    at = np.zeros(0, np.float32)
    if fp.audio is not None and len(fp.audio):
        ak, frames = A.peaks2landmarks(fp.audio.frames, fp.audio.bins)
        ak, frames = A.drop_repeated(ak, frames, fp.duration)
        at = (frames * A.HOP / float(fp.params.get("audio_rate", 8000))).astype(np.float32)
    return Postings(vk, vt, ak, at)


def audio_query_variants(fp: Fingerprint, unit_only: bool = False, speeds: Iterable[float] | None = None) -> list[tuple]:
    """[(time_scale, freq_scale, hashes, query times in seconds, anchor tracks, target tracks)] for a query.

    Query times are the query's own (unscaled) times; ``time_scale`` maps them
    onto the reference's time axis.  Every STFT grid the query has peaks on
    (its own and, for a short input, the sub-hop shifted ones) gives its own
    variants.  The tracks (:func:`mediadna.audio.peak_tracks`) of each
    landmark's two peaks let the matcher count independent evidence.
    ``unit_only``: just the speed-1 variants (what the index is asked about);
    ``speeds``: just the variants whose time scale is one of these.
    """
    if fp.audio is None or not len(fp.audio):
        return []
    rate = float(fp.params.get("audio_rate", 8000))
    grids = [(0, fp.audio)] + [(o, t) for o, t in sorted(fp.shifted.items()) if o and len(t)]
    out = []
    combos = [(s, 1.0) for s in TEMPO_SCALES] + [(s, 1.0 / s) for s in RESAMPLE_SCALES]
    if unit_only:
        combos = [(1.0, 1.0)]
    elif speeds is not None:
        wanted = {round(float(x), 2) for x in speeds}
        combos = [c for c in combos if c[0] in wanted]
    if not combos:
        return []
    for g, (offset, track) in enumerate(grids):
        # track ids distinct across grids (each grid has its own peaks)
        tracks = A.peak_tracks(track.frames, track.bins) + (g << 40)
        for (ts, fs), (h, frames, a, b) in zip(combos, A.scaled_landmark_pairs(track.frames, track.bins, combos)):
            keep = ~A.repeated(h, fp.duration)
            h, frames, a, b = h[keep], frames[keep], a[keep], b[keep]
            out.append((ts, fs, h, ((frames / ts) * A.HOP + offset) / rate, tracks[a], tracks[b]))
    return out
