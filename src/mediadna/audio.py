"""Audio fingerprint: Shazam-style landmarks.

``samples2peaks`` finds spectral peaks (time frame, frequency bin) of mono
8 kHz audio; ``peaks2landmarks`` pairs each anchor peak with a few later
peaks in a target zone and hashes (f1, f2 - f1, dt) into 20 bits.  Peaks are
what a fingerprint stores; landmarks are derived, so a query can re-derive
them under a time/pitch scale to match copies sped up or slowed by ±10 %.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft
from scipy.ndimage import grey_dilation

from .fingerprint import AudioTrack

#: STFT size at 8 kHz: 64 ms windows, 15.6 Hz bins.
N_FFT = 512
#: STFT hop: 32 ms per frame (31.25 frames/s).
HOP = 256
#: Peak picking follows audfprint's masking idea: a peak must stand above a
#: threshold that every earlier peak leaves behind, spread over neighbouring
#: frequencies (parabola, in dB: MASK_WIDTH bins per 1 dB at 1 bin ... ) and
#: decaying by MASK_DECAY_DB per frame.  A struck or decaying note therefore
#: yields its onset, whose time is stable under noise and re-framing, not an
#: arbitrary frame of its plateau (a perfectly steady tone still peaks in every
#: frame; drop_repeated removes those landmarks).
MASK_DECAY_DB = 0.3
MASK_WIDTH = 10.0
#: ... by this margin.  0: a 3 dB margin would stop a perfectly steady tone
#: from peaking in every frame, but it halved the landmarks matched in noisy
#: 5 s excerpts of the dev corpus; steady tones' repeated landmarks are
#: removed by drop_repeated instead.
MASK_MARGIN_DB = 0.0
#: At most this many peaks per frame (strongest first): ~20-70 peaks/s.
PEAKS_PER_FRAME = 3
#: Absolute floor of magnitude (float audio in [-1, 1]); below it is silence,
#: which therefore produces nothing.
SILENCE_MAGNITUDE = 1e-3
#: Lowest and highest frequency bins used (62 Hz .. 3.9 kHz).
MIN_BIN, MAX_BIN = 4, 250
#: Each anchor pairs with up to FAN_OUT peaks within dt in [1, MAX_DT] frames and |df| < MAX_DF bins.
FAN_OUT = 5
MAX_DT = 63
MAX_DF = 31
#: A landmark hash met more often than this in one file (per minute, at
#: least MIN_REPEATS) is a loop, a drum sample or a beep: it is the same in
#: countless unrelated files, so it is not evidence, and it is dropped on both
#: the library and the query side (this also keeps index keys from running hot).
MAX_REPEATS_PER_MINUTE = 6
MIN_REPEATS = 4
#: Peaks of one sustained or gliding tone form a track: a peak continues a
#: track with a peak at most TRACK_GAP frames earlier (a tone that noise hides
#: for two frames is still one track) and TRACK_DF bins away (vibrato,
#: glides).  Landmarks between the frames of one track, or from every frame of
#: a tone to one target, are one piece of evidence, not one per frame (see
#: match.py).
TRACK_GAP = 3
TRACK_DF = 1
#: Audio is analysed as it arrives, every this many seconds: large enough
#: that numpy's per-call costs stay small, small enough that little is left
#: for the end of the input (the work overlaps decoding) and memory stays flat.
STEP_SECONDS = 4.0
#: Sub-hop shifts (audfprint's --shifts): a copy cut at an arbitrary sample
#: sits on an STFT grid offset from the original's by a fraction of a hop,
#: which moves many peaks by a frame and changes their landmarks' dt (about
#: half of the landmarks of a clean 2 s excerpt on the dev corpus).  Short
#: inputs therefore also keep their peaks on SHIFTS - 1 more grids, HOP /
#: SHIFTS samples apart; a query looks up the landmarks of every grid, and
#: the grid nearest the reference's finds the most.
SHIFTS = 4
#: ... for inputs at most this long (s): short queries (2-10 s excerpts) are
#: where evidence is scarce; from ~12 s on the own grid carries plenty, and
#: four grids would look every landmark up four times over (a 30 s query on
#: the dev library: 480 ms of matching with them, 150 ms without).
SHIFT_MAX_SECONDS = 12.0
#: Band-energy contour (Haitsma & Kalker's sub-fingerprint, on the peaks'
#: STFT grid): per frame, 32 bits, each the sign of the energy difference
#: between two adjacent bands minus the same difference one frame earlier.
#: Peaks are sparse (a 2 s excerpt of sparse music keeps ~6 independent
#: landmark events); the contour has 32 bits in every frame, so a short
#: excerpt's alignment can be checked bit by bit (match.contour_segments).
#: 256 ms windows: band energies then change slowly from hop to hop, so a
#: copy cut off the grid by part of a hop keeps most bits.
CONTOUR_NFFT = 2048
#: 33 log-spaced bands, 300-2000 Hz (Haitsma & Kalker's range: where music
#: and speech keep their energy under noise and low bitrates), give 32 bits.
CONTOUR_BANDS = 33
CONTOUR_LO_HZ, CONTOUR_HI_HZ = 300.0, 2000.0


_HANN = np.hanning(N_FFT).astype(np.float32)
_CONTOUR_HANN = np.hanning(CONTOUR_NFFT).astype(np.float32)
_CONTOUR_POWER = float((_CONTOUR_HANN**2).sum())


def _windows(samples: np.ndarray, size: int) -> np.ndarray:
    """Every HOP-th window of ``size`` samples (a view: no copy), (frames, size)."""
    n = 1 + (len(samples) - size) // HOP
    return np.lib.stride_tricks.sliding_window_view(samples, size)[::HOP][:n]


def _spectrogram(samples: np.ndarray) -> np.ndarray:
    """Magnitude STFT, (frames, bins)."""
    if len(samples) < N_FFT:
        return np.zeros((0, N_FFT // 2 + 1), np.float32)
    return np.abs(np.fft.rfft(_windows(samples, N_FFT) * _HANN, axis=1)).astype(np.float32)


def _spec2peaks(spec: np.ndarray, t0: int, carry: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Peaks of STFT frames t0, t0 + 1, ... of a stream: (frames, bins, carry).

    The masking threshold of a frame depends on every earlier frame only
    through a running maximum, so it is carried from call to call (``carry``:
    None before the first frame): a stream fed in any pieces gives exactly
    the peaks of one pass over the whole signal.
    """
    if len(spec) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), carry
    spec = spec[:, : MAX_BIN + 1]
    db = 20.0 * np.log10(spec + 1e-6)
    n_t, n_f = db.shape
    # local maxima along frequency, above silence
    lm = np.zeros_like(db, dtype=bool)
    lm[:, 1:-1] = (db[:, 1:-1] > db[:, :-2]) & (db[:, 1:-1] >= db[:, 2:])
    lm &= spec >= SILENCE_MAGNITUDE * N_FFT / 4
    lm[:, :MIN_BIN] = False
    # masking threshold: thr[t] = max over u < t of spread[u] - decay * (t - u),
    # computed for all frames at once as a running maximum of spread + ramp.
    k = int(3 * MASK_WIDTH)
    structure = -((np.arange(-k, k + 1) / MASK_WIDTH) ** 2)
    spread = grey_dilation(np.where(lm, db, -1e9), structure=structure[None, :], mode="constant", cval=-1e9)
    ramp = (np.arange(t0, t0 + n_t, dtype=np.float64) * MASK_DECAY_DB)[:, None]
    running = spread + ramp
    if carry is not None:
        np.maximum(running[0], carry, out=running[0])
    np.maximum.accumulate(running, axis=0, out=running)
    first = carry if carry is not None else np.full(n_f, -1e9)
    thr = np.vstack([first[None, :], running[:-1]]) - ramp
    t, f = np.nonzero(lm & (db > thr + MASK_MARGIN_DB))
    carry = running[-1].copy()
    if len(t) == 0:
        return t, f, carry
    strength = db[t, f]
    order = np.lexsort((-strength, t))
    t, f = t[order], f[order]
    starts = np.r_[0, np.nonzero(np.diff(t))[0] + 1]
    rank = np.arange(len(t)) - np.repeat(starts, np.diff(np.r_[starts, len(t)]))
    keep = rank < PEAKS_PER_FRAME
    t, f = t[keep], f[keep]
    order = np.lexsort((f, t))
    return t[order] + t0, f[order], carry


def samples2peaks(samples: np.ndarray, frame_offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Spectral peaks of mono float audio: (frame indices, frequency bins)."""
    t, f, _ = _spec2peaks(_spectrogram(np.asarray(samples, np.float32)), 0, None)
    return (t + frame_offset).astype(np.uint32), f.astype(np.uint16)


@functools.lru_cache(maxsize=8)
def _contour_band_edges(rate: int) -> np.ndarray:
    """FFT bin where each of the CONTOUR_BANDS bands starts, and where the last ends."""
    hz = np.geomspace(CONTOUR_LO_HZ, CONTOUR_HI_HZ, CONTOUR_BANDS + 1)
    edges = np.searchsorted(np.fft.rfftfreq(CONTOUR_NFFT, 1.0 / rate), hz)
    edges.flags.writeable = False  # cached: shared by every call
    return edges


def _contour_rows(samples: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Per CONTOUR_NFFT window (every HOP): adjacent-band energy differences (frames, 32) and audibility."""
    if len(samples) < CONTOUR_NFFT:
        return np.zeros((0, CONTOUR_BANDS - 1), np.float32), np.zeros(0, bool)
    frames = _windows(samples, CONTOUR_NFFT) * _CONTOUR_HANN
    loud = np.einsum("ij,ij->i", frames, frames) / _CONTOUR_POWER >= SILENCE_MAGNITUDE**2
    edges = _contour_band_edges(rate)
    spectrum = scipy.fft.rfft(frames, axis=1)[:, edges[0] : edges[-1]]
    energy = np.add.reduceat(spectrum.real**2 + spectrum.imag**2, edges[:-1] - edges[0], axis=1)
    return energy[:, :-1] - energy[:, 1:], loud


def _rows2contour(diff: np.ndarray, loud: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Contour bits of frames 1 .. n-1 of (diff, loud) rows: (indices into the rows, uint32 words), audible only."""
    if len(diff) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.uint32)
    bits = (diff[1:] - diff[:-1]) > 0  # (n - 1, 32): frames 1 .. n-1
    keep = loud[1:] & loud[:-1]
    words = np.packbits(bits[keep], axis=1, bitorder="little").view("<u4")[:, 0]
    return np.flatnonzero(keep) + 1, words.astype(np.uint32)


def samples2contour(samples: np.ndarray, frame_offset: int = 0, rate: int = 8000) -> tuple[np.ndarray, np.ndarray]:
    """Band-energy contour bits of mono float audio: (frame indices, uint32 bits), audible frames only.

    Frame f's window starts at sample f * HOP (as the peaks' frames do); its
    bit k is set when (E[f, k] - E[f, k+1]) - (E[f-1, k] - E[f-1, k+1]) > 0,
    E the energy of band k (see CONTOUR_NFFT).  A frame is kept only when it
    and the frame before are louder than SILENCE_MAGNITUDE (RMS): silence has
    no contour, and two silences must never agree bit for bit.
    """
    x = np.asarray(samples, np.float32)
    if len(x) < CONTOUR_NFFT + HOP:
        return np.zeros(0, np.uint32), np.zeros(0, np.uint32)
    f, words = _rows2contour(*_contour_rows(x, rate))
    return (f + frame_offset).astype(np.uint32), words


class AudioExtractor:
    """Streaming peaks and contour, computed as the audio arrives.

    The result is exactly that of :func:`samples2peaks` and
    :func:`samples2contour` over the whole signal, however it is cut into
    pieces; only the last STEP_SECONDS wait for :meth:`finish`, so the work
    overlaps decoding and memory stays flat.

    ``first_time`` is the media time of the first fed sample; peak frames are
    counted from media time 0.  With ``shifts`` > 1 the peaks are also taken
    on grids starting k * HOP / shifts samples later (k = 1 .. shifts - 1);
    after :meth:`finish` they are in ``shifted`` ({offset in samples: track},
    frame f of a shifted track starting at f * HOP + offset).
    """

    def __init__(self, rate: int = 8000, first_time: float = 0.0, shifts: int = 1):
        self.rate = rate
        self.shifted: dict[int, AudioTrack] = {}
        # [offset, samples still to skip, extractor] per shifted grid
        self._grids = [[k * HOP // shifts, k * HOP // shifts, AudioExtractor(rate, first_time)] for k in range(1, max(1, shifts))]
        self._offset = int(round(first_time * rate / HOP))  # media frame of the stream's frame 0
        self._buf: list[np.ndarray] = []
        self._buffered = 0
        self._base = 0  # stream sample index of the buffer's first sample
        self._peak_next = 0  # next STFT frame of the peaks
        self._carry: np.ndarray | None = None  # masking history (see _spec2peaks)
        self._contour_next = 0  # next contour window
        self._last_row: tuple[np.ndarray, np.ndarray] | None = None  # its predecessor's (diff, loud)
        self._out: list[tuple[np.ndarray, ...]] = []  # (peak frames, bins, contour frames, words) per step
        self.step = int(STEP_SECONDS * rate)

    def feed(self, samples: np.ndarray) -> None:
        for grid in self._grids:
            skip = min(grid[1], len(samples))
            grid[1] -= skip
            if skip < len(samples):
                grid[2].feed(samples[skip:])
        self._buf.append(np.asarray(samples, np.float32))
        self._buffered += len(samples)
        if self._buffered >= self.step + CONTOUR_NFFT:
            self._process()

    def _process(self) -> None:
        """Every window that lies wholly in the buffer; keep the samples later windows need."""
        data = np.concatenate(self._buf) if len(self._buf) != 1 else self._buf[0]
        end = self._base + len(data)
        # peaks: every frame whose N_FFT window ends in the buffer (none: a slice too short)
        p0 = self._peak_next
        p1 = max(p0, (end - N_FFT) // HOP + 1)
        spec = _spectrogram(data[p0 * HOP - self._base : (p1 - 1) * HOP + N_FFT - self._base])
        t, f, self._carry = _spec2peaks(spec, p0, self._carry)
        self._peak_next = p1
        # contour: the same for CONTOUR_NFFT windows, the first paired with its predecessor
        c0 = self._contour_next
        c1 = max(c0, (end - CONTOUR_NFFT) // HOP + 1)
        diff, loud = _contour_rows(data[c0 * HOP - self._base : (c1 - 1) * HOP + CONTOUR_NFFT - self._base], self.rate)
        first = c0
        if len(diff) and self._last_row is not None:
            diff, loud, first = np.vstack([self._last_row[0], diff]), np.r_[self._last_row[1], loud], c0 - 1
        cf, words = _rows2contour(diff, loud)
        cf = cf + first
        if len(diff):
            self._last_row = (diff[-1:], loud[-1:])
        self._contour_next = c1
        self._out.append((t, f, cf, words))
        keep = min(p1, c1) * HOP - self._base  # the next windows start here
        rest = data[keep:]
        self._buf, self._buffered, self._base = [rest], len(rest), self._base + keep

    def finish(self) -> AudioTrack:
        if self._buffered:
            self._process()
        self.shifted = {offset: ex.finish() for offset, _, ex in self._grids}
        parts = self._out or [(np.zeros(0, np.int64),) * 3 + (np.zeros(0, np.uint32),)]
        return AudioTrack(
            (np.concatenate([p[0] for p in parts]) + self._offset).astype(np.uint32),
            np.concatenate([p[1] for p in parts]).astype(np.uint16),
            (np.concatenate([p[2] for p in parts]) + self._offset).astype(np.uint32),
            np.concatenate([p[3] for p in parts]).astype(np.uint32),
        )


def peaks2landmarks(
    frames: np.ndarray, bins: np.ndarray, time_scale: float = 1.0, freq_scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Pair peaks into landmark hashes: (hash uint32, anchor time in frames float32).

    ``time_scale``/``freq_scale`` map the peaks onto another speed before
    hashing (a copy sped up by s is matched with time_scale=s, and with
    freq_scale=1/s too when its pitch moved with the speed).
    """
    h, t, _, _ = landmark_pairs(frames, bins, time_scale, freq_scale)
    return h, t


def landmark_pairs(
    frames: np.ndarray, bins: np.ndarray, time_scale: float = 1.0, freq_scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`peaks2landmarks`, plus each landmark's anchor and target peak (indices into the given peaks)."""
    return scaled_landmark_pairs(frames, bins, [(time_scale, freq_scale)])[0]


def scaled_landmark_pairs(
    frames: np.ndarray, bins: np.ndarray, scales: list[tuple[float, float]]
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """:func:`landmark_pairs` of the same peaks under each ``(time_scale, freq_scale)``, in one pass.

    The scaled copies are laid end to end in time, far enough apart that no
    pair spans two of them, and paired together: the same answer as one call
    per scale, without paying numpy's per-call cost ~30 times over (a query
    is matched at every tempo/pitch scale).
    """
    empty = (np.zeros(0, np.uint32), np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64))
    n = len(frames)
    if n < 2 or not scales:
        return [empty for _ in scales]
    ts = np.repeat(np.array([s[0] for s in scales], np.float64), n)
    fs = np.repeat(np.array([s[1] for s in scales], np.float64), n)
    tf = np.tile(frames.astype(np.float64), len(scales)) * ts
    ff = np.tile(bins.astype(np.float64), len(scales)) * fs
    ti = np.rint(tf).astype(np.int64)
    fi = np.rint(ff).astype(np.int64)
    gap = int(ti.max()) + MAX_DT + 2  # scale k's frames start at k * gap
    ti += np.repeat(np.arange(len(scales), dtype=np.int64) * gap, n)
    order = np.lexsort((fi, ti))
    ti, fi, tf = ti[order], fi[order], tf[order]
    total = len(ti)
    hashes: list[np.ndarray] = []
    times: list[np.ndarray] = []
    anchors: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    counts = np.zeros(total, np.int64)
    # Look ahead up to K peaks later; vectorised over anchors per lag.  An
    # anchor drops out once it has FAN_OUT targets or its next peak is over
    # MAX_DT away (peaks are in time order, so every later one is too).
    max_lag = 4 * FAN_OUT
    active = np.flatnonzero((fi >= 0) & (fi < 256))
    for lag in range(1, max_lag + 1):
        active = active[active + lag < total]
        if not len(active):
            break
        a = active
        b = a + lag
        dt = ti[b] - ti[a]
        df = fi[b] - fi[a]
        near = dt <= MAX_DT
        ok = near & (dt >= 1) & (np.abs(df) <= MAX_DF)
        a, b = a[ok], b[ok]
        counts[a] += 1
        active = active[near & (counts[active] < FAN_OUT)]
        h = ((fi[a] & 0xFF) << 12) | (((df[ok] + 32) & 0x3F) << 6) | (dt[ok] & 0x3F)
        hashes.append(h.astype(np.uint32))
        times.append(tf[a].astype(np.float32))
        anchors.append(order[a])
        targets.append(order[b])
    if not hashes:
        return [empty for _ in scales]
    h, t, a, b = (np.concatenate(x) for x in (hashes, times, anchors, targets))
    which = (a // n).astype(np.int16)  # the scale of each landmark (small ints: a radix sort)
    by_scale = np.argsort(which, kind="stable")  # regrouped in their order of discovery
    bounds = np.r_[0, np.cumsum(np.bincount(which, minlength=len(scales)))]
    out = []
    for k in range(len(scales)):
        sel = by_scale[bounds[k] : bounds[k + 1]]
        out.append((h[sel], t[sel], a[sel] - k * n, b[sel] - k * n))
    return out


def repeated(hashes: np.ndarray, duration: float) -> np.ndarray:
    """Mask of landmarks whose hash repeats too often within one file (see MAX_REPEATS_PER_MINUTE)."""
    if len(hashes) == 0:
        return np.zeros(0, bool)
    limit = max(MIN_REPEATS, int(MAX_REPEATS_PER_MINUTE * duration / 60.0))
    _, inv, counts = np.unique(hashes, return_inverse=True, return_counts=True)
    return counts[inv] > limit


def drop_repeated(hashes: np.ndarray, times: np.ndarray, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """Remove landmarks whose hash repeats too often within one file."""
    keep = ~repeated(hashes, duration)
    return hashes[keep], times[keep]


def peak_tracks(frames: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Track id of each peak (the index of the track's first peak).

    A peak continues the track of a peak at most TRACK_GAP frames earlier and
    TRACK_DF bins away (a sustained or gliding tone; the latest, then the
    lowest such peak), otherwise it starts a new track.
    """
    f = np.asarray(frames, np.int64)
    b = np.asarray(bins, np.int64)
    n = len(f)
    if n == 0:
        return np.zeros(0, np.int64)
    width = int(b.max()) + TRACK_DF + 2
    key = f * width + b
    order = np.argsort(key, kind="stable")
    sk = key[order]
    pred = np.full(n, -1, np.int64)
    for dt in range(1, TRACK_GAP + 1):
        for db in range(-TRACK_DF, TRACK_DF + 1):
            want = (f - dt) * width + (b + db)
            pos = np.searchsorted(sk, want).clip(0, n - 1)
            found = (sk[pos] == want) & (pred < 0)
            pred[found] = order[pos[found]]
    root = np.where(pred < 0, np.arange(n), pred)
    while True:  # pointer jumping: every peak ends at its track's first peak
        nxt = root[root]
        if np.array_equal(nxt, root):
            return root
        root = nxt


def frames2seconds(frames: np.ndarray, rate: int = 8000) -> np.ndarray:
    return np.asarray(frames, np.float64) * HOP / rate
