"""Matching: the index proposes candidates, the stored fingerprints decide.

1. Candidates (a bounded number of index lookups, whatever the library's
   size): the query's visual band terms (frames thinned evenly to at most
   VISUAL_LOOKUP_KEYS) and a fixed sample of its unit-scale landmark keys
   (AUDIO_LOOKUP_KEYS) are looked up once each.  Every hit votes for
   (reference, time offset) -- audio hits at three speeds, so tempo-changed
   copies stand out too.  References whose best offset beats their own
   chance level are verified, with the offsets that voted.
2. Verification, per candidate, from its stored fingerprint (one batched
   read), around the voted offsets (long references) or whole:
   - visual: the query's frame hashes against the candidate's (both
     orientations: mirrored copies match too).  Close frame pairs vote in a
     (speed, offset) Hough space for speeds 0.90-1.10; each peak's inliers
     are chained along the query time axis (gaps bridged up to MAX_GAP) into
     segments; a segment's score is the mean per-frame closeness along the
     line.  Peaks are taken one after another, so every copied segment is found.
   - audio: every landmark of the query, under every tempo/pitch scale,
     against the candidate's own landmarks (exactly its index postings);
     hits vote for (scale, offset); each peak's inliers are chained into
     segments the same way.
   - short queries' sound is also checked bit by bit (band-energy contour):
     at the offsets proposed (up to 12 s), and, up to 4 s in a library of
     24+ files with sound, at every offset, judged against the query's
     peaks over a fixed cohort of other files (T-norm); the same cohort
     sets how long the query's chance landmark lines get.
3. Fusion: visual and audio segments of one reference that overlap with the
   same offset become one audiovisual segment (noisy-or of the scores).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import audio as A
from . import index as I
from .arrays import distinct, runs, value_counts
from .fingerprint import AudioTrack, Fingerprint, VisualTrack
from .store.base import Hits, LibraryStore
from .visual import hamming

log = logging.getLogger(__name__)

# --- candidate retrieval ------------------------------------------------------
#: Offset bin of candidate votes (seconds).
VOTE_BIN = 2.0
#: A reference needs this many query frames voting for one offset (+-1 bin).
MIN_VISUAL_VOTES = 3
#: At most this many references are aligned per query (best voted first).
MAX_CANDIDATES = 24

# --- visual alignment -----------------------------------------------------
#: Frame pairs further apart than this (of 64 bits) are not evidence; random
#: pairs sit at 32 +- 4, re-encoded copies at 0-8, harder edits at 8-18.
PAIR_MAX_BITS = 18
#: Closeness scale: a frame at <= TAU_LO bits counts fully, >= TAU_HI not at all.
TAU_LO = 6.0
TAU_HI = 22.0
#: Best pairs kept per query frame before voting (static shots repeat a frame).
TOP_K = 6
SPEEDS = np.round(np.arange(0.90, 1.1001, 0.01), 2)
HOUGH_BIN = 0.5  # seconds
#: A pair is an inlier when the reference time is this close to the line (s).
INLIER_TOL = 0.7
#: Inliers further apart than this in query time start a new segment (s).
MAX_GAP = 4.0
#: A run's first and last inliers need another inlier this close (s): a lone
#: chance pair near the line, up to MAX_GAP beyond the copy, must neither
#: stretch the segment nor tilt the speed fit.
EDGE_GAP = 1.0
#: A visual segment needs this many inlier frames ...
MIN_VISUAL_INLIERS = 6
#: ... and this mean closeness along its line.
MIN_SEGMENT_SCORE = 0.35
#: Short runs and off-speed lines are where chance alignments live (a few
#: look-alike frames, one of 42 speed/mirror hypotheses), so they must score
#: higher: + SHORT_SEGMENT_PENALTY x (1 - duration / SHORT_SEGMENT_SECONDS)
#: below that duration, + OFF_SPEED_PENALTY away from speed 1.
SHORT_SEGMENT_SECONDS = 5.0
SHORT_SEGMENT_PENALTY = 0.3
OFF_SPEED_PENALTY = 0.2
#: A visual segment whose frames are mostly dim (FLAG_DIM: night footage), on
#: either side, must last at least this long (s): unrelated night scenes
#: share 1-3 s runs of look-alike frames (dark sky over darker ground) at
#: scores of 0.6-0.9 (bench/night.py), while a copy runs as long as it was copied.
DIM_SEGMENT_SECONDS = 5.0
#: "Mostly": more than this share of the segment's informative frames.
DIM_SHARE = 0.5
#: Speeds within this of 1 count as unchanged.
UNIT_SPEED_TOL = 0.015
MAX_SEGMENTS = 8

# --- audio alignment ------------------------------------------------------
#: Offset bin for landmark votes (s): two STFT hops.
AUDIO_BIN = 0.064
#: A landmark offset peak needs this many matching landmarks (random hits in
#: a 20-bit space rarely line up more than 2-3 times).
MIN_AUDIO_MATCHES = 8
#: Share of the query's landmark anchors in a span found on the line that counts as
#: a full-strength audio match; noisy lossy excerpts keep 20-80 %, chance lines < 15 %.
AUDIO_FULL_RATIO = 0.3
#: Certainty counts independent events on the line, not landmarks: the
#: distinct tracks (mediadna.audio.peak_tracks) among the matched anchors and
#: among the matched targets, whichever is fewer.  A sustained tone makes the
#: same landmarks every frame, so per-landmark counts let two unrelated songs
#: holding one chord, or one tone marching into one drum hit, look like 10-20
#: matches.  How many events a chance line reaches depends on how often the
#: query's landmarks meet the reference's at all (:func:`chance_rate`).
#: Against the dev corpora's generated music and speech (rate 0.02-0.3)
#: chance lines reach 4-7 events at speed 1; against dense orchestral
#: recordings (rate 0.3-1.1) 10-16.  Certainty therefore ramps
#: from AUDIO_CERTAIN_FROM + AUDIO_CHANCE_EVENTS x chance events, over
#: AUDIO_CERTAIN_SPAN more (0.5 half way); a noisy lossy 2 s excerpt of the
#: right file has 8-25 events (speech, generated music) or 10-60 (recordings).
AUDIO_CERTAIN_FROM = 3
AUDIO_CHANCE_EVENTS = 12.0
#: Share of a pair's line cells, the fullest, left out of its chance rate.
CHANCE_TRIM = 0.01
AUDIO_CERTAIN_SPAN = 8.0
#: An off-speed line (one of 30 scale hypotheses) needs this many more
#: (off-speed chance lines reach 2-3 events more than speed-1 ones).
AUDIO_OFF_SPEED_EXTRA = 3
AUDIO_GAP = 5.0
#: An audio line at a scale farther from 1 replaces a nearer one only with
#: this many more votes (15 %): neighbouring scales share most landmarks.
SCALE_SWITCH_MARGIN = 0.15
#: Like EDGE_GAP for audio: a run's first and last matched anchor times need
#: another one this close (s), or a lone chance hit up to AUDIO_GAP beyond
#: the copy stretches the segment (and then outranks the true one).
AUDIO_EDGE_GAP = 2.0
#: The first and last frames of a sound often fail to match (their landmarks
#: pair with peaks the excerpt cut off or noise hid): reference peaks this
#: close to an audio segment's ends count as part of it when the segment is
#: extended over the reference's silence (s; 0.03-0.07 s on the dev corpus).
AUDIO_ONSET_SLACK = 0.1
#: ... over a pause at least this long (s): shorter gaps are between words or
#: notes (0.02-0.12 s in the generated speech), not silence.
AUDIO_PAUSE = 0.25


@dataclass
class Segment:
    query_start: float
    query_end: float
    reference_start: float
    reference_end: float
    score: float
    modality: str  # video | audio | audiovisual
    speed: float = 1.0
    flipped: bool = False

    @property
    def duration(self) -> float:
        return self.query_end - self.query_start

    @property
    def offset(self) -> float:
        return self.reference_start - self.speed * self.query_start

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("query_start", "query_end", "reference_start", "reference_end"):
            d[k] = round(float(d[k]), 3)
        d["score"] = round(float(d["score"]), 4)
        d["speed"] = round(float(d["speed"]), 3)
        return d


@dataclass
class Match:
    primary_key: str
    similarity: float
    query_coverage: float
    reference_coverage: float
    modality: str
    segments: list[Segment] = field(default_factory=list)
    exact: bool = False
    duplicate: bool = False  # passes the library's duplicate rule (set by the pipeline)

    def to_dict(self) -> dict:
        return {
            "primary_key": self.primary_key,
            "similarity": round(float(self.similarity), 4),
            "query_coverage": round(float(self.query_coverage), 4),
            "reference_coverage": round(float(self.reference_coverage), 4),
            "modality": self.modality,
            "exact": self.exact,
            "duplicate": self.duplicate,
            "segments": [s.to_dict() for s in self.segments],
        }


# --- helpers ----------------------------------------------------------------
def _union_length(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, -np.inf
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def _runs(times: np.ndarray, gap: float) -> list[np.ndarray]:
    """Split sorted times into index runs where consecutive gaps exceed ``gap``."""
    if len(times) == 0:
        return []
    cut = np.nonzero(np.diff(times) > gap)[0] + 1
    return np.split(np.arange(len(times)), cut)


def _dense_runs(times: np.ndarray, fps: float) -> list[np.ndarray]:
    """:func:`_runs` of sorted inlier times, isolated inliers peeled off each run's ends."""
    edge = max(EDGE_GAP, 2.5 / fps)
    return [_peel_edges(times, run, edge) for run in _runs(times, MAX_GAP)]


def _peel_edges(times: np.ndarray, run: np.ndarray, edge: float) -> np.ndarray:
    """``run`` (indices into sorted ``times``) without isolated first/last times.

    Works on distinct times, so several hits at one lone anchor are peeled together.
    """
    t = times[run]
    u = distinct(t)
    a, b = 0, len(u)
    while b - a >= 2 and u[a + 1] - u[a] > edge:
        a += 1
    while b - a >= 2 and u[b - 1] - u[b - 2] > edge:
        b -= 1
    return run[(t >= u[a]) & (t <= u[b - 1])] if len(u) else run


def required_score(duration: float, speed: float) -> float:
    """Lowest score a visual segment of this length and speed may have."""
    short = SHORT_SEGMENT_PENALTY * max(0.0, 1.0 - duration / SHORT_SEGMENT_SECONDS)
    off = OFF_SPEED_PENALTY if abs(speed - 1.0) > UNIT_SPEED_TOL else 0.0
    return MIN_SEGMENT_SCORE + short + off


def _ramp(value: float, start: float, span: float) -> float:
    """A certainty: 0 up to ``start``, rising linearly to 1 over ``span`` more."""
    return min(1.0, max(0.0, (value - start) / span))


def closeness(d: np.ndarray) -> np.ndarray:
    return np.clip((TAU_HI - np.asarray(d, np.float64)) / (TAU_HI - TAU_LO), 0.0, 1.0)


# --- visual -----------------------------------------------------------------
def views_distance(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Bits between query hashes ``q`` (...) and reference frames ``r`` (..., views):
    to the nearest of each frame's views (itself and its centred crops)."""
    return hamming(q[..., None], r).min(axis=-1)


def _pairs(q: np.ndarray, r: np.ndarray, qmask: np.ndarray, rmask: np.ndarray):
    """Close (query, reference) frame pairs: (i, j, bits), at most TOP_K per i.
    ``r``: (M, views) hashes of each reference frame (see ``VisualTrack.views``)."""
    I_, J_, D_ = [], [], []
    ridx = np.nonzero(rmask)[0]
    if len(ridx) == 0:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0, int)
    rr = r[ridx]
    k = min(TOP_K, len(ridx))
    qidx = np.nonzero(qmask)[0]
    if len(qidx) == 0:  # no informative query frame (all flat): nothing to pair
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0, int)
    block = max(1, 4_000_000 // max(1, len(ridx) * r.shape[1]))
    for s in range(0, len(qidx), block):
        qi = qidx[s : s + block]
        d = views_distance(q[qi][:, None], rr[None, :])
        if k < len(ridx):
            part = np.argpartition(d, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(np.arange(len(ridx)), d.shape)
        dd = np.take_along_axis(d, part, axis=1)
        ok = dd <= PAIR_MAX_BITS
        rows = np.broadcast_to(qi[:, None], part.shape)
        I_.append(rows[ok])
        J_.append(ridx[part[ok]])
        D_.append(dd[ok].astype(int))
    return np.concatenate(I_), np.concatenate(J_), np.concatenate(D_)


def _aligned_distance(tq: np.ndarray, qh: np.ndarray, tr: np.ndarray, rh: np.ndarray, rinf: np.ndarray, speed: float, offset: float) -> np.ndarray:
    """Per query frame: best distance to reference frames near the line (64 if none)."""
    pred = speed * tq + offset
    pos = np.searchsorted(tr, pred)
    best = np.full(len(tq), 64, np.int64)
    for delta in range(-3, 3):
        j = np.clip(pos + delta, 0, len(tr) - 1)
        near = (np.abs(tr[j] - pred) <= INLIER_TOL) & rinf[j]
        d = views_distance(qh, rh[j]).astype(np.int64)
        best = np.where(near, np.minimum(best, d), best)
    return best


def align_visual(query: Fingerprint, ref: Fingerprint) -> list[Segment]:
    """Every copied segment of ``ref`` in ``query`` found from frame hashes."""
    if not query.has_visual or not ref.has_visual:
        return []
    qv, rv = query.visual, ref.visual
    tq, tr = qv.times.astype(np.float64), rv.times.astype(np.float64)
    qinf, rinf = qv.informative, rv.informative
    fps = float(query.params.get("sample_fps", 5.0))
    segments: list[Segment] = []
    for flipped, qh in ((False, qv.hashes), (True, qv.flipped)):
        i, j, d = _pairs(qh, rv.views, qinf, rinf)
        alive = np.ones(len(i), bool)
        for _ in range(MAX_SEGMENTS):
            if alive.sum() < MIN_VISUAL_INLIERS:
                break
            ii, jj, dd = i[alive], j[alive], d[alive]
            w = closeness(dd) + 0.05
            # Hough vote: (speed, offset bin); each query frame votes once per cell.
            off = tr[jj][None, :] - SPEEDS[:, None] * tq[ii][None, :]
            ob = np.floor(off / HOUGH_BIN).astype(np.int64)
            lo = ob.min()
            ob -= lo
            nb = int(ob.max()) + 1
            si = np.broadcast_to(np.arange(len(SPEEDS))[:, None], ob.shape)
            cell = (si * nb + ob).ravel()
            key = cell * (len(tq) + 1) + np.broadcast_to(ii[None, :], ob.shape).ravel()
            wk = np.broadcast_to(w[None, :], ob.shape).ravel()
            order = np.lexsort((-wk, key))
            first = np.r_[True, key[order][1:] != key[order][:-1]]
            sel = order[first]
            acc = np.bincount(cell[sel], weights=wk[sel], minlength=len(SPEEDS) * nb).reshape(len(SPEEDS), nb)
            # neighbouring offset bins belong to the same line
            acc = acc + np.pad(acc, ((0, 0), (1, 0)))[:, :-1]
            s_i, o_i = np.unravel_index(int(np.argmax(acc)), acc.shape)
            if acc[s_i, o_i] < MIN_VISUAL_INLIERS * 0.5:
                break
            speed = float(SPEEDS[s_i])
            offset = (o_i + lo) * HOUGH_BIN  # bin start; refine from inliers below
            resid = tr[jj] - (speed * tq[ii] + offset)
            inl = np.abs(resid - np.median(resid[np.abs(resid) <= 2 * HOUGH_BIN + INLIER_TOL])) <= INLIER_TOL if np.any(np.abs(resid) <= 2 * HOUGH_BIN + INLIER_TOL) else np.zeros(len(ii), bool)
            if inl.sum() < 2:
                alive[np.nonzero(alive)[0]] = False
                break
            # refine speed and offset by weighted least squares on the inliers
            # of the runs that can become segments (not on lone chance pairs)
            qf0 = distinct(ii[inl])
            good = [qf0[r] for r in _dense_runs(tq[qf0], fps) if len(r) >= MIN_VISUAL_INLIERS]
            if good:
                inl &= np.isin(ii, np.concatenate(good))
            xs, ys, ws = tq[ii][inl], tr[jj][inl], w[inl]
            if xs.max() - xs.min() >= 3.0:
                A_ = np.stack([xs, np.ones_like(xs)], 1) * np.sqrt(ws)[:, None]
                sol, *_ = np.linalg.lstsq(A_, ys * np.sqrt(ws), rcond=None)
                if 0.88 <= sol[0] <= 1.12:
                    speed, offset = float(sol[0]), float(sol[1])
                else:
                    offset = float(np.median(ys - speed * xs))
            else:
                offset = float(np.median(ys - speed * xs))
            resid = tr[jj] - (speed * tq[ii] + offset)
            inl = np.abs(resid) <= INLIER_TOL
            qframes = distinct(ii[inl])
            used = np.isin(i, qframes) & alive
            found_any = False
            for run in _dense_runs(tq[qframes], fps):
                fr = qframes[run]
                if len(fr) < MIN_VISUAL_INLIERS:
                    continue
                qs, qe = float(tq[fr[0]]), float(tq[fr[-1]]) + 1.0 / fps
                span = (tq >= qs) & (tq < qe) & qinf
                dist = _aligned_distance(tq[span], qh[span], tr, rv.views, rinf, speed, offset)
                score = float(closeness(dist).mean()) if len(dist) else 0.0
                if score < required_score(qe - qs, speed):
                    continue
                rs = speed * qs + offset
                re = speed * qe + offset
                rs, re = max(0.0, rs), min(float(ref.duration) or re, re)
                if re <= rs:
                    continue
                if qe - qs < DIM_SEGMENT_SECONDS and (_mostly_dim(qv, qs, qe) or _mostly_dim(rv, rs, re)):
                    continue
                segments.append(Segment(qs, qe, rs, re, score, "video", speed, flipped))
                found_any = True
            alive &= ~used
            if not found_any and used.sum() == 0:
                break
    return _dedupe(segments)


def _mostly_dim(track: VisualTrack, start: float, end: float) -> bool:
    """Are most informative frames of ``track`` in ``[start, end)`` dim (see DIM_SEGMENT_SECONDS)?"""
    sel = (track.times >= start) & (track.times < end) & track.informative
    return bool(sel.any()) and float(track.dim[sel].mean()) > DIM_SHARE


def _dedupe(segments: list[Segment]) -> list[Segment]:
    """Drop segments mostly covered (in query time) by a better one on the same line."""
    keep: list[Segment] = []
    for s in sorted(segments, key=lambda s: -s.score * s.duration):
        dup = False
        for k in keep:
            ov = min(s.query_end, k.query_end) - max(s.query_start, k.query_start)
            if ov > 0.5 * s.duration and abs(s.offset - k.offset) < 2.0:
                dup = True
                break
        if not dup:
            keep.append(s)
    return sorted(keep, key=lambda s: s.query_start)


# --- audio ------------------------------------------------------------------
#: A (variant, offset bin) vote table up to this many cells, and at most
#: DENSE_CELLS_PER_HIT cells per hit, is counted densely; a larger or
#: sparser one by sorting its hits (the same counts: a whole 3-min file's
#: table over every speed has ~350k cells for a 2 s query's few thousand hits).
DENSE_CELLS = 1 << 22
DENSE_CELLS_PER_HIT = 32


def _dense(cells: int, hits: int) -> bool:
    return cells <= DENSE_CELLS and cells <= DENSE_CELLS_PER_HIT * max(hits, 1)


def _best_line(scales: np.ndarray, vi: np.ndarray, ob: np.ndarray, alive: np.ndarray) -> tuple[int, int, int]:
    """(variant, offset bin, votes) of the strongest offset peak over all variants.

    Votes of neighbouring bins are pooled (a landmark offset straddles bins).
    Most landmarks span a few frames, so neighbouring scales collect nearly
    the same votes: variants are tried nearest to speed 1 first, and a
    farther one must beat the best so far by SCALE_SWITCH_MARGIN (variants
    of one scale on other STFT grids just need more votes).
    """
    idx = np.nonzero(alive)[0]
    v = vi[idx].astype(np.int64)
    keep = np.bincount(v, minlength=len(scales))[v] >= MIN_AUDIO_MATCHES
    v, o = v[keep], ob[idx][keep].astype(np.int64)
    if not len(v):
        return (-1, 0, 0)
    o = o - o.min() + 1  # bins from 1; 0 and span - 1 are empty guards between variants
    span = int(o.max()) + 2
    base = int(ob[idx][keep].min())
    present, row = np.unique(v, return_inverse=True)  # one table row per variant with votes
    key = row.astype(np.int64) * span + o
    if _dense(len(present) * span, len(v)):
        rows = _dense_peaks(len(present), span, key)
    else:
        rows = _sparse_peaks(len(present), span, key)
    peak = {int(present[r]): p for r, p in rows.items()}
    best = (-1, 0, 0)
    for var in sorted(peak, key=lambda u: (abs(scales[u] - 1.0), u)):
        k, votes = peak[var]
        farther = best[0] >= 0 and abs(scales[var] - 1.0) > abs(scales[best[0]] - 1.0) + 1e-9
        if votes > best[2] * (1.0 + SCALE_SWITCH_MARGIN if farther else 1.0):
            best = (var, k + base, votes)
    return best


def _dense_peaks(n_variants: int, span: int, key: np.ndarray) -> dict[int, tuple[int, int]]:
    """{variant: (bin - 1, pooled votes)} of each variant's best bin (ties: the lowest) within
    its lowest and highest voted bins; ``key = variant * span + bin``."""
    cnt = np.bincount(key, minlength=n_variants * span).reshape(n_variants, span)
    pooled = cnt.copy()
    pooled[:, 1:] += cnt[:, :-1]
    pooled[:, :-1] += cnt[:, 1:]
    voted = cnt > 0
    present = np.flatnonzero(voted.any(axis=1))
    rows = voted[present]
    lo = rows.argmax(axis=1)
    hi = span - 1 - rows[:, ::-1].argmax(axis=1)
    # outside [lo, hi] only the two bins next to it have votes (pooled from lo and hi)
    p = pooled[present]
    r = np.arange(len(present))
    p[r, lo - 1] = -1
    p[r, hi + 1] = -1
    at = p.argmax(axis=1)
    return {int(var): (int(b) - 1, int(p[r, b])) for r, (var, b) in enumerate(zip(present, at))}


def _sparse_peaks(n_variants: int, span: int, key: np.ndarray) -> dict[int, tuple[int, int]]:
    """:func:`_dense_peaks` by sorting, for vote tables too large to hold densely."""
    keys, counts = value_counts(key)

    def count(k: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(keys, k).clip(0, len(keys) - 1)
        return np.where(keys[pos] == k, counts[pos], 0)

    # candidate bins: every bin between a variant's lowest and highest one
    kv = keys // span
    lo = np.full(n_variants, np.iinfo(np.int64).max)
    hi = np.full(n_variants, -1)
    np.minimum.at(lo, kv, keys)
    np.maximum.at(hi, kv, keys)
    cand = distinct(np.concatenate([keys - 1, keys, keys + 1]))
    cv = cand // span
    cand = cand[(cand >= lo[cv]) & (cand <= hi[cv])]
    cv = cand // span
    pooled = count(cand - 1) + count(cand) + count(cand + 1)
    order = np.lexsort((cand, -pooled, cv))  # per variant: most votes, then lowest bin
    first = order[np.r_[True, cv[order][1:] != cv[order][:-1]]]
    return {int(cv[i]): (int(cand[i] % span) - 1, int(pooled[i])) for i in first}


@dataclass
class AudioLine:
    """One chained run of inliers on a (scale, offset) landmark line: a candidate audio segment."""

    speed: float
    offset: float
    query_start: float
    query_end: float
    events: int  # independent events (see AUDIO_CERTAIN_FROM)
    start: float  # events a chance line of this pair and speed reaches (certainty starts here)
    ratio: float  # matched share of the query's anchors in the span (see AUDIO_FULL_RATIO)

    @property
    def excess(self) -> float:
        return self.events - self.start


def _audio_lines(hit: tuple, variants: list, scales: np.ndarray, anchor_times: list[np.ndarray],
                 query_duration: float, searched_seconds: float, vote_floor: Callable[[], float] | None = None):
    """Every :class:`AudioLine` in one reference's landmark hits, strongest line first.

    Each round takes the strongest (scale, offset) line over all variants,
    chains its inliers into runs, then removes every hit (any variant) that
    line explains, so the next round finds the next copied segment.  Rounds
    stop at a line of fewer votes than MIN_AUDIO_MATCHES, or than
    ``vote_floor()`` (asked before each round).
    """
    vi, tq, trf = hit[:3]
    at, tt = hit[3:5] if len(hit) > 3 else (np.round(tq, 3),) * 2
    order = np.argsort(vi, kind="stable")
    vi, tq, trf, at, tt = vi[order], tq[order], trf[order], at[order], tt[order]
    edges = np.r_[0, np.nonzero(np.diff(vi))[0] + 1, len(vi)]
    bounds = [(int(vi[edges[k]]), int(edges[k]), int(edges[k + 1])) for k in range(len(edges) - 1)]
    off = trf - scales[vi] * tq
    ob = np.floor(off / AUDIO_BIN).astype(np.int64)
    chance = None
    alive = np.ones(len(vi), bool)
    for _ in range(MAX_SEGMENTS):
        floor = max(MIN_AUDIO_MATCHES, vote_floor() if vote_floor else 0)
        if alive.sum() < floor:
            break
        v, obin, votes = _best_line(scales, vi, ob, alive)
        if v < 0 or votes < floor:
            break
        if chance is None:
            chance = chance_rate(vi, ob, len(variants), searched_seconds, query_duration)
        ts = float(scales[v])
        lo, hi = next((lo, hi) for vv, lo, hi in bounds if vv == v)
        sel = np.arange(lo, hi)[alive[lo:hi] & (np.abs(ob[lo:hi] - obin) <= 1)]
        offset = float(np.median(off[sel]))
        sel = np.arange(lo, hi)[alive[lo:hi] & (np.abs(off[lo:hi] - offset) <= 1.5 * AUDIO_BIN)]
        sel = sel[np.argsort(tq[sel])]
        anchors = anchor_times[v]
        start = AUDIO_CERTAIN_FROM + AUDIO_CHANCE_EVENTS * chance
        start += AUDIO_OFF_SPEED_EXTRA if abs(ts - 1.0) > UNIT_SPEED_TOL else 0
        for run in _runs(tq[sel], AUDIO_GAP):
            ridx = sel[_peel_edges(tq[sel], run, AUDIO_EDGE_GAP)]
            n_anchor = len(distinct(np.round(tq[ridx], 3)))
            if n_anchor < MIN_AUDIO_MATCHES:
                continue
            # independent events: distinct tracks among the anchors and among the targets
            n = min(len(distinct(at[ridx])), len(distinct(tt[ridx])))
            qs, qe = float(tq[ridx].min()), float(tq[ridx].max()) + 0.5
            in_span = int(((anchors >= qs) & (anchors <= qe)).sum())
            yield AudioLine(ts, offset, qs, qe, n, start, n_anchor / max(in_span, 1))
        # everything this line explains, in any variant, is used up
        if len(sel):
            q0, q1 = float(tq[sel].min()), float(tq[sel].max())
            explained = (tq >= q0) & (tq <= q1) & (np.abs(trf - (ts * tq + offset)) <= 1.0)
            alive &= ~explained
        alive[sel] = False


def _line_setup(variants: list) -> tuple[np.ndarray, list[np.ndarray]]:
    return np.array([v[0] for v in variants], np.float64), [distinct(np.round(v[3], 3)) for v in variants]


def hits2lines(hits_by_file: dict, variants: list, query_duration: float, ref_durations: dict,
               searched: dict | None = None) -> dict[str, list[AudioLine]]:
    """Every reference's landmark lines (:func:`_audio_lines`), from its hits.

    ``hits_by_file[file] = (variant index, query time s, reference time s[,
    anchor track, target track])`` arrays; without tracks every anchor time
    counts as an event of its own.  ``searched[file]``: the seconds of the
    reference the hits were sought in (default: its duration), which sets the
    file's chance rate (see AUDIO_CHANCE_EVENTS).
    """
    scales, anchor_times = _line_setup(variants)
    out: dict[str, list[AudioLine]] = {}
    for fkey, hit in hits_by_file.items():
        searched_seconds = (searched or {}).get(fkey, ref_durations.get(fkey) or 0.0)
        lines = list(_audio_lines(hit, variants, scales, anchor_times, query_duration, searched_seconds))
        if lines:
            out[fkey] = lines
    return out


def lines2segments(lines_by_file: dict[str, list[AudioLine]], query_duration: float, ref_durations: dict,
                   chance_excess: float = 0.0) -> dict[str, list[Segment]]:
    """Scored audio segments per reference from its landmark lines.

    ``chance_excess``: events past its start the query's best line reaches by
    chance elsewhere (:func:`cohort_line_excess`); every line's certainty
    starts that much later.
    """
    out: dict[str, list[Segment]] = {}
    chance_excess = max(0.0, chance_excess)
    for fkey, lines in lines_by_file.items():
        segs: list[Segment] = []
        for line in lines:
            log.debug("audio line %s scale=%.2f offset=%.2f events=%d start=%.2f ratio=%.3f q=[%.1f,%.1f] cohort=%.2f",
                      fkey, line.speed, line.offset, line.events, line.start, line.ratio,
                      line.query_start, line.query_end, chance_excess)
            strength = min(1.0, line.ratio / AUDIO_FULL_RATIO)
            certainty = _ramp(line.excess, chance_excess, AUDIO_CERTAIN_SPAN)
            score = float(strength * certainty)
            ts, qs, qe = line.speed, line.query_start, line.query_end
            rs, re = ts * qs + line.offset, ts * qe + line.offset
            rdur = ref_durations.get(fkey) or re
            rs, re = max(0.0, rs), min(rdur, re)
            qs, qe = max(0.0, qs), min(query_duration or qe, qe)
            if re > rs and qe > qs:
                segs.append(Segment(qs, qe, rs, re, score, "audio", ts))
        if segs:
            out[fkey] = _dedupe(segs)
    return out


def audio_segments(hits_by_file: dict, variants: list, query_duration: float, ref_durations: dict,
                   searched: dict | None = None, chance_excess: float = 0.0) -> dict[str, list[Segment]]:
    """Segments per reference from landmark hits: :func:`hits2lines`, then :func:`lines2segments`."""
    lines = hits2lines(hits_by_file, variants, query_duration, ref_durations, searched)
    return lines2segments(lines, query_duration, ref_durations, chance_excess)


def cohort_line_excess(hits_by_file: dict, variants: list, query_duration: float, ref_durations: dict) -> float:
    """The most events past its start any landmark line of the query reaches
    against the cohort (files it does not copy: chance, for this query), 0 at least.

    Some queries draw longer chance lines than their pair's chance rate
    predicts (a 2 s orchestral excerpt, at 1.08x, 14 events against another
    orchestral track): a short query's lines count only the events past this.
    """
    scales, anchor_times = _line_setup(variants)
    best = 0.0

    def floor() -> float:
        # a line has at most as many events as inliers, and they are about its votes:
        # one of fewer than best + AUDIO_CERTAIN_FROM cannot reach past best
        return best + AUDIO_CERTAIN_FROM

    for fkey, hit in sorted(hits_by_file.items(), key=lambda kv: -len(kv[1][0])):
        for line in _audio_lines(hit, variants, scales, anchor_times, query_duration, ref_durations.get(fkey) or 0.0, floor):
            best = max(best, line.excess)
    return best


# --- contour verification -----------------------------------------------------
#: A short query's sound (up to audio.SHIFT_MAX_SECONDS, where it has its
#: sub-hop grids) is also checked bit by bit: the band-energy contour
#: (audio.samples2contour) of each of its grids against the reference's, at
#: every frame offset of a CANDIDATE_BIN-wide cell (the candidate stage's
#: offsets are cells' lower edges), widened by CONTOUR_SLACK s each side, at
#: each offset the candidate stage or a landmark line proposed, at speed 1.
CONTOUR_SLACK = 1.0
#: Agreement at one offset is z = (0.5 - bit error rate) x sqrt(frames
#: compared): unrelated sound sits near 0.5, z near 0.  But a pair's z
#: wanders with how alike the two sounds are at all (two songs of one
#: synthetic voice or instrument, of one key), so the evidence is how far the
#: best offset stands out of the pair's own profile: (peak z - median z) /
#: std z over the offsets searched, the peak's CONTOUR_PEAK_GAP neighbours
#: left out (they share most of its bits).  Measured on the excerpt
#: benchmarks (2 s and 5 s, noisy, lossy; ~3,000 pairs of a query and a file
#: it does not copy): chance peaks stand 3 deviations out (median), at most
#: 4.8-6.6; the right reference's 10th percentile is 5.7-11, median 9-18.
#: Certainty ramps from CONTOUR_SIGMAS over CONTOUR_SIGMAS_SPAN more.
CONTOUR_SIGMAS = 6.0
CONTOUR_SIGMAS_SPAN = 2.0
CONTOUR_PEAK_GAP = 3
#: ... and the peak must itself agree (z at least this): a pair whose profile
#: is nearly flat (a steady drone) has a tiny spread, and any bump stands out.
CONTOUR_MIN_Z = 0.5
#: At least this many frames compared (1 s): fewer say too little either way.
CONTOUR_MIN_FRAMES = 31


def _dense_contour(track: AudioTrack) -> tuple[np.ndarray, np.ndarray]:
    """A track's contour as arrays indexed by frame: (bits, audible)."""
    n = int(track.contour_frames.max()) + 1 if len(track.contour_frames) else 0
    bits = np.zeros(n, np.uint32)
    audible = np.zeros(n, bool)
    bits[track.contour_frames] = track.contour
    audible[track.contour_frames] = True
    return bits, audible


def _contour_grids(query: Fingerprint) -> list[tuple[int, AudioTrack]]:
    """The query's contour grids worth comparing: (sample offset, track), the unshifted one first."""
    if query.audio is None:
        return []
    grids = [(0, query.audio)] + [(o, t) for o, t in sorted(query.shifted.items()) if o]
    return [(o, t) for o, t in grids if len(t.contour) >= CONTOUR_MIN_FRAMES]


@dataclass
class _Peak:
    """A query's best contour agreement with one reference, over the offsets searched."""

    z: float  # agreement at the peak (see CONTOUR_SIGMAS)
    sigmas: float  # how far the peak stands out of the profile
    grid: int  # the query grid's sample offset
    shift: int  # reference frame = query frame + shift
    compared: np.ndarray  # query frames compared at the peak
    searched: int  # offsets the profile holds (the peak is the best of these)


def _contour_peak(grids: list[tuple[int, AudioTrack]], rbits: np.ndarray, raudible: np.ndarray,
                  shifts_of: Callable[[int], np.ndarray]) -> _Peak | None:
    """The best (grid, shift) of the query's ``grids`` against one reference's dense contour.

    ``shifts_of(grid offset)``: the shifts to search for that grid.  None
    when nothing was compared or the profile is too short to stand out of.
    """
    best = None  # (peak z, grid offset, shifts, z profile, index of the peak, frames compared there)
    for o, track in grids:
        shifts = shifts_of(o)
        if not len(shifts):
            continue
        # the query's frames as one dense run, slid along the reference (a view, not a gather)
        qf = track.contour_frames.astype(np.int64)
        q0, n = int(qf[0]), int(qf[-1] - qf[0]) + 1
        qbits = np.zeros(n, np.uint32)
        qbits[qf - q0] = track.contour
        qaudible = np.zeros(n, bool)
        qaudible[qf - q0] = True
        lo, hi = q0 + int(shifts.min()), q0 + int(shifts.max()) + n  # reference frames any shift touches
        bits, audible = np.zeros(hi - lo, np.uint32), np.zeros(hi - lo, bool)
        a, b = max(lo, 0), min(hi, len(rbits))
        if a < b:
            bits[a - lo : b - lo], audible[a - lo : b - lo] = rbits[a:b], raudible[a:b]
        rows = shifts - int(shifts.min())
        contiguous = len(rows) == rows[-1] + 1
        wbits = sliding_window_view(bits, n)
        waudible = sliding_window_view(audible, n)
        if not contiguous:
            wbits, waudible = wbits[rows], waudible[rows]
        both = waudible & qaudible
        errors = (np.bitwise_count(wbits ^ qbits) * both).sum(axis=1, dtype=np.int64)
        m = both.sum(axis=1)
        z = np.where(m >= CONTOUR_MIN_FRAMES, (0.5 - errors / (32.0 * np.maximum(m, 1))) * np.sqrt(m), np.nan)
        if not np.isfinite(z).any():
            continue
        k = int(np.nanargmax(z))
        if best is None or z[k] > best[0]:
            best = (float(z[k]), o, shifts, z, k, q0 + np.flatnonzero(both[k]))
    if best is None:
        return None
    peak, o, shifts, z, k, compared = best
    rest = z[(np.abs(shifts - shifts[k]) > CONTOUR_PEAK_GAP) & np.isfinite(z)]
    if len(rest) < 2 * CONTOUR_PEAK_GAP + 1:
        return None
    sigmas = (peak - float(np.median(rest))) / max(float(np.std(rest)), 1e-3)
    return _Peak(peak, sigmas, o, int(shifts[k]), compared, int(np.isfinite(z).sum()))


def _contour_segment(query: Fingerprint, ref: Fingerprint, peak: _Peak, score: float) -> Segment | None:
    """The speed-1 audio segment a contour peak says the query copies."""
    rate = float(query.params.get("audio_rate", 8000))
    hop_s = A.HOP / rate
    offset = peak.shift * hop_s - peak.grid / rate  # reference time - query time
    qs = max(0.0, float(peak.compared.min()) * hop_s + peak.grid / rate)
    qe = min(query.duration or np.inf, float(peak.compared.max()) * hop_s + peak.grid / rate + A.CONTOUR_NFFT / rate)
    rs, re = max(0.0, qs + offset), min(ref.duration or np.inf, qe + offset)
    return Segment(qs, qe, rs, re, score, "audio", 1.0) if qe > qs and re > rs else None


def contour_segments(query: Fingerprint, refs: dict[str, Fingerprint], offsets: dict[str, list[float]]) -> dict[str, list[Segment]]:
    """One speed-1 audio segment per reference whose contour agrees with the query's near a proposed offset.

    ``offsets[file]``: reference time of the query's start (s) proposed by
    the candidate stage or a landmark line.  The best (grid, offset) of each
    reference is kept, scored by how far it stands out (see CONTOUR_SIGMAS).
    """
    grids = _contour_grids(query)
    rate = float(query.params.get("audio_rate", 8000))
    hop_s = A.HOP / rate
    out: dict[str, list[Segment]] = {}
    for f, ref in refs.items():
        if not grids or ref.audio is None or len(ref.audio.contour) < CONTOUR_MIN_FRAMES or not offsets.get(f):
            continue
        rbits, raudible = _dense_contour(ref.audio)

        def shifts_of(o: int, xs: list[float] = offsets[f]) -> np.ndarray:
            first = o / rate  # query time of this grid's frame 0
            return np.unique(np.concatenate([
                np.arange(int(np.floor((x + first - CONTOUR_SLACK) / hop_s)),
                          int(np.ceil((x + first + CANDIDATE_BIN + CONTOUR_SLACK) / hop_s)) + 1)
                for x in xs]))

        peak = _contour_peak(grids, rbits, raudible, shifts_of)
        if peak is None or peak.z < CONTOUR_MIN_Z:
            continue
        score = _ramp(peak.sigmas, CONTOUR_SIGMAS, CONTOUR_SIGMAS_SPAN)
        log.debug("contour %s sigmas=%.2f frames=%d shift=%d grid=%d", f, peak.sigmas, len(peak.compared), peak.shift, peak.grid)
        seg = _contour_segment(query, ref, peak, score) if score > 0 else None
        if seg is not None:
            out[f] = [seg]
    return out


# --- cohort-normalised contour check ------------------------------------------
#: A very short excerpt (up to COHORT_MAX_SECONDS) of music whose
#: accompaniment repeats (a loop, a riff) is often missed by the check above:
#: the landmark votes pile up at the repeats, and the true offset is never
#: proposed.  Searched at *every* offset, its contour does stand out of the
#: right reference -- but by about as much as some sounds stand out of
#: unrelated ones (one synthetic voice against another), because how high a
#: query's chance peaks reach depends on the query.  So each candidate not
#: yet certain is searched whole (its first COHORT_SEARCH_SECONDS), and so is
#: a fixed cohort of other files of the library (the first COHORT_FILES with
#: sound, in key order, the candidates left out): the query's peaks against
#: the cohort are its own chance level, and the candidate's peak counts by
#: how far it stands above them, (peak - mean) / std (T-norm, as in speaker
#: verification), and against the cohort joined by the other candidates
#: (COHORT_PEER_SIGMAS).  Tried on 5 s excerpts too (COHORT_MAX_SECONDS 6):
#: nothing gained, twice the time.
COHORT_MAX_SECONDS = 4.0
#: Cohort size: a smaller cohort's spread is too unstable (8-16 files: chance
#: peaks at up to 8.5 deviations, ad hoc).
COHORT_FILES = 32
#: Fewer cohort files with sound than this (a small library): not checked.
COHORT_MIN_FILES = 24
#: File records listed at most to find the cohort (libraries of mostly silent
#: video may have none within them: then not checked).
COHORT_SCAN = 256
#: Certainty ramps from COHORT_SIGMAS over COHORT_SIGMAS_SPAN more (0.5, a
#: duplicate at the default threshold, at 8).  Measured over ~2,100 checked
#: candidates that were not the query's reference (2 s excerpts of three
#: generated draws and game soundtracks): at most 8.3 (generated speech
#: against another file of the same synthetic voice, see COHORT_PEER_SIGMAS),
#: all others below 8; right references' median 9.9-11.1.
COHORT_SIGMAS = 7.0
COHORT_SIGMAS_SPAN = 2.0
#: Every file is searched over its first this many seconds at most, so the
#: candidate's peak and the cohort's are maxima over alike spans (the longer
#: the search, the higher chance reaches); longer candidates are not checked.
COHORT_SEARCH_SECONDS = 600.0
#: The cohort is the first files in key order, a mix of every kind of sound
#: in the library, while the references checked are the files the index
#: found most alike the query (generated speech stands 5-7 deviations out of
#: other speech of the same synthetic voice, music 4-6).  So a reference must
#: also stand out of a pool of the cohort *and* the other references checked
#: (an adaptive cohort, as AT-norm in speaker verification): its certainty is
#: the lesser of the two ramps, this one from COHORT_PEER_SIGMAS over
#: COHORT_SIGMAS_SPAN (0.5 at 6).  Measured over ~2,100 checked candidates
#: that were not the query's reference (2 s excerpts of three generated
#: draws and game soundtracks): those at 7.5 or more over the cohort alone
#: stood at most 5.3 over the pool (an unrelated speech excerpt at 8.3 among
#: them), bar one at 7.99 and 7.6 (below a duplicate either way); right
#: references at 8 or more over the cohort, at least 7.1 over the pool.
#: References that stand COHORT_PEER_MAX or more over the cohort alone are
#: left out of the pool (copies of the query's source, in a library of
#: re-uploads, would sink each other).
COHORT_PEER_SIGMAS = 5.0
COHORT_PEER_MAX = 7.0
#: A short query's landmark lines, in such a library, count only the events
#: past its best chance line against the same cohort (cohort_line_excess, at
#: every speed: a 2 s orchestral excerpt drew a 14-event line at 1.08x from an
#: unrelated orchestral track) -- but at most this many: chance lines reached
#: 4.3 past their start over ~340 short queries (a soundtrack and two
#: generated corpora), while a cohort holding copies of the query's own source
#: (a library of re-uploads, more of them than the audio candidates) would
#: raise it by a copy's 10-40 and reject the real ones.
COHORT_LINE_CAP = 6.0


def _whole_peak(grids: list[tuple[int, AudioTrack]], track: AudioTrack | None, max_frames: int) -> _Peak | None:
    """The query's best contour peak over every offset of ``track``'s first ``max_frames`` frames."""
    if track is None or len(track.contour) < CONTOUR_MIN_FRAMES:
        return None
    rbits, raudible = _dense_contour(track)
    rbits, raudible = rbits[:max_frames], raudible[:max_frames]
    if raudible.sum() < CONTOUR_MIN_FRAMES:
        return None

    shifts = np.arange(-max(int(t.contour_frames.max()) for _, t in grids), len(rbits))
    return _contour_peak(grids, rbits, raudible, lambda o: shifts)


def _chance_free(peak: _Peak) -> float:
    """A whole search's peak standout, less what the best of its offsets reaches by chance.

    The best of N roughly normal values sits near sqrt(2 ln N) deviations, so
    a 90 s file's peak stands ~0.3 deviations further out of its profile than
    a 30 s one's, as much as the cohort's own spread of such peaks is
    ~0.5-0.8: a long candidate judged against a cohort of shorter files got
    that much for free (the two excerpts of generated speech that reached
    8.0 and 8.95 against other speech of the same voice, 2,100-2,400 frames
    searched against a cohort's mean 1,750; docs/how-it-works.md, 4c).
    """
    return peak.sigmas - float(np.sqrt(2.0 * np.log(max(peak.searched, 2))))


@dataclass
class CohortCheck:
    """What the cohort check found (:func:`cohort_contour_check`)."""

    segments: dict[str, list[Segment]]  # one speed-1 segment per reference whose peak stands out
    pooled: dict[str, float]  # per reference searched whole: its certainty over the pool alone (COHORT_PEER_SIGMAS)


def cohort_contour_check(query: Fingerprint, refs: dict[str, Fingerprint], cohort: list[AudioTrack]) -> CohortCheck:
    """Each reference searched whole, its contour peak judged by how far it stands out of its impostors'.

    ``cohort``: the contours of other files of the library (see
    COHORT_FILES); with fewer than COHORT_MIN_FILES usable, nothing is found.
    Each reference is judged against the cohort, and against the cohort with
    the other references (see COHORT_PEER_SIGMAS).
    """
    out = CohortCheck({}, {})
    grids = _contour_grids(query)
    rate = float(query.params.get("audio_rate", 8000))
    max_frames = int(COHORT_SEARCH_SECONDS * rate / A.HOP)
    if not grids or not refs:
        return out
    chance = np.array([_chance_free(p) for p in (_whole_peak(grids, t, max_frames) for t in cohort) if p is not None])
    if len(chance) < COHORT_MIN_FILES:
        return out
    mean, spread = float(np.mean(chance)), max(float(np.std(chance)), 1e-3)
    peaks = {f: p for f, ref in refs.items() if ref.duration <= COHORT_SEARCH_SECONDS
             and (p := _whole_peak(grids, ref.audio, max_frames)) is not None}
    free = {f: _chance_free(p) for f, p in peaks.items()}
    normed = {f: (v - mean) / spread for f, v in free.items()}
    # the references that do not stand out of the cohort alone are impostors alike the query
    peers = {f: v for f, v in free.items() if normed[f] < COHORT_PEER_MAX}
    for f, peak in peaks.items():
        pool = np.concatenate([chance, [v for g, v in peers.items() if g != f]])
        pooled = (free[f] - float(np.mean(pool))) / max(float(np.std(pool)), 1e-3)
        log.debug("cohort contour %s sigmas=%.2f normed=%.2f pooled=%.2f (cohort %d, pool %d)",
                  f, peak.sigmas, normed[f], pooled, len(chance), len(pool))
        out.pooled[f] = _ramp(pooled, COHORT_PEER_SIGMAS, COHORT_SIGMAS_SPAN)
        score = min(_ramp(normed[f], COHORT_SIGMAS, COHORT_SIGMAS_SPAN), out.pooled[f])
        seg = _contour_segment(query, refs[f], peak, score) if score > 0 and peak.z >= CONTOUR_MIN_Z else None
        if seg is not None:
            out.segments[f] = [seg]
    return out


def cohort_contour_segments(query: Fingerprint, refs: dict[str, Fingerprint], cohort: list[AudioTrack]) -> dict[str, list[Segment]]:
    """One speed-1 audio segment per reference whose whole-search contour peak stands out of its impostors'."""
    return cohort_contour_check(query, refs, cohort).segments


def chance_rate(variant: np.ndarray, offset_bin: np.ndarray, n_variants: int, searched_seconds: float,
                query_duration: float) -> float:
    """Mean landmark hits per line cell (three offset bins of one variant) away from the pair's lines.

    The query can sit at any offset from before the reference's start to its
    end, so the cells are the searched seconds plus the query's, per variant.
    The CHANCE_TRIM share of cells with the most hits is left out: a copy's
    own line, and a reference that repeats itself (a chorus, a loop), pile
    hits onto a few cells, which says nothing about chance elsewhere.
    """
    cells = int(max(1.0, (searched_seconds + query_duration) / AUDIO_BIN)) * max(1, n_variants)
    if not len(variant):
        return 0.0
    o = np.asarray(offset_bin, np.int64)
    o = o - o.min()
    span = int(o.max()) + 1
    key = np.asarray(variant, np.int64) * span + o
    n_keys = (int(np.max(variant)) + 1) * span
    counts = np.bincount(key, minlength=n_keys) if _dense(n_keys, len(key)) else value_counts(key)[1]
    top = min(len(counts), int(np.ceil(CHANCE_TRIM * cells)))
    return 3.0 * (len(variant) - _top_sum(counts, top)) / cells


def _top_sum(counts: np.ndarray, k: int) -> int:
    """The sum of the ``k`` largest ``counts`` (non-negative integers), from a histogram of their values."""
    if k <= 0:
        return 0
    cells = np.bincount(counts)[::-1]  # cells holding each count, the highest count first
    before = np.concatenate([[0], np.cumsum(cells)[:-1]])
    taken = np.minimum(cells, np.maximum(0, k - before))
    return int((taken * np.arange(len(cells))[::-1]).sum())


def extend_over_silence(seg: Segment, ref_times: np.ndarray, query_duration: float, ref_duration: float) -> Segment:
    """``seg`` reaching across the query's ends where the reference, at the
    aligned times, pauses (has no peaks for AUDIO_PAUSE or up to the query's end).

    A pause of the original is copied with the rest, but nothing can match in
    it, so the evidence stops where the sound does: a 2 s excerpt starting in
    a pause would otherwise look like a 1.3 s copy.  Reference peaks within
    AUDIO_ONSET_SLACK of the segment's ends belong to the sound it matched.
    """
    ts, off = seg.speed, seg.offset
    lo_r, hi_r = max(0.0, off), min(ref_duration, ts * query_duration + off)  # the query's whole span, in reference time
    rs, re = seg.reference_start, seg.reference_end
    before = ref_times[(ref_times >= lo_r) & (ref_times < rs - AUDIO_ONSET_SLACK)]
    if not len(before):
        rs = min(rs, lo_r)
    elif rs - AUDIO_ONSET_SLACK - before.max() >= AUDIO_PAUSE:
        rs = min(rs, float(before.max()) + AUDIO_BIN / 2)
    after = ref_times[(ref_times > re + AUDIO_ONSET_SLACK) & (ref_times <= hi_r)]
    if not len(after):
        re = max(re, hi_r)
    elif after.min() - re - AUDIO_ONSET_SLACK >= AUDIO_PAUSE:
        re = max(re, float(after.min()))
    qs = min(seg.query_start, max(0.0, (rs - off) / ts)) if rs < seg.reference_start else seg.query_start
    qe = max(seg.query_end, min(query_duration, (re - off) / ts)) if re > seg.reference_end else seg.query_end
    return replace(seg, query_start=qs, query_end=qe, reference_start=rs, reference_end=re)


# --- fusion -----------------------------------------------------------------
def fuse(visual: list[Segment], audio: list[Segment]) -> list[Segment]:
    """Merge overlapping visual and audio segments on the same line."""
    out: list[Segment] = []
    used_a = set()
    for v in visual:
        merged = v
        for k, a in enumerate(audio):
            if k in used_a:
                continue
            ov = min(v.query_end, a.query_end) - max(v.query_start, a.query_start)
            if ov > 0.3 * min(v.duration, a.duration) and abs(v.offset - a.offset) < 1.5:
                used_a.add(k)
                merged = Segment(
                    min(merged.query_start, a.query_start),
                    max(merged.query_end, a.query_end),
                    min(merged.reference_start, a.reference_start),
                    max(merged.reference_end, a.reference_end),
                    1.0 - (1.0 - merged.score) * (1.0 - a.score),
                    "audiovisual",
                    merged.speed,
                    merged.flipped,
                )
        out.append(merged)
    out += [a for k, a in enumerate(audio) if k not in used_a]
    return sorted(out, key=lambda s: s.query_start)


def exclusive(segments: list[Segment]) -> list[Segment]:
    """Each stretch of the query copies one place: keep the best explanation.

    Segments are taken best first (score x duration); one mostly covered (in
    query time) by a better one is dropped -- e.g. a repeated chorus or loop
    that also lines up at another offset.
    """
    keep: list[Segment] = []
    for s in sorted(segments, key=lambda s: -s.score * s.duration):
        covered = _union_length([(max(s.query_start, k.query_start), min(s.query_end, k.query_end)) for k in keep if min(s.query_end, k.query_end) > max(s.query_start, k.query_start)])
        if covered <= 0.5 * s.duration:
            keep.append(s)
    return keep


def summarise(primary_key: str, segments: list[Segment], query_duration: float, ref_duration: float) -> Match:
    segs = sorted(exclusive(segments), key=lambda s: s.query_start)
    total = sum(s.duration for s in segs) or 1.0
    similarity = sum(s.score * s.duration for s in segs) / total
    qcov = _union_length([(s.query_start, s.query_end) for s in segs]) / query_duration if query_duration > 0 else 0.0
    rcov = _union_length([(s.reference_start, s.reference_end) for s in segs]) / ref_duration if ref_duration > 0 else 0.0
    mods = {s.modality for s in segs}
    modality = "audiovisual" if "audiovisual" in mods or mods == {"video", "audio"} else next(iter(mods))
    return Match(primary_key, float(min(1.0, similarity)), float(min(1.0, qcov)), float(min(1.0, rcov)), modality, segs)


# --- the matcher -------------------------------------------------------------
def query_views(fp: Fingerprint) -> list[Fingerprint]:
    """The pictures a query offers: the whole frame, and a picture-in-picture inset if seen."""
    views = [fp]
    if fp.inset is not None and len(fp.inset):
        views.append(replace(fp, visual=fp.inset, inset=None))
    return views


# --- candidates: the index proposes, the stored fingerprints decide ---------------
#: Distinct landmark keys a query looks up, at most.  A 60 s query has
#: 3,000-10,000 landmarks; a sample of keys (the same keys for every query,
#: chosen by a hash of the key) still gives a copy dozens of aligned hits,
#: and keeps the lookup to ~15 BatchGetItem requests and a few hundred
#: thousand postings in a 1,000-hour library.  Verification then uses every
#: landmark, from the candidate's stored fingerprint.
AUDIO_LOOKUP_KEYS = 1500
#: Visual band terms looked up, at most (frames are thinned evenly beyond it:
#: a 60 s query keeps 2.5 frames/s, both orientations).
VISUAL_LOOKUP_KEYS = 1200
#: Postings a lookup reads, at most, per kind: the store takes the rarest keys
#: first (mediadna.store.base.within_budget).  A 60 s query's keys hold
#: ~1,500 landmark and ~200 band postings per hour of library, so the budget
#: starts to bind at ~65 hours (audio) and ~500 hours (picture); at 1,000
#: hours the frequent keys -- low notes, short gaps, common band values --
#: hold most of the 1.7 M postings and are the weakest evidence, and the
#: rarest half of the keys still gives a copy dozens of aligned hits while
#: the vote stays a few milliseconds.
VISUAL_LOOKUP_POSTINGS = 100_000
AUDIO_LOOKUP_POSTINGS = 100_000
#: Only the unit-scale landmarks are looked up; their hits vote for a line at
#: each of these speeds (a tempo change keeps the short landmarks' hashes,
#: only their times drift), so a sped-up copy is a candidate too.  Every
#: speed in 0.90-1.10 is within 3.5 % of one of them: at most 2.1 s of drift
#: over a 60 s query, inside a line's +-1 bin.
CANDIDATE_SPEEDS = (0.93, 1.00, 1.07)
#: Offset bin of audio candidate votes (s).
CANDIDATE_BIN = 2.0
#: A query up to EVENT_VOTE_SECONDS long also votes in bins this fine, and
#: each bin size proposes its own best MAX_AUDIO_CANDIDATES.  Its drift from
#: a speed between the candidate speeds is at most 0.035 x 12 s = 0.42 s,
#: inside a fine line's +-1 bin.  A coarse line pooled over 6 s lets a short
#: query's events meet an unrelated song's shared chords somewhere in the
#: window (generated music: a 5 s excerpt's reference ranked as low as 37th),
#: while a passage repeating within a few seconds gives the right reference
#: near-miss votes only the coarse bin pools (orchestral recordings); see
#: docs/how-it-works.md, section 6, step 2.
SHORT_CANDIDATE_BIN = 0.5
#: An audio candidate needs this many votes on one line (+-1 bin) ...
MIN_AUDIO_VOTES = 5
#: A vote is one hit; for queries up to this long (s), one query event
#: (anchor track: mediadna.audio.peak_tracks) per line cell.  A held note
#: meets a reference that holds the same note at every pairing of their
#: frames: on orchestral recordings such pile-ups outvoted a 2 s excerpt's
#: own reference, which then went unverified.  A long query's copy has
#: hundreds of events on its line, and counting events there cost a
#: 1,000-hour query 20-40 ms (a wider sort over every hit at three speeds).
EVENT_VOTE_SECONDS = 12.0
#: ... beyond what chance gives that file: a file with n votes spread over
#: B offset bins expects mu = 3n/B per pooled line, and its best line must
#: reach mu + AUDIO_VOTE_SIGMAS * sqrt(mu) + MIN_AUDIO_VOTES (long files and
#: landmark-dense ones collect many chance votes; a copy's line stands out).
AUDIO_VOTE_SIGMAS = 3.0
#: When at least this many files have a line over the floor, their best
#: votes show the library's own chance level (a big library of similar
#: content -- one broadcaster's footage, one genre's music -- lines up by
#: chance far more than random hashes would) ...
CHANCE_MIN_FILES = 50
#: ... and a candidate must beat their median by this many (MAD-estimated)
#: standard deviations.  Smaller libraries verify every file over the floor.
CHANCE_SIGMAS = 6.0
#: At most this many files of each kind are verified per query (a short query:
#: this many per audio vote bin, see SHORT_CANDIDATE_BIN).
MAX_AUDIO_CANDIDATES = 8
#: References longer than this are verified only around the offsets that
#: voted (a window of the query's length at speeds 0.9-1.1, plus
#: WINDOW_PAD each side); shorter ones whole.
WHOLE_REFERENCE_SECONDS = 600.0
WINDOW_PAD = 10.0
#: Offsets per candidate that open a window (best first).
MAX_WINDOWS = 4


def _sample_keys(keys: np.ndarray, budget: int) -> np.ndarray:
    """At most ``budget`` of the distinct ``keys``: those with the lowest
    multiplicative hash, so every query samples the same part of key space."""
    keys = distinct(keys)
    if len(keys) <= budget:
        return keys
    mixed = (keys.astype(np.uint64) * np.uint64(0x9E3779B1)) & np.uint64(0xFFFFFFFF)
    return np.sort(keys[np.argpartition(mixed, budget - 1)[:budget]])


#: Key spaces up to this size are joined through a table per key value (20-bit
#: landmark hashes, 18-bit band terms), not a binary search per key.
EXPAND_DENSE_KEYS = 1 << 22
#: ... when the table (one entry per key value) is at most this many times
#: longer than the list of wanted terms; else a binary search per wanted term.
EXPAND_SEARCH_RATIO = 32


def _expand(wanted: np.ndarray, hits, order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Join: for query terms ``wanted`` (any order, repeats allowed), every
    posting of the same key: (index into wanted, index into hits).
    ``order`` is ``np.argsort(hits.keys, kind="stable")`` when the caller has it."""
    if not len(hits) or not len(wanted):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if order is None:
        order = np.argsort(hits.keys, kind="stable")
    sk = hits.keys[order]
    top = int(sk[-1]) + 1
    # landmark hashes and band terms: a table per key value, unless a binary
    # search per wanted term is cheaper (a few thousand terms, as in stage 1)
    if top <= EXPAND_DENSE_KEYS and top <= EXPAND_SEARCH_RATIO * len(wanted):
        per_key = np.bincount(sk, minlength=top)
        first = np.concatenate([[0], np.cumsum(per_key)])
        w = np.minimum(wanted, top).astype(np.int64)  # keys beyond the largest hit: none
        lo = first[w]
        cnt = np.where(wanted < top, first[np.minimum(w + 1, top)] - lo, 0)
    else:
        lo = np.searchsorted(sk, wanted, "left")
        cnt = np.searchsorted(sk, wanted, "right") - lo
    total = int(cnt.sum())
    if not total:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    q = np.repeat(np.arange(len(wanted)), cnt)
    pos = np.repeat(lo - (np.cumsum(cnt) - cnt), cnt) + np.arange(total)
    return q, order[pos]


def _narrow(values: np.ndarray, bound: int) -> np.ndarray:
    """Non-negative ``values`` (all below ``bound``) as 32-bit when they fit: NumPy sorts those ~3x faster."""
    if bound < 2**31:
        return values.astype(np.int32)
    return values.astype(np.uint32) if bound < 2**32 else values


class _Lines:
    """Votes of hits for (file code, offset cell) lines, pooled over cell +- 1.

    ``unit`` (same length as ``code``) makes repeated (code, cell, unit)
    entries vote once.  Vectorised (one sort): a 60 s query against a
    1,000-hour library brings hundreds of thousands of hits.
    """

    def __init__(self, code: np.ndarray, cell: np.ndarray, unit: np.ndarray | None = None):
        self.origin = int(cell.min()) - 1
        cell = cell - self.origin
        self.span = span = int(cell.max()) + 2  # cells 1 .. span - 2: a line's neighbours never cross files
        key = code.astype(np.int64) * span + cell
        if unit is not None:
            u = int(unit.max()) + 1
            key = (distinct(_narrow(key * u + unit, (int(code.max()) + 1) * span * u)) // u).astype(np.int64)
        else:
            key = np.sort(_narrow(key, (int(code.max()) + 1) * span))
        self.keys, counts = runs(key)
        self.counts = counts
        self.pooled = counts.copy()
        adjacent = self.keys[1:] == self.keys[:-1] + 1
        self.pooled[1:] += np.where(adjacent, counts[:-1], 0)
        self.pooled[:-1] += np.where(adjacent, counts[1:], 0)

    def best(self) -> tuple[np.ndarray, np.ndarray]:
        """(codes, each code's best pooled votes)."""
        codes = self.keys // self.span
        if not len(codes):
            return codes, self.pooled
        starts = np.r_[0, np.flatnonzero(np.diff(codes)) + 1]
        return codes[starts], np.maximum.reduceat(self.pooled, starts)

    def offsets(self, code: int, floor: float) -> list[tuple[int, int]]:
        """[(votes, cell)] of one code's lines with votes >= floor, best first, 3+ cells apart (at most MAX_WINDOWS)."""
        lo, hi = np.searchsorted(self.keys, [code * self.span, (code + 1) * self.span])
        votes, cells = self.pooled[lo:hi], self.keys[lo:hi] % self.span + self.origin
        out: list[tuple[int, int]] = []
        for k in np.lexsort((cells, -votes)):
            if votes[k] < floor or len(out) >= MAX_WINDOWS:
                break
            if all(abs(int(cells[k]) - c) > 2 for _, c in out):
                out.append((int(votes[k]), int(cells[k])))
        return out


def _chance_cut(scores: np.ndarray) -> float:
    """The score a candidate must reach, given every file's best score (see CHANCE_MIN_FILES)."""
    if len(scores) < CHANCE_MIN_FILES:
        return -np.inf
    med = float(np.median(scores))
    sigma = 1.4826 * float(np.median(np.abs(scores - med)))
    return med + CHANCE_SIGMAS * max(sigma, 1.0)


@dataclass
class Lookups:
    """What stage 1 read: (query terms, query times, vote units, hits) for
    the picture and (landmark keys, query times, anchor events or None (see
    EVENT_VOTE_SECONDS), hits) for the sound; None
    when the query has no such track."""

    visual: tuple | None
    audio: tuple | None


class Candidates:
    """Files worth verifying, with the reference-time offsets that voted for them."""

    def __init__(self) -> None:
        self.visual: dict[str, list[float]] = {}  # file -> offsets (s)
        self.audio: dict[str, list[float]] = {}
        self.audio_speeds: dict[str, list[float]] = {}  # file -> CANDIDATE_SPEEDS whose lines voted

    def files(self) -> list[str]:
        return list(dict.fromkeys([*self.visual, *self.audio]))

    def offsets(self, f: str) -> list[float]:
        return self.visual.get(f, []) + self.audio.get(f, [])


def _window(ref: Fingerprint, offsets: list[float], query_duration: float) -> list[tuple[float, float]] | None:
    """Reference-time windows to verify (None: the whole reference)."""
    if not offsets or ref.duration <= WHOLE_REFERENCE_SECONDS:
        return None
    pad = WINDOW_PAD + 0.1 * query_duration
    spans = sorted((o - pad, o + 1.1 * query_duration + pad) for o in offsets)
    merged: list[list[float]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    if sum(b - a for a, b in merged) >= ref.duration:
        return None
    return [(a, b) for a, b in merged]


def _in_windows(t: np.ndarray, windows: list[tuple[float, float]] | None) -> np.ndarray:
    if windows is None:
        return np.ones(len(t), bool)
    m = np.zeros(len(t), bool)
    for a, b in windows:
        m |= (t >= a) & (t < b)
    return m


def reference_landmarks(ref: Fingerprint, windows: list[tuple[float, float]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(landmark hashes, anchor times s) of a stored reference: exactly its
    index postings (mediadna.index.fingerprint2postings) when ``windows`` is
    None, else those of its peaks inside the windows."""
    if ref.audio is None or not len(ref.audio):
        return np.zeros(0, np.uint32), np.zeros(0, np.float32)
    if windows is None:
        p = I.fingerprint2postings(replace(ref, visual=None))
        return p.audio_keys, p.audio_times
    rate = float(ref.params.get("audio_rate", 8000))
    keep = _in_windows(ref.audio.frames * (A.HOP / rate), windows)
    frames, bins = ref.audio.frames[keep], ref.audio.bins[keep]
    span = sum(b - a for a, b in windows)
    h, f = A.peaks2landmarks(frames, bins)
    h, f = A.drop_repeated(h, f, span)
    return h, (f * A.HOP / rate).astype(np.float32)


#: The sound of a file is verified at the tempo/pitch scales near the speeds
#: that proposed it: within this of a candidate line's speed (a line
#: collects copies up to half the CANDIDATE_SPEEDS spacing, 0.035, away;
#: plus half a tempo step) ...
AUDIO_LINE_SLACK = 0.045
#: A file whose picture aligned is heard within this of the speeds its
#: picture aligned at instead (the sound of a copy runs at its picture's
#: speed, which the picture fits to ~0.01; a strong copy's sound votes on
#: every candidate line, so the lines alone would not narrow it).
VISUAL_SPEED_SLACK = 0.025


def verify_speeds(cands: Candidates, v_segs: dict[str, list[Segment]], files) -> list[float]:
    """Time scales (of SPEEDS) to verify the sound of ``files`` at."""
    near: set[float] = set()
    for f in files:
        if v_segs.get(f):
            centres, slack = [seg.speed for seg in v_segs[f]], VISUAL_SPEED_SLACK
        else:
            centres, slack = cands.audio_speeds.get(f, list(CANDIDATE_SPEEDS)), AUDIO_LINE_SLACK
        for c in centres:
            near.update(float(x) for x in SPEEDS if abs(x - c) <= slack + 1e-9)
    return sorted(near)


def _audio_votes(hits, qi: np.ndarray, hi: np.ndarray, qt: np.ndarray, events: np.ndarray | None,
                 query_duration: float, bin_s: float) -> list[tuple[str, list[float], list[float]]]:
    """Stage 1's audio candidates at one offset bin: [(file, offsets (s), candidate speeds)],
    best first, at most MAX_AUDIO_CANDIDATES.  ``qi``, ``hi``: the join of the
    query's landmarks (times ``qt``, anchor ``events`` or None) with ``hits``."""
    rt = hits.times[hi].astype(np.float64)
    q = qt[qi]
    fc = hits.codes[hi]
    ns = len(CANDIDATE_SPEEDS)
    code = (fc[None, :] * ns + np.arange(ns)[:, None]).ravel()
    cell = np.floor((rt[None, :] - np.asarray(CANDIDATE_SPEEDS)[:, None] * q[None, :]) / bin_s).astype(np.int64).ravel()
    lines = _Lines(code, cell, None if events is None else np.tile(events[qi], ns))
    # each file's chance level: its votes over the offset bins they could fall in
    rmax = np.zeros(len(hits.names))
    np.maximum.at(rmax, fc, rt)
    bins = (rmax + 1.1 * query_duration) / bin_s + 1.0
    n = np.bincount(lines.keys // lines.span // ns, weights=lines.counts, minlength=len(hits.names)) / ns
    mu = 3.0 * n / bins
    need = mu + AUDIO_VOTE_SIGMAS * np.sqrt(mu) + MIN_AUDIO_VOTES
    codes, best = lines.best()
    files = codes // ns
    file_best = np.full(len(hits.names), -np.inf)
    np.maximum.at(file_best, files, best.astype(np.float64))
    excess = file_best - need
    cand = np.flatnonzero(excess >= 0)
    cand = cand[excess[cand] >= _chance_cut(excess[cand])]
    ranked = sorted(zip(-excess[cand], (hits.names[c] for c in cand), cand))
    out = []
    for _, name, c in ranked[:MAX_AUDIO_CANDIDATES]:
        per_speed = [lines.offsets(int(c) * ns + si, need[c]) for si in range(ns)]
        lst = sorted((x for found in per_speed for x in found), key=lambda x: -x[0])
        out.append((name, [cell * bin_s for _, cell in lst[:MAX_WINDOWS]],
                    [CANDIDATE_SPEEDS[si] for si, found in enumerate(per_speed) if found]))
    return out


class Matcher:
    """Finds every library file a query fingerprint copies from.

    Two stages: the inverted index proposes candidates from a bounded sample
    of the query's terms (so a query costs the same few dozen lookups however
    large the library); each candidate's stored fingerprint is then aligned
    with the whole query, around the offsets that voted for it: every frame,
    then every landmark at the tempo/pitch scales near the speed the picture
    aligned at or the candidate lines voted for (:func:`verify_speeds`).
    """

    def __init__(self, store: LibraryStore):
        self.store = store

    # -- stage 1: candidates -----------------------------------------------------
    def visual_terms(self, fp: Fingerprint) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(terms, query times, vote units) to look up: every view and orientation,
        frames thinned evenly to stay within VISUAL_LOOKUP_KEYS."""
        groups = []
        for view in query_views(fp):
            if not view.has_visual:
                continue
            v = view.visual
            inf = v.informative
            for hashes in (v.hashes[inf], v.flipped[inf]):
                groups.append((I.hashes2terms(hashes), v.times[inf].astype(np.float64)))
        if not groups:
            return np.zeros(0, np.uint32), np.zeros(0), np.zeros(0, np.int64)
        n_terms = len(distinct(np.concatenate([g[0].ravel() for g in groups])))
        stride = max(1, int(np.ceil(n_terms / VISUAL_LOOKUP_KEYS)))
        terms, times, units = [], [], []
        first = 0
        for t, tt in groups:
            t, tt = t[::stride], tt[::stride]
            terms.append(t.ravel())
            times.append(np.repeat(tt, t.shape[1]))
            # a vote unit: one (view/orientation, query frame), numbered densely
            units.append(np.repeat(first + np.arange(len(tt)), t.shape[1]))
            first += len(tt)
        return np.concatenate(terms), np.concatenate(times), np.concatenate(units)

    def lookups(self, library: str, fp: Fingerprint) -> "Lookups":
        """Stage 1's index reads: one visual and one audio lookup (of the speed-1 landmarks), each within its budget."""
        terms, qtimes, units = self.visual_terms(fp)
        visual = None
        if len(terms):
            visual = (terms, qtimes, units, self.store.lookup_visual(library, distinct(terms), max_postings=VISUAL_LOOKUP_POSTINGS))
        audio = None
        unit = I.audio_query_variants(fp, unit_only=True)
        if unit:
            h = np.concatenate([v[2] for v in unit])
            qt = np.concatenate([v[3] for v in unit])
            keys = _sample_keys(h, AUDIO_LOOKUP_KEYS)
            sel = np.isin(h, keys)
            events = None
            if fp.duration <= EVENT_VOTE_SECONDS:
                tracks = np.concatenate([v[4] for v in unit])[sel]
                events = np.searchsorted(distinct(tracks), tracks)  # anchor tracks, numbered densely
            audio = (h[sel], qt[sel], events, self.store.lookup_audio(library, keys, max_postings=AUDIO_LOOKUP_POSTINGS))
        return Lookups(visual, audio)

    def candidates(self, library: str, fp: Fingerprint, looked: "Lookups | None" = None) -> Candidates:
        """Files worth verifying, from the index (``looked``: :meth:`lookups` already made)."""
        looked = looked if looked is not None else self.lookups(library, fp)
        out = Candidates()
        if looked.visual is not None:
            terms, qtimes, units, hits = looked.visual
            qi, hi = _expand(terms, hits)
            if len(qi):
                off = hits.times[hi].astype(np.float64) - qtimes[qi]
                lines = _Lines(hits.codes[hi], np.floor(off / VOTE_BIN).astype(np.int64), units[qi])
                codes, best = lines.best()
                ok = best >= MIN_VISUAL_VOTES
                codes, best = codes[ok], best[ok]
                ok = best >= _chance_cut(best.astype(np.float64))
                ranked = sorted(zip(-best[ok], (hits.names[c] for c in codes[ok]), codes[ok]))
                for _, name, c in ranked[:MAX_CANDIDATES]:
                    out.visual[name] = [cell * VOTE_BIN for _, cell in lines.offsets(int(c), MIN_VISUAL_VOTES)]
        if looked.audio is not None:
            h, qt, events, hits = looked.audio
            qi, hi = _expand(h, hits)
            if len(qi):
                bins = (CANDIDATE_BIN, SHORT_CANDIDATE_BIN) if fp.duration <= EVENT_VOTE_SECONDS else (CANDIDATE_BIN,)
                for bin_s in bins:
                    for name, offsets, speeds in _audio_votes(hits, qi, hi, qt, events, fp.duration, bin_s):
                        # a file both bins propose keeps the coarse bin's offsets: more windows
                        # searched let a reference's repeats widen the contour check's profile
                        if name not in out.audio:
                            out.audio[name], out.audio_speeds[name] = offsets, speeds
        return out

    # -- stage 2: verification -------------------------------------------------------
    def audio_hits(self, refs: dict[str, Fingerprint], windows: dict, variants: list) -> dict:
        """Landmark hits of the query's every variant against each reference's own landmarks."""
        names = list(refs)
        parts = [reference_landmarks(refs[f], windows.get(f)) for f in names]
        if not variants or not parts:
            return {}
        ref_hits = Hits(
            np.concatenate([p[0] for p in parts]).astype(np.uint32),
            np.concatenate([np.full(len(p[0]), k, np.int64) for k, p in enumerate(parts)]),
            np.concatenate([p[1] for p in parts]).astype(np.float32),
            np.array(names, dtype=object),
        )
        # every variant's landmarks at once, in variant order
        h = np.concatenate([v[2] for v in variants])
        q_idx, p_all = _expand(h, ref_hits)
        if not len(q_idx):
            return {}
        sizes = [len(v[2]) for v in variants]
        v_all = np.repeat(np.arange(len(variants)), sizes)[q_idx]
        q_all = np.concatenate([v[3] for v in variants])[q_idx]
        a_all = np.concatenate([v[4] for v in variants])[q_idx]
        t_all = np.concatenate([v[5] for v in variants])[q_idx]
        code = ref_hits.codes[p_all]
        order = np.argsort(code, kind="stable")  # by file, variants in order within each
        bounds = np.r_[0, np.cumsum(np.bincount(code, minlength=len(names)))]
        merged = {}
        for k, f in enumerate(names):
            sel = order[bounds[k] : bounds[k + 1]]
            if len(sel) >= MIN_AUDIO_MATCHES:
                merged[f] = (v_all[sel], q_all[sel], ref_hits.times[p_all[sel]].astype(np.float64), a_all[sel], t_all[sel])
        return merged

    def cohort(self, library: str, skip: set[str]) -> list[Fingerprint]:
        """A short query's cohort: the first COHORT_FILES files with sound in key order, but those
        in ``skip`` (the candidates).  Pages of the file list (COHORT_SCAN records at most), then
        one batched read; fewer than COHORT_MIN_FILES found: none."""
        keys: list[str] = []
        cursor, scanned = None, 0
        while len(keys) < COHORT_FILES and scanned < COHORT_SCAN:
            page = self.store.list_files(library, limit=min(COHORT_FILES + len(skip), COHORT_SCAN - scanned), cursor=cursor)
            scanned += len(page.items)
            keys += [r.primary_key for r in page.items if r.has_audio and r.primary_key not in skip]
            cursor = page.next_cursor
            if cursor is None:
                break
        keys = keys[:COHORT_FILES]
        if len(keys) < COHORT_MIN_FILES:
            return []
        loaded = self.store.load_fingerprints(library, keys)
        return [loaded[k] for k in keys if k in loaded and loaded[k].audio is not None]

    def cohort_excess(self, fp: Fingerprint, cohort: list[Fingerprint]) -> float:
        """:func:`cohort_line_excess` of ``fp`` against ``cohort``, every file whole, at every speed."""
        if not cohort:
            return 0.0
        refs = {str(k): c for k, c in enumerate(cohort)}
        variants = I.audio_query_variants(fp)
        durations = {k: float(c.duration) for k, c in refs.items()}
        return cohort_line_excess(self.audio_hits(refs, {}, variants), variants, fp.duration, durations)

    def match(self, library: str, fp: Fingerprint, exclude: set[str] | None = None) -> list[Match]:
        exclude = exclude or set()
        cands = self.candidates(library, fp, self.lookups(library, fp))
        files = [f for f in cands.files() if f not in exclude]
        if not files:
            return []
        refs = self.store.load_fingerprints(library, files)
        windows = {f: _window(refs[f], cands.offsets(f), fp.duration) for f in refs}
        ref_durations = {f: float(r.duration) for f, r in refs.items()}
        v_segs: dict[str, list[Segment]] = {}
        for f in refs:
            if f in cands.visual:
                ref = refs[f]
                if windows[f] is not None and ref.visual is not None:
                    ref = replace(ref, visual=ref.visual.select(_in_windows(ref.visual.times, windows[f])))
                v_segs[f] = [seg for view in query_views(fp) for seg in align_visual(view, ref)]
        # The sound is verified for the files the sound proposed, and for those
        # whose picture aligned (to fuse the two); a file only the picture
        # proposed, whose picture does not align, is a chance candidate.
        heard = {f: r for f, r in refs.items() if f in cands.audio or v_segs.get(f)}
        a_segs: dict[str, list[Segment]] = {}
        short = fp.audio is not None and 0 < fp.duration <= COHORT_MAX_SECONDS
        cohort: list[Fingerprint] | None = None
        if heard and fp.audio is not None and len(fp.audio):
            variants = I.audio_query_variants(fp, speeds=verify_speeds(cands, v_segs, heard))
            searched = {f: sum(b - a for a, b in windows[f]) if windows[f] else ref_durations[f] for f in heard}
            lines = hits2lines(self.audio_hits(heard, windows, variants), variants, fp.duration, ref_durations, searched)
            a_segs = lines2segments(lines, fp.duration, ref_durations)
            if short and any(seg.score > 0 for segs in a_segs.values() for seg in segs):
                # a short query's landmark lines count past its best chance line against the cohort
                cohort = self.cohort(library, skip=set(refs) | exclude)
                excess = min(self.cohort_excess(fp, cohort), COHORT_LINE_CAP)
                if excess > 0:
                    a_segs = lines2segments(lines, fp.duration, ref_durations, chance_excess=excess)
        at_offsets: dict[str, list[Segment]] = {}  # the contour check's (4b), joined to a_segs below
        if heard and fp.audio is not None and 0 < fp.duration <= A.SHIFT_MAX_SECONDS:
            proposed = {f: cands.offsets(f) + [s.reference_start - s.query_start for s in a_segs.get(f, [])
                                               if abs(s.speed - 1.0) <= UNIT_SPEED_TOL] for f in heard}
            at_offsets = contour_segments(fp, heard, proposed)
        if heard and short:
            def best(f: str) -> float:
                return max((s.score for s in a_segs.get(f, []) + at_offsets.get(f, [])), default=0.0)

            unsure = {f: r for f, r in heard.items() if best(f) < 1.0}
            if unsure:
                if cohort is None:
                    cohort = self.cohort(library, skip=set(refs) | exclude)
                check = cohort_contour_check(fp, unsure, [c.audio for c in cohort])
                # a contour peak at a proposed offset counts no more than the
                # file's whole search stands out of the pool (COHORT_PEER_SIGMAS)
                for f, cap in check.pooled.items():
                    if f in at_offsets:
                        at_offsets[f] = [replace(s, score=min(s.score, cap)) for s in at_offsets[f]]
                for f, segs in check.segments.items():
                    if segs[0].score > best(f):
                        a_segs[f], at_offsets[f] = segs, []
        for f, segs in at_offsets.items():
            a_segs.setdefault(f, []).extend(segs)
        for f, segs in a_segs.items():
            if any(seg.score > 0 for seg in segs):
                ref = refs[f]
                ref_times = ref.audio.frames * (A.HOP / float(ref.params.get("audio_rate", 8000))) if ref.audio is not None else np.zeros(0)
                a_segs[f] = [extend_over_silence(seg, ref_times, fp.duration, ref_durations[f]) for seg in segs]
        matches = []
        for f in refs:
            segs = fuse(v_segs.get(f, []), a_segs.get(f, []))
            if any(s.score > 0 for s in segs):  # a file whose every segment scored 0 is chance, not a match
                matches.append(summarise(f, segs, fp.duration, ref_durations[f]))
        return sorted(matches, key=lambda m: (-m.similarity, -m.query_coverage, m.primary_key))
