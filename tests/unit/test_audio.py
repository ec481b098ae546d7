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
from mediadna import index as I
from mediadna.fingerprint import AudioTrack, Fingerprint

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
def _struck(f0: float, start: float, amp: float, n: int, tau: float = 0.15) -> np.ndarray:
    """A struck note: sharp onset at ``start`` (s), exponential decay."""
    t = np.arange(n) / RATE
    u = np.clip(t - start, 0.0, None)
    env = (t >= start) * np.exp(-u / tau) * (1 - np.exp(-u / 0.003))
    return amp * env * np.sin(2 * np.pi * f0 * t)


def _floor(n: int, seed: int = 0) -> np.ndarray:
    return 1e-3 * np.random.default_rng(seed).standard_normal(n)


def test_peaks_basic_properties():
    x = melody(1)
    f, b = A.samples2peaks(x)
    assert f.dtype == np.uint32 and b.dtype == np.uint16
    assert len(f) >= 8 * 12  # a busy melody: well over a few peaks per second (measured ~13/s)
    n_frames = 1 + (len(x) - A.N_FFT) // A.HOP
    assert f.max() < n_frames
    assert b.min() >= A.MIN_BIN and b.max() <= A.MAX_BIN
    # sorted by (frame, bin), no duplicates
    key = f.astype(np.int64) * 1000 + b
    assert np.all(np.diff(key) > 0)
    assert np.bincount(f).max() <= A.PEAKS_PER_FRAME


def test_peaks_per_frame_cap_holds_on_dense_input():
    """Loud white noise has local maxima everywhere: the cap is reached in most
    frames and never exceeded."""
    x = (0.5 * np.random.default_rng(1).standard_normal(10 * RATE)).astype(np.float32)
    f, _ = A.samples2peaks(x)
    per_frame = np.bincount(f)
    assert per_frame.max() == A.PEAKS_PER_FRAME
    assert np.mean(per_frame == A.PEAKS_PER_FRAME) >= 0.5  # measured ~0.8


def test_cap_keeps_the_strongest_peaks():
    """Five notes struck together, 40 bins apart (outside each other's mask):
    only the PEAKS_PER_FRAME loudest are picked."""
    n = 3 * RATE
    bins = [20, 60, 100, 140, 180]
    amps = [0.05, 0.3, 0.1, 0.4, 0.2]
    x = sum(_struck(k * RATE / A.N_FFT, 1.0, a, n) for k, a in zip(bins, amps)) + _floor(n)
    f, b = A.samples2peaks(x.astype(np.float32))
    loudest = sorted(k for _, k in sorted(zip(amps, bins))[-A.PEAKS_PER_FRAME :])
    assert len(f) > 0
    assert sorted(set(b.tolist())) == loudest
    assert np.all(np.abs(f / FPS - 1.0) <= 2 / FPS)  # at the onset only


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


def test_peaks_mark_the_onsets_of_notes():
    """Five smooth 0.2 s bursts of 1 kHz, 0.8 s apart: every peak is at the
    tone's bin and on a burst's rising half (the masking threshold rejects the
    decaying half), at most a few per burst."""
    t = np.arange(4 * RATE) / RATE
    env = np.zeros(len(t))
    m = int(0.2 * RATE)
    starts = np.arange(0.1, 3.8, 0.8)
    for s in starts:
        env[int(s * RATE) : int(s * RATE) + m] = np.hanning(m)
    x = 0.5 * env * np.sin(2 * np.pi * 1000.0 * t) + _floor(len(t))
    f, b = A.samples2peaks(x.astype(np.float32))
    assert set(b.tolist()) == {64}  # 1000 Hz / 15.625 Hz per bin
    win_start = f * A.HOP / RATE  # a frame's time is its window's start
    burst = np.searchsorted(starts, win_start + A.N_FFT / RATE) - 1
    assert np.all(burst >= 0)
    per_burst = np.bincount(burst, minlength=len(starts))
    assert len(per_burst) == len(starts) and per_burst.min() >= 1 and per_burst.max() <= 4, per_burst
    # the window overlaps the burst's rising half (burst start .. its maximum)
    assert np.all(win_start >= starts[burst] - A.N_FFT / RATE)
    assert np.all(win_start <= starts[burst] + 0.1)


def test_struck_note_gives_its_onset_only():
    n = 4 * RATE
    f, b = A.samples2peaks((_struck(1000.0, 1.0, 0.5, n) + _floor(n)).astype(np.float32))
    assert set(b.tolist()) == {64}
    assert 1 <= len(f) <= 2
    assert np.all(np.abs(f / FPS - 1.0) <= 2 / FPS)


@pytest.mark.parametrize(
    "delay, df_hz, amp, masked",
    [
        (0.1, 50.0, 0.1, True),  # -14 dB, 3 bins away, just after: inside the mask
        (0.1, 400.0, 0.05, True),  # 26 bins away: still under the spread mask
        (0.1, 600.0, 0.05, False),  # 38 bins away: beyond the mask's reach
        (3.0, 50.0, 0.1, False),  # 3 s later the mask has decayed by ~28 dB
        (0.3, 0.0, 0.5, False),  # the same note struck again at full level
    ],
)
def test_masking_of_a_quiet_note_after_a_loud_one(delay, df_hz, amp, masked):
    n = 6 * RATE
    x = _struck(1000.0, 1.0, 0.5, n) + _struck(1000.0 + df_hz, 1.0 + delay, amp, n) + _floor(n)
    f, b = A.samples2peaks(x.astype(np.float32))
    late = np.abs(f / FPS - (1.0 + delay)) <= 3 / FPS
    target = int(round((1000.0 + df_hz) * A.N_FFT / RATE))
    found = bool(np.any(late & (np.abs(b.astype(int) - target) <= 1)))
    assert found != masked, list(zip(f.tolist(), b.tolist()))
    # the loud note's onset is always there
    assert np.any((np.abs(f / FPS - 1.0) <= 2 / FPS) & (b == 64))


@pytest.mark.xfail(
    strict=True,
    reason="known limitation: a perfectly steady tone exceeds the previous frame's mask "
    "(decayed by MASK_DECAY_DB) in every frame, so it yields a peak per frame, not only "
    "its onset as the audio.py docstring says; steady pads/hum then crowd the per-frame "
    "cap and their repeated landmarks are removed by drop_repeated",
)
def test_steady_tone_gives_its_onset_only():
    n = 4 * RATE
    t = np.arange(n) / RATE
    x = 0.5 * np.sin(2 * np.pi * 1000.0 * t) * ((t >= 0.5) & (t < 3.0)) + _floor(n)
    f, b = A.samples2peaks(x.astype(np.float32))
    assert np.sum(b == 64) <= 4


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_volume_change_keeps_nearly_the_same_peaks(seed):
    x = melody(seed)
    ref = peak_set(*A.samples2peaks(x))
    quiet = peak_set(*A.samples2peaks(x * 0.3))
    loud = peak_set(*A.samples2peaks(np.clip(x * 1.2, -1, 1)))
    # measured: quiet keeps 0.98-1.0 of the peaks and adds none, loud keeps all
    assert len(ref & quiet) >= 0.95 * len(ref)
    assert len(ref & quiet) >= 0.95 * len(quiet)
    assert len(ref & loud) >= 0.95 * len(ref)
    assert len(ref & loud) >= 0.95 * len(loud)


@pytest.mark.parametrize("seed", [0, 1])
def test_noise_at_10db_snr_keeps_a_good_fraction_of_landmarks(seed):
    x = melody(seed)
    hr, tr = landmarks(x)
    hq, tq = landmarks(add_noise(x, 10.0))
    # Noise adds peaks of its own in the gaps (the query has ~2.5x the
    # landmarks), so the query-side fraction is the lower one.  Measured over
    # seeds 0-5 and three noise seeds: query side 0.21-0.50, reference side
    # 0.48-0.77.
    kept = offset_matches(hr, tr, hq, tq, offset=0.0, tol=0.5)
    kept_ref = offset_matches(hq, tq, hr, tr, offset=0.0, tol=0.5)
    assert kept >= 0.15 and kept_ref >= 0.4, (kept, kept_ref)
    # an unrelated melody with the same noise shares nothing at offset 0 (measured 0)
    hu, tu = landmarks(add_noise(melody(seed + 50), 10.0))
    assert offset_matches(hr, tr, hu, tu, offset=0.0, tol=0.5) <= 0.01


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_second_shift_keeps_hashes_at_a_constant_offset(seed):
    x = melody(seed)
    hr, tr = landmarks(x)
    hq, tq = landmarks(x[RATE:])  # the copy starts 1 s into the original
    # 1 s = 31.25 STFT frames: not a whole hop, peaks re-quantise by <= 1 frame
    frac = offset_matches(hr, tr, hq, tq, offset=FPS, tol=1.0)
    assert frac >= 0.4, frac  # measured 0.58-0.68
    # the hash hits pile up on that one offset (31 or 32 frames, rarely 30);
    # the rest are chance collisions of a melody's repeated intervals, spread thin
    order = np.argsort(hr, kind="stable")
    hs = hr[order]
    lo, hi = np.searchsorted(hs, hq, "left"), np.searchsorted(hs, hq, "right")
    diffs = np.concatenate([tr[order[a:b]] - t for a, b, t in zip(lo, hi, tq)])
    assert len(diffs) > 100
    near = np.abs(diffs - FPS) <= 1.5
    assert np.mean(near) >= 0.8, np.mean(near)  # measured 0.87-0.98
    _, other = np.unique(np.round(diffs[~near]), return_counts=True)
    assert other.max(initial=0) <= 0.05 * len(diffs)
    # a wrong offset finds next to nothing
    assert offset_matches(hr, tr, hq, tq, offset=FPS + 10, tol=1.0) <= 0.02


def test_shift_by_whole_hops_keeps_peaks_exactly_shifted():
    x = melody(3)
    f, b = A.samples2peaks(x)
    fq, bq = A.samples2peaks(x[32 * A.HOP :])
    shifted = peak_set(fq.astype(np.int64) + 32, bq)
    # only peaks near the cut (missing mask history) may differ; measured 0.92-0.99
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


def test_extractor_in_random_chunks_equals_whole_signal():
    x = melody(4, 20.0)
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


@pytest.fixture(params=[0.25, None])
def step(request, monkeypatch):
    """Analysis steps of 0.25 s (many steps, each shorter than a contour window) and the default."""
    if request.param is not None:
        monkeypatch.setattr(A, "STEP_SECONDS", request.param)
    return A.STEP_SECONDS


def test_extractor_works_as_the_audio_arrives(step):
    """Peaks are found while the audio is fed, not all at the end: at most one
    step (plus a window) is left for finish()."""
    x = melody(5, 20.0)
    ax = A.AudioExtractor(RATE)
    for i in range(0, len(x), 2000):
        ax.feed(x[i : i + 2000])
        assert ax._buffered < ax.step + A.CONTOUR_NFFT + 2000  # memory stays flat
    done = sum(len(p[0]) for p in ax._out)
    assert done >= 0.8 * len(A.samples2peaks(x)[0])


def test_extractor_steps_give_exactly_one_pass_over_the_whole_signal(step):
    """40 s in many steps, fed in chunks of any size (including a level jumping
    by 30 dB every 7 s): the masking history is carried from step to step, so
    peaks and contour are bit for bit those of one pass over the whole signal,
    whatever the decoder's chunking."""
    x = melody(6, 40.0)
    gain = np.where((np.arange(len(x)) // (7 * RATE)) % 2 == 0, 1.0, 0.03)
    for signal in (x, (x * gain).astype(np.float32)):
        f, b = A.samples2peaks(signal)
        cf, cb = A.samples2contour(signal)
        assert len(f) > 300 and len(cf) > 1000  # not a trivial signal
        for seed, max_chunk in ((None, 0), (7, 3000), (2, 300), (3, 40000)):
            tr = _stream(signal, seed, max_chunk)
            assert np.array_equal(tr.frames, f) and np.array_equal(tr.bins, b), (seed, max_chunk)
            assert np.array_equal(tr.contour_frames, cf) and np.array_equal(tr.contour, cb), (seed, max_chunk)


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
    # rounding of scaled peaks to the grid costs some; measured 0.36-0.43 (seeds 0-2, 7)
    assert right >= 0.25, right
    assert unscaled <= 0.03  # measured 0-0.002
    assert right >= 5 * max(unscaled, 0.01)
    # among the scales a query tries (1 % steps), the true one wins clearly
    # (measured: neighbours at most 0.10, i.e. right >= 4x)
    for s in (1.03, 1.04, 1.06, 1.07):
        assert right > 2.5 * score(s, 1 / s), s
    # speed alone (pitch kept) is the wrong model for a resampled copy
    assert right > 3 * score(1.05, 1.0)


# --- repeated landmarks (loops) ------------------------------------------------------
def drum_loop(seconds: float, period: float = 0.5, seed: int = 3) -> np.ndarray:
    """The same drum hit (a pitch-dropping 180 Hz thump plus a noise snap)
    every ``period`` seconds, mastered like the melodies."""
    rng = np.random.default_rng(seed)
    m = 1200
    tt = np.arange(m) / RATE
    hit = (0.6 * np.sin(2 * np.pi * 180 * tt * (1 - 0.3 * tt / tt[-1])) + 0.4 * rng.standard_normal(m) * np.exp(-tt / 0.01)) * np.exp(-tt / 0.04)
    n = int(seconds * RATE)
    out = np.zeros(n)
    for s in np.arange(0.0, seconds - 0.2, period):
        i = int(round(s * RATE))
        out[i : i + m] += hit[: n - i]
    return (0.8 * out / np.abs(out).max()).astype(np.float32)


def beep_loop(seconds: float, period: float = 0.5) -> np.ndarray:
    """A 80 ms 1 kHz beep every ``period`` seconds."""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    env = np.zeros(n)
    m = int(0.08 * RATE)
    for s in np.arange(0.25, seconds - 0.1, period):
        i = int(round(s * RATE))
        env[i : i + m] = np.hanning(m)
    return (0.8 * env * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)


def test_drop_repeated_limit():
    """A hash is kept while it occurs at most max(MIN_REPEATS,
    MAX_REPEATS_PER_MINUTE per minute) times in the file, and dropped entirely
    (every occurrence) above that."""
    few, many, other = 7, 9, 11
    short_limit = A.MIN_REPEATS
    hashes = np.array([few] * short_limit + [many] * (short_limit + 1) + [other], np.uint32)
    times = np.arange(len(hashes), dtype=np.float32)
    h, t = A.drop_repeated(hashes, times, duration=10.0)
    assert h.dtype == np.uint32 and t.dtype == np.float32
    assert h.tolist() == [few] * short_limit + [other]
    assert t.tolist() == list(range(short_limit)) + [len(hashes) - 1]  # times stay paired with their hash
    # in a 10-minute file the limit is MAX_REPEATS_PER_MINUTE * 10
    long_limit = A.MAX_REPEATS_PER_MINUTE * 10
    assert long_limit > short_limit + 1
    hashes = np.array([few] * long_limit + [many] * (long_limit + 1), np.uint32)
    h, _ = A.drop_repeated(hashes, np.zeros(len(hashes), np.float32), duration=600.0)
    assert set(h.tolist()) == {few} and len(h) == long_limit
    h, t = A.drop_repeated(np.zeros(0, np.uint32), np.zeros(0, np.float32), 10.0)
    assert len(h) == len(t) == 0


@pytest.mark.parametrize("loop", ["drum", "beep"])
def test_drop_repeated_removes_a_loop_and_keeps_a_melody(loop):
    seconds = 20.0
    x = drum_loop(seconds) if loop == "drum" else beep_loop(seconds)
    h, t = landmarks(x)
    hk, _ = A.drop_repeated(h, t, seconds)
    assert len(h) > 150
    assert len(hk) <= 0.2 * len(h), (len(hk), len(h))  # measured: 93-94 % removed
    limit = max(A.MIN_REPEATS, int(A.MAX_REPEATS_PER_MINUTE * seconds / 60))
    _, counts = np.unique(hk, return_counts=True)
    assert counts.max(initial=0) <= limit
    # a melody's landmarks are (nearly) all distinct enough to stay (measured 99-100 %)
    for seed in (0, 6):
        hm, tm = landmarks(melody(seed, seconds))
        assert len(A.drop_repeated(hm, tm, seconds)[0]) >= 0.97 * len(hm)


@pytest.mark.parametrize("loop, level, max_ratio", [("beep", 0.5, 0.25), ("drum", 1.0, 0.5)])
def test_drop_repeated_removes_shared_loop_evidence_between_unrelated_songs(loop, level, max_ratio):
    """Two unrelated melodies over the same loop: the loop's repeated
    landmarks make them agree at one offset.  drop_repeated takes most of that
    false evidence away (measured votes at the best offset: beep 102 -> 6, drum
    43 -> 15; in a mix the loop's peaks pair with the melody's, so fewer of its
    hashes repeat exactly than for the loop alone) and leaves each melody's own
    landmarks untouched."""
    seconds = 20.0
    x = beep_loop(seconds) if loop == "beep" else drum_loop(seconds)

    def mix(seed):
        y = level * x + melody(seed, seconds)
        return (0.8 * y / np.abs(y).max()).astype(np.float32)

    def best_votes(h1, t1, h2, t2):
        order = np.argsort(h1, kind="stable")
        hs = h1[order]
        lo, hi = np.searchsorted(hs, h2, "left"), np.searchsorted(hs, h2, "right")
        d = np.concatenate([t1[order[a:b]] - t for a, b, t in zip(lo, hi, t2)] + [np.zeros(0, np.float32)])
        return int(np.unique(np.round(d), return_counts=True)[1].max(initial=0))

    ha, ta = landmarks(mix(0))
    hb, tb = landmarks(mix(1))
    hak, tak = A.drop_repeated(ha, ta, seconds)
    hbk, tbk = A.drop_repeated(hb, tb, seconds)
    before, after = best_votes(ha, ta, hb, tb), best_votes(hak, tak, hbk, tbk)
    assert before >= 30 and after <= max_ratio * before, (before, after)
    # the melody is found in the filtered mix as well as without the filter,
    # and far above the shared-loop evidence
    hm, tm = landmarks(melody(0, seconds))
    with_filter = offset_matches(hak, tak, hm, tm, offset=0.0, tol=0.0)
    assert with_filter >= 0.98 * offset_matches(ha, ta, hm, tm, offset=0.0, tol=0.0)
    assert best_votes(hm, tm, hak, tak) >= 10 * after


def _audio_fp(x: np.ndarray) -> Fingerprint:
    f, b = A.samples2peaks(x)
    return Fingerprint(duration=len(x) / RATE, sha256="", media_type="audio", params={"audio_rate": RATE}, audio=AudioTrack(f, b))


def test_index_does_not_post_a_loop():
    seconds = 20.0
    loop_fp = _audio_fp(drum_loop(seconds))
    raw, _ = A.peaks2landmarks(loop_fp.audio.frames, loop_fp.audio.bins)
    posted = I.fingerprint2postings(loop_fp)
    assert len(raw) > 150
    assert len(posted.audio_keys) <= 0.2 * len(raw)
    _, counts = np.unique(posted.audio_keys, return_counts=True)
    assert counts.max(initial=0) <= A.MIN_REPEATS
    # ... and a query made of the loop looks up as little, at every scale
    for ts, fs, h, *_ in I.audio_query_variants(loop_fp):
        assert len(h) <= 0.25 * len(raw), (ts, fs, len(h))
    # a melody is posted in full, at its anchor times in seconds
    mel_fp = _audio_fp(melody(0, seconds))
    h, frames = A.peaks2landmarks(mel_fp.audio.frames, mel_fp.audio.bins)
    posted = I.fingerprint2postings(mel_fp)
    assert len(posted.audio_keys) >= 0.97 * len(h)
    assert posted.audio_keys.dtype == np.uint32 and posted.audio_times.dtype == np.float32
    assert set(zip(posted.audio_keys.tolist(), np.round(posted.audio_times, 4).tolist())) <= set(
        zip(h.tolist(), np.round((frames * A.HOP / RATE).astype(np.float32), 4).tolist())
    )


def test_frames2seconds():
    assert np.allclose(A.frames2seconds(np.array([0, 125, 31250])), [0.0, 4.0, 1000.0])


# --- tracks ------------------------------------------------------------------------
def test_peak_tracks_follow_sustained_and_gliding_tones():
    """A peak continues the track of a peak <= TRACK_GAP frames earlier and
    <= TRACK_DF bins away; anything else starts a track (id = its first peak)."""
    gap = A.TRACK_GAP
    frames = [10, 11, 12, 13,  # a steady tone at bin 40
              20, 21, 22, 23,  # a glide, one bin per frame
              30, 30 + gap, 30 + gap + gap + 1,  # a tone that noise hides for gap-1, then gap frames
              11, 12]  # another tone, 20 bins away from the first
    bins = [40, 40, 40, 40, 60, 61, 62, 63, 80, 80, 80, 60, 60]
    f, b = np.array(frames, np.uint32), np.array(bins, np.uint16)
    tr = A.peak_tracks(f, b)
    assert tr.dtype == np.int64 and len(tr) == len(f)
    assert len(set(tr[:4])) == 1 and tr[0] == 0
    assert len(set(tr[4:8])) == 1 and tr[4] == 4
    assert tr[8] == tr[9] == 8 and tr[10] == 10  # a gap longer than TRACK_GAP breaks it
    assert tr[11] == tr[12] == 11 and tr[11] != tr[0]
    # a jump of TRACK_DF + 1 bins is a new track
    tr = A.peak_tracks(np.array([5, 6], np.uint32), np.array([100, 100 + A.TRACK_DF + 1], np.uint16))
    assert tr.tolist() == [0, 1]
    # order of the input does not matter
    p = np.random.default_rng(0).permutation(len(f))
    assert np.array_equal(A.peak_tracks(f[p], b[p]), np.argsort(p)[A.peak_tracks(f, b)][p])
    assert len(A.peak_tracks(np.zeros(0, np.uint32), np.zeros(0, np.uint16))) == 0


def test_landmark_pairs_name_their_peaks():
    x = melody(8)
    f, b = A.samples2peaks(x)
    h, t, a, tgt = A.landmark_pairs(f, b)
    h2, t2 = A.peaks2landmarks(f, b)
    assert np.array_equal(h, h2) and np.array_equal(t, t2)
    dt = f[tgt].astype(np.int64) - f[a].astype(np.int64)
    df = b[tgt].astype(np.int64) - b[a].astype(np.int64)
    assert np.array_equal(h, ((b[a].astype(np.int64) << 12) | ((df + 32) << 6) | dt).astype(np.uint32))
    assert np.array_equal(t, f[a].astype(np.float32))


# --- sub-hop shifted grids -------------------------------------------------------
def test_extractor_shifted_grids_are_the_peaks_of_later_starts():
    x = melody(9, 10.0)
    ax = A.AudioExtractor(RATE, shifts=A.SHIFTS)
    for i in range(0, len(x), 1000):  # chunking must not matter
        ax.feed(x[i : i + 1000])
    base = ax.finish()
    f0, b0 = A.samples2peaks(x)
    assert np.array_equal(base.frames, f0) and np.array_equal(base.bins, b0)
    offsets = [k * A.HOP // A.SHIFTS for k in range(1, A.SHIFTS)]
    assert sorted(ax.shifted) == offsets
    for o in offsets:
        f, b = A.samples2peaks(x[o:])
        assert np.array_equal(ax.shifted[o].frames, f) and np.array_equal(ax.shifted[o].bins, b)
    assert A.AudioExtractor(RATE).shifted == {}


def test_a_shifted_grid_recovers_an_excerpt_cut_between_hops():
    """An excerpt cut 3/4 of a hop after a frame boundary: on its own grid many
    landmarks change (peaks move by a frame); the grid offset by 1/4 hop lines
    up with the reference's and finds nearly all of them again."""
    x = melody(10, 12.0)
    hr, tr = landmarks(x)
    cut = 64 * A.HOP + 3 * A.HOP // 4
    ax = A.AudioExtractor(RATE, shifts=A.SHIFTS)
    ax.feed(x[cut : cut + 4 * RATE])
    own = ax.finish()
    aligned = ax.shifted[A.HOP // 4]  # its frame 0 starts at reference frame 65

    def kept(track, frame0):
        hq, tq = A.peaks2landmarks(track.frames, track.bins)
        return offset_matches(hr, tr, hq, tq, offset=frame0, tol=0.0)

    own_kept = max(kept(own, 64), kept(own, 65))  # this grid sits between the reference's frames
    aligned_kept = kept(aligned, 65)
    # measured 0.87 vs 0.63 (melodies 0-3: 0.69-0.90 vs 0.35-0.47); the cut
    # start lacks masking history on every grid
    assert aligned_kept >= 0.75, aligned_kept
    assert aligned_kept >= own_kept + 0.15, (aligned_kept, own_kept)


def test_query_variants_cover_every_grid():
    x = melody(11, 6.0)
    ax = A.AudioExtractor(RATE, shifts=A.SHIFTS)
    ax.feed(x)
    track = ax.finish()
    fp = Fingerprint(duration=6.0, sha256="", media_type="audio", params={"audio_rate": RATE}, audio=track, shifted=ax.shifted)
    plain = I.audio_query_variants(Fingerprint(duration=6.0, sha256="", media_type="audio", params={"audio_rate": RATE}, audio=track))
    variants = I.audio_query_variants(fp)
    assert len(variants) == A.SHIFTS * len(plain)
    for ts, fs, h, qt, at, tt in variants:
        assert len(h) == len(qt) == len(at) == len(tt)
    # the shifted grids' times are real query times (seconds), a fraction of a hop later
    first = {round(v[3].min() % (A.HOP / RATE) * RATE) for v in variants if v[0] == 1.0 and v[1] == 1.0}
    assert first == {k * A.HOP // A.SHIFTS for k in range(A.SHIFTS)}
    # track ids of different grids never collide
    ids = [set(np.r_[v[4], v[5]].tolist()) for v in variants if v[0] == 1.0 and v[1] == 1.0]
    assert all(not (ids[i] & ids[j]) for i in range(len(ids)) for j in range(i + 1, len(ids)))


def test_scaled_landmark_pairs_are_one_landmark_pairs_per_scale():
    f, b = A.samples2peaks(melody(12, 6.0))
    scales = [(1.0, 1.0), (0.9, 1.0), (1.1, 1 / 1.1), (0.95, 1 / 0.95), (1.04, 1.0)]
    together = A.scaled_landmark_pairs(f, b, scales)
    assert len(together) == len(scales)
    for (ts, fs), got in zip(scales, together):
        alone = A.landmark_pairs(f, b, ts, fs)
        assert len(alone[0]) > 50
        for x, y in zip(got, alone):
            assert x.dtype == y.dtype and np.array_equal(x, y)
    assert A.scaled_landmark_pairs(f[:1], b[:1], scales)[0][0].size == 0


# --- band-energy contour --------------------------------------------------------------
def contour_ber(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], shift: int = 0) -> tuple[float, int]:
    """Bit error rate of two contours where frame f of ``a`` meets frame f + shift of ``b``; frames compared."""
    fa, ba = a
    fb, bb = b
    common, ia, ib = np.intersect1d(fa.astype(np.int64) + shift, fb.astype(np.int64), return_indices=True)
    if not len(common):
        return 1.0, 0
    return float(np.bitwise_count(ba[ia] ^ bb[ib]).sum()) / (32.0 * len(common)), len(common)


@pytest.mark.parametrize("name", ["zeros", "near_silence"])
def test_silence_has_no_contour(name):
    x = np.zeros(5 * RATE, np.float32) if name == "zeros" else (1e-4 * np.random.default_rng(0).standard_normal(5 * RATE)).astype(np.float32)
    frames, bits = A.samples2contour(x)
    assert len(frames) == len(bits) == 0


def test_contour_is_kept_only_where_there_is_sound():
    """3 s of silence, then 3 s of music: every contour frame lies in the music
    (a frame and the one before it both audible), and the music has one per hop."""
    x = np.concatenate([np.zeros(3 * RATE, np.float32), melody(2, 3.0)])
    frames, bits = A.samples2contour(x)
    assert frames.dtype == np.uint32 and bits.dtype == np.uint32
    start = frames.astype(np.float64) * A.HOP / RATE
    assert start.min() >= 3.0 - A.CONTOUR_NFFT / RATE
    assert np.all(np.diff(frames) == 1) and len(frames) >= 2.5 * FPS


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_contour_of_a_noisy_copy_stays_near_and_an_unrelated_song_far(seed):
    """Under 12 dB of white noise and a 0.5x volume change most contour bits
    survive (measured: 0.25 bit error rate); another song's contour agrees
    by chance only (0.50-0.51)."""
    x = melody(seed, 6.0)
    ref = A.samples2contour(x)
    copy = A.samples2contour(add_noise(0.5 * x, 12.0, seed=seed + 7))
    other = A.samples2contour(melody(seed + 50, 6.0))
    ber, n = contour_ber(copy, ref)
    assert n >= 5 * FPS and ber <= 0.3, ber
    ber_other, _ = contour_ber(other, ref)
    assert 0.42 <= ber_other <= 0.58, ber_other


def test_contour_of_an_excerpt_lines_up_at_its_offset():
    """A 2 s excerpt starting 100 hops into the song: its frame f meets the
    song's frame f + 100 with few errors (measured 0.23), and no other shift
    comes close (0.44 at best)."""
    x = melody(3, 8.0)
    song = A.samples2contour(x)
    excerpt = A.samples2contour(add_noise(x[100 * A.HOP : 100 * A.HOP + 2 * RATE], 15.0))
    bers = {s: contour_ber(excerpt, song, s)[0] for s in range(0, 200)}
    best = min(bers, key=bers.get)
    assert best == 100 and bers[best] <= 0.3
    assert min(b for s, b in bers.items() if abs(s - 100) > 3) >= 0.38


def test_contour_golden_value():
    """Pinned bits of a fixed signal: a change here changes every stored
    contour, which then no longer lines up with queries made by the new code."""
    t = np.arange(2 * RATE) / RATE
    x = (0.3 * np.sin(2 * np.pi * (400 + 300 * t) * t) + 0.2 * np.sin(2 * np.pi * 1100 * t) * (t % 0.5 < 0.25)).astype(np.float32)
    frames, bits = A.samples2contour(x)
    assert len(frames) == 54 and int(frames[0]) == 1
    assert [int(b) for b in bits[[0, 10, 30]]] == GOLDEN_CONTOUR


GOLDEN_CONTOUR = [4288683645, 4290894848, 14680063]
