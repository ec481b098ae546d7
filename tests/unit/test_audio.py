"""Audio fingerprint on synthetic 8 kHz signals: peaks, landmarks, streaming.

Signals are seeded random melodies of harmonic notes (sharp onsets,
exponential decay, occasional percussive clicks) over a faint noise floor,
normalised to a mastered level (peak 0.8).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from scipy.signal import resample

from mediadna import audio as A
from mediadna.fingerprint import AudioTrack

RATE = 8000
FPS = RATE / A.HOP  # STFT frames per second (31.25)


# --- signals ----------------------------------------------------------------------
@lru_cache(maxsize=None)
def _melody(seed: int, seconds: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    out = np.zeros(n)
    t = 0.0
    while t < seconds:
        dur = rng.uniform(0.12, 0.5)
        f0 = 110.0 * 2 ** (rng.integers(0, 36) / 12.0)
        i0, i1 = int(t * RATE), min(n, int((t + 1.6 * dur) * RATE))
        tt = np.arange(i1 - i0) / RATE
        env = np.exp(-tt / (0.6 * dur)) * (1 - np.exp(-tt / 0.005))
        note = sum(0.7**k * np.sin(2 * np.pi * f0 * (k + 1) * tt + rng.uniform(0, 2 * np.pi)) for k in range(5) if f0 * (k + 1) < 3800)
        out[i0:i1] += rng.uniform(0.3, 1.0) * env * note
        if rng.random() < 0.3:  # percussive click
            m = min(n - i0, 400)
            out[i0 : i0 + m] += 0.3 * rng.standard_normal(m) * np.exp(-np.arange(m) / 80)
        t += dur
    out += 0.003 * rng.standard_normal(n)
    out = (0.8 * out / np.abs(out).max()).astype(np.float32)
    out.flags.writeable = False
    return out


def melody(seed: int, seconds: float = 12.0) -> np.ndarray:
    return _melody(seed, seconds).copy()


def add_noise(x: np.ndarray, snr_db: float, seed: int = 99) -> np.ndarray:
    rng = np.random.default_rng(seed)
    power = np.mean(x.astype(np.float64) ** 2)
    return (x + rng.standard_normal(len(x)) * np.sqrt(power / 10 ** (snr_db / 10))).astype(np.float32)


def peak_set(frames, bins) -> set[tuple[int, int]]:
    return set(zip(np.asarray(frames).tolist(), np.asarray(bins).tolist()))


def landmarks(x: np.ndarray, **scale):
    f, b = A.samples2peaks(x)
    return A.peaks2landmarks(f, b, **scale)


def offset_matches(h_ref, t_ref, h_q, t_q, offset: float, tol: float = 1.0) -> float:
    """Fraction of query landmarks whose hash occurs in the reference at
    reference time = query time + offset (frames, +-tol)."""
    order = np.argsort(h_ref, kind="stable")
    hs, ts = h_ref[order], t_ref[order].astype(np.float64)
    lo, hi = np.searchsorted(hs, h_q, "left"), np.searchsorted(hs, h_q, "right")
    hit = [np.any(np.abs(ts[a:b] - t - offset) <= tol) for a, b, t in zip(lo, hi, t_q.astype(np.float64))]
    return float(np.mean(hit)) if hit else 0.0


# --- silence -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    ["digital_silence", "dither", "near_silent_noise", "near_silent_tone", "dc_offset", "very_short"],
)
def test_silence_and_near_silence_give_no_peaks(name):
    n = 10 * RATE
    rng = np.random.default_rng(0)
    t = np.arange(n) / RATE
    x = {
        "digital_silence": np.zeros(n),
        "dither": 1e-5 * rng.standard_normal(n),
        "near_silent_noise": 3e-4 * rng.standard_normal(n),
        "near_silent_tone": 1e-4 * np.sin(2 * np.pi * 440 * t),
        "dc_offset": np.full(n, 0.25),
        "very_short": 0.5 * rng.standard_normal(A.N_FFT - 1),
    }[name].astype(np.float32)
    f, b = A.samples2peaks(x)
    assert len(f) == len(b) == 0
    assert f.dtype == np.uint32 and b.dtype == np.uint16
    h, tt = A.peaks2landmarks(f, b)
    assert len(h) == len(tt) == 0


def test_music_after_silence_only_peaks_where_music_is():
    x = np.concatenate([np.zeros(3 * RATE, np.float32), melody(0, 6.0), np.zeros(3 * RATE, np.float32)])
    f, b = A.samples2peaks(x)
    secs = f / FPS
    assert len(f) > 50
    assert secs.min() >= 3.0 - 0.1 and secs.max() <= 9.0 + 0.1


# --- peaks -------------------------------------------------------------------------
def test_peaks_basic_properties():
    x = melody(1)
    f, b = A.samples2peaks(x)
    assert f.dtype == np.uint32 and b.dtype == np.uint16
    assert len(f) >= 8 * 12  # a busy melody: well over a few peaks per second
    n_frames = 1 + (len(x) - A.N_FFT) // A.HOP
    assert f.max() < n_frames
    assert b.min() >= A.MIN_BIN and b.max() <= A.MAX_BIN
    # sorted by (frame, bin), no duplicates
    key = f.astype(np.int64) * 1000 + b
    assert np.all(np.diff(key) > 0)
    # the density cap holds in every one-second block
    assert np.bincount((f / FPS).astype(int)).max() <= A.PEAKS_PER_SECOND


def test_peaks_are_deterministic_and_frame_offset_shifts_them():
    x = melody(2)
    f1, b1 = A.samples2peaks(x)
    f2, b2 = A.samples2peaks(x.copy())
    assert np.array_equal(f1, f2) and np.array_equal(b1, b2)
    f3, b3 = A.samples2peaks(x, frame_offset=1000)
    assert np.array_equal(f3, f1 + 1000) and np.array_equal(b3, b1)
    h1, t1 = A.peaks2landmarks(f1, b1)
    h2, t2 = A.peaks2landmarks(f2, b2)
    assert np.array_equal(h1, h2) and np.array_equal(t1, t2)


def test_peaks_follow_the_notes():
    """A pure tone gives its peaks at the tone's bin."""
    t = np.arange(4 * RATE) / RATE
    env = np.zeros(len(t))
    m = int(0.2 * RATE)
    starts = np.arange(0.1, 3.8, 0.8)
    for s in starts:  # five smooth 0.2 s bursts of 1 kHz
        env[int(s * RATE) : int(s * RATE) + m] = np.hanning(m)
    x = 0.5 * env * np.sin(2 * np.pi * 1000.0 * t) + 1e-3 * np.random.default_rng(0).standard_normal(len(t))
    f, b = A.samples2peaks(x.astype(np.float32))
    assert b.tolist() == [64] * 5  # 1000 Hz / 15.625 Hz per bin
    # one peak per burst, at its loudest frame (the burst's middle)
    assert np.allclose(f * A.HOP / RATE, starts + 0.1, atol=2 * A.HOP / RATE)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_volume_change_keeps_nearly_the_same_peaks(seed):
    x = melody(seed)
    ref = peak_set(*A.samples2peaks(x))
    quiet = peak_set(*A.samples2peaks(x * 0.3))
    loud = peak_set(*A.samples2peaks(np.clip(x * 1.2, -1, 1)))
    assert len(ref & quiet) >= 0.95 * len(ref)
    assert len(ref & quiet) >= 0.95 * len(quiet)
    assert len(ref & loud) >= 0.95 * len(ref)


@pytest.mark.parametrize("seed", [0, 1])
def test_noise_at_10db_snr_keeps_a_good_fraction_of_landmarks(seed):
    x = melody(seed)
    hr, tr = landmarks(x)
    hq, tq = landmarks(add_noise(x, 10.0))
    kept = offset_matches(hr, tr, hq, tq, offset=0.0, tol=0.5)
    kept_ref = offset_matches(hq, tq, hr, tr, offset=0.0, tol=0.5)
    assert kept >= 0.2 and kept_ref >= 0.2, (kept, kept_ref)
    # an unrelated melody with the same noise shares almost nothing at offset 0
    hu, tu = landmarks(add_noise(melody(seed + 50), 10.0))
    assert offset_matches(hr, tr, hu, tu, offset=0.0, tol=0.5) <= 0.02


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_second_shift_keeps_hashes_at_a_constant_offset(seed):
    x = melody(seed)
    hr, tr = landmarks(x)
    hq, tq = landmarks(x[RATE:])  # the copy starts 1 s into the original
    # 1 s = 31.25 STFT frames: not a whole hop, peaks re-quantise by <= 1 frame
    frac = offset_matches(hr, tr, hq, tq, offset=FPS, tol=1.0)
    assert frac >= 0.3, frac
    # and nearly every hash hit agrees on that one offset
    order = np.argsort(hr, kind="stable")
    hs = hr[order]
    lo, hi = np.searchsorted(hs, hq, "left"), np.searchsorted(hs, hq, "right")
    diffs = np.concatenate([tr[order[a:b]] - t for a, b, t in zip(lo, hi, tq)])
    assert len(diffs) > 50
    assert np.mean(np.abs(diffs - FPS) <= 1.0) >= 0.9
    # a wrong offset finds next to nothing
    assert offset_matches(hr, tr, hq, tq, offset=FPS + 10, tol=1.0) <= 0.02


def test_shift_by_whole_hops_keeps_peaks_exactly_shifted():
    x = melody(3)
    f, b = A.samples2peaks(x)
    fq, bq = A.samples2peaks(x[32 * A.HOP :])
    shifted = peak_set(fq.astype(np.int64) + 32, bq)
    assert len(shifted & peak_set(f, b)) >= 0.85 * len(shifted)


# --- streaming ---------------------------------------------------------------------
def _stream(x: np.ndarray, chunk_seed: int | None, max_chunk: int = 3000, first_time: float = 0.0) -> AudioTrack:
    ax = A.AudioExtractor(RATE, first_time=first_time)
    if chunk_seed is None:
        ax.feed(x)
    else:
        rng = np.random.default_rng(chunk_seed)
        i = 0
        while i < len(x):
            k = int(rng.integers(1, max_chunk))
            ax.feed(x[i : i + k])
            i += k
    return ax.finish()


def test_extractor_in_random_chunks_equals_whole_signal_within_one_block():
    x = melody(4, 20.0)  # shorter than the default 60 s block
    f, b = A.samples2peaks(x)
    for seed in (1, 2):
        tr = _stream(x, seed)
        assert tr.frames.dtype == np.uint32 and tr.bins.dtype == np.uint16
        assert np.array_equal(tr.frames, f) and np.array_equal(tr.bins, b)


def test_extractor_first_time_offsets_frames():
    x = melody(4, 20.0)
    f, b = A.samples2peaks(x)
    tr = _stream(x, 3, first_time=10.0)
    assert np.array_equal(tr.frames, f + int(round(10.0 * FPS))) and np.array_equal(tr.bins, b)


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(A, "BLOCK_SECONDS", 3.0)
    return 3.0


def test_extractor_blocks_do_not_depend_on_chunking(small_blocks):
    """Signal 20 s, blocks 3 s: the peaks are a function of the audio only, not
    of how the decoder happened to cut it into chunks."""
    x = melody(5, 20.0)
    whole_feed = _stream(x, None)
    for seed, max_chunk in ((1, 3000), (2, 300), (3, 40000)):
        tr = _stream(x, seed, max_chunk)
        assert np.array_equal(tr.frames, whole_feed.frames), (seed, max_chunk)
        assert np.array_equal(tr.bins, whole_feed.bins), (seed, max_chunk)


def test_extractor_over_several_blocks_matches_whole_signal(small_blocks):
    """Several blocks, fed in random chunks.  Each block estimates its own
    spectral floor (memory stays flat), so peaks near the 12 dB threshold may
    differ from a whole-signal pass; the stitching itself must lose nothing:
    sorted, no duplicates, no gap at block boundaries, and most peaks and
    landmarks identical to the whole-signal pass at offset 0."""
    x = melody(6, 20.0)
    f, b = A.samples2peaks(x)
    tr = _stream(x, 7)
    key = tr.frames.astype(np.int64) * 1000 + tr.bins
    assert np.all(np.diff(key) > 0)
    n_frames = 1 + (len(x) - A.N_FFT) // A.HOP
    assert tr.frames.max() < n_frames
    # every second keeps most of its peaks (no block boundary swallowed any)
    seconds = int(np.ceil(n_frames / FPS))
    per_second = np.bincount((tr.frames / FPS).astype(int), minlength=seconds)
    whole_per_second = np.bincount((f / FPS).astype(int), minlength=seconds)
    assert len(per_second) == seconds
    assert np.all(per_second >= 0.5 * whole_per_second), (per_second, whole_per_second)
    whole, streamed = peak_set(f, b), peak_set(tr.frames, tr.bins)
    assert len(whole & streamed) >= 0.5 * len(whole)
    assert abs(len(streamed) - len(whole)) <= 0.15 * len(whole)
    hr, tr_ = A.peaks2landmarks(f, b)
    hs, ts = A.peaks2landmarks(tr.frames, tr.bins)
    assert offset_matches(hr, tr_, hs, ts, offset=0.0, tol=0.0) >= 0.25


def test_extractor_empty_and_tiny_inputs():
    assert len(A.AudioExtractor().finish()) == 0
    ax = A.AudioExtractor()
    ax.feed(np.zeros(100, np.float32))
    assert len(ax.finish()) == 0


# --- landmarks -----------------------------------------------------------------------
def test_landmark_hash_layout():
    # two peaks: anchor bin 40 at frame 10, target bin 50 at frame 13
    h, t = A.peaks2landmarks(np.array([10, 13], np.uint32), np.array([40, 50], np.uint16))
    assert h.tolist() == [(40 << 12) | ((10 + 32) << 6) | 3]
    assert t.tolist() == [10.0]
    # targets outside the zone are not paired
    h, _ = A.peaks2landmarks(np.array([10, 10 + A.MAX_DT + 1], np.uint32), np.array([40, 41], np.uint16))
    assert len(h) == 0
    h, _ = A.peaks2landmarks(np.array([10, 12], np.uint32), np.array([40, 40 + A.MAX_DF + 1], np.uint16))
    assert len(h) == 0


def test_landmark_fan_out_is_capped():
    frames = np.arange(0, 40, 2, dtype=np.uint32)
    bins = np.full(len(frames), 100, np.uint16)
    h, t = A.peaks2landmarks(frames, bins)
    assert np.bincount(t.astype(int)).max() == A.FAN_OUT
    assert np.all(h < 2**20)


def test_landmarks_of_resampled_copy_recovered_by_matching_scale():
    """A copy resampled by 1.05 (faster and higher): re-deriving its landmarks
    with time_scale=1.05, freq_scale=1/1.05 finds the reference's hashes at the
    reference's times; unscaled it finds next to nothing."""
    x = melody(7)
    hr, tr = landmarks(x)
    y = resample(x, int(round(len(x) / 1.05))).astype(np.float32)
    fq, bq = A.samples2peaks(y)

    def score(ts, fs):
        hq, tq = A.peaks2landmarks(fq, bq, time_scale=ts, freq_scale=fs)
        return offset_matches(hr, tr, hq, tq, offset=0.0, tol=1.0)

    right = score(1.05, 1 / 1.05)
    unscaled = score(1.0, 1.0)
    assert right >= 0.15, right  # rounding of scaled peaks to the grid costs some
    assert unscaled <= 0.03
    assert right >= 5 * max(unscaled, 0.01)
    # among the scales a query tries (1 % steps), the true one wins
    for s in (1.03, 1.04, 1.06, 1.07):
        assert right > score(s, 1 / s)
    # speed alone (pitch kept) is the wrong model for a resampled copy
    assert right > 3 * score(1.05, 1.0)


def test_frames2seconds():
    assert np.allclose(A.frames2seconds(np.array([0, 125, 31250])), [0.0, 4.0, 1000.0])
