"""Visual fingerprint: content box, 64-bit DCT frame hashes, flat and dim flags.

Per sampled frame we keep a 64-bit perceptual hash of the *content box*
(the picture with letterbox, pillarbox, borders and blurred 9:16 fill cut
away), the hash of its mirror image (flip-robust matching costs nothing:
mirroring only negates odd horizontal DCT frequencies), and a flag for flat
frames (black, fades, solid colour), which never count as evidence alone,
and one for dim frames (night footage), which count only in long segments.
"""

from __future__ import annotations

import math

from typing import Iterable

import cv2
import numpy as np

from .fingerprint import FLAG_DIM, FLAG_FLAT, VisualTrack

#: Side of the raster the DCT is taken on (pHash's classic 32).
HASH_INPUT = 32
#: Frames whose hash raster (the 32x32 content box) has a standard deviation
#: below this (grey levels) are flat: black, fades, solid colour, a faint
#: gradient.  Their hash is decided by noise and coding and matches anything
#: flat.  Those measure 0-3 (footage faded to 4 % 1.4, a 10-level
#: gradient 2.9); night footage's lit frames 4-7.
FLAT_STD = 4.0
#: Frames below this (and not flat) are dim: night footage, a dark sky over
#: darker ground with a few lights.  Their structure is real, so they are
#: hashed and indexed (a night scene whose sound was swapped is found by its
#: picture), but unrelated night scenes share 1-3 s of look-alike frames, so
#: dim evidence only counts in long segments (match.DIM_SEGMENT_SECONDS).
DIM_STD = 7.0
#: Centred crops of the content box hashed beside the frame itself (sides
#: scaled by these factors).  A cropped copy keeps 80-95 % of each side, off
#: centre: against the whole frame real footage's crops sit at a median 16
#: bits (a quarter of them no closer than unrelated frames), against the
#: nearest of these views at 10 (README, "Real footage").
ZOOM_VIEWS = (0.9, 0.8)
#: Frames per content-box estimate (~8 s at 5 fps): bars are static, content
#: moves, so a few seconds of frames separate them far better than one frame.
BOX_CHUNK = 40
#: A row/column is a bar, border or solid fill when, along most of it, pixels
#: neither change over time (std, grey levels) nor carry detail (gradient).
DEAD_TSTD = 2.0
DEAD_DETAIL = 1.0
#: Blurred fill (9:16 re-uploads) is found as the symmetric split of the
#: detail profile with the most between-class variance, accepted only when
#: the fill is far flatter than the picture: its mean detail at most this
#: fraction of the picture's median ...
FILL_DETAIL_RATIO = 0.3
#: ... and even its busier rows (75th percentile: captions) at most this.
FILL_BUSY_RATIO = 0.5
#: ... and at least one of its two boundaries must be a straight edge across
#: the frame that persists over the chunk (a pasted picture has one; smooth
#: regions of real footage do not): this strong, and this many times the
#: typical row's edge strength.
FILL_EDGE_MIN = 3.0
FILL_EDGE_RATIO = 3.0
#: A fill surrounds a picture of a common shape: the split is accepted only
#: when the picture inside has one of these aspect ratios (within
#: FILL_ASPECT_TOL of the side), given the frame's own aspect ratio.  Real
#: footage with a smooth sky and ground almost never splits like that.
COMMON_ASPECTS = (16 / 9, 4 / 3, 1.0, 21 / 9, 1.85, 2.39, 3 / 2, 5 / 4, 9 / 16, 3 / 4, 4 / 5, 2.0)
FILL_ASPECT_TOL = 0.035
#: Allowed asymmetry of the two edges (fraction of the side).
FILL_SYMMETRY = 0.05
#: Bar boundaries snap to the strongest persistent edge within this many rows
#: (encoders smear bars into the first macroblock of the picture).
SNAP_ROWS = 8
#: The content box keeps at least this fraction of each side.
BOX_MIN_FRACTION = 0.25


def _dct_matrix(n: int, k: int) -> np.ndarray:
    x = np.arange(n)
    u = np.arange(k)[:, None]
    m = np.cos(np.pi * (2 * x[None, :] + 1) * u / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m.astype(np.float32)


_LOW = 9
_D = _dct_matrix(HASH_INPUT, _LOW)
# The 64 lowest-frequency coefficients of the 9x9 block, DC excluded, in
# zig-zag-like order (by u+v, then u).
_COEFS = sorted(((u, v) for u in range(_LOW) for v in range(_LOW) if (u, v) != (0, 0)), key=lambda c: (c[0] + c[1], c[0]))[:64]
_CU = np.array([c[0] for c in _COEFS])  # vertical frequency
_CV = np.array([c[1] for c in _COEFS])  # horizontal frequency
_FLIP_SIGN = np.where(_CV % 2 == 1, -1.0, 1.0).astype(np.float32)
_WEIGHTS = (np.uint64(1) << np.arange(63, -1, -1, dtype=np.uint64)).astype(np.uint64)


def _bits2hash(bits: np.ndarray) -> np.ndarray:
    """(N, 64) booleans -> (N,) uint64, first bit most significant."""
    packed = np.ascontiguousarray(np.packbits(bits.astype(np.uint8), axis=1))  # (N, 8) big-endian bytes
    return packed.view(">u8").reshape(-1).astype(np.uint64)


def rasters2hashes(rasters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 32, 32) float32 rasters -> (hashes, mirrored hashes), uint64 each."""
    if len(rasters) == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    low = np.einsum("ux,nxy,vy->nuv", _D, rasters, _D, optimize=True)
    coefs = low[:, _CU, _CV]  # (N, 64)
    med = np.median(coefs, axis=1, keepdims=True)
    flipped = coefs * _FLIP_SIGN
    fmed = np.median(flipped, axis=1, keepdims=True)
    return _bits2hash(coefs > med), _bits2hash(flipped > fmed)


def hamming(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """Bitwise Hamming distance between uint64 hashes (broadcasts)."""
    return np.bitwise_count(np.bitwise_xor(np.asarray(a, np.uint64), np.asarray(b, np.uint64)))


def _leading(flags: np.ndarray) -> int:
    """How many of ``flags`` are True before the first False."""
    return len(flags) if flags.all() else int(np.argmin(flags))


def _trim_dead(dead: np.ndarray) -> tuple[int, int]:
    n = len(dead)
    a, b = _leading(dead), n - _leading(dead[::-1])
    if b - a < BOX_MIN_FRACTION * n:
        return 0, n
    return a, b


def _fill_ok(profile: np.ndarray, a: int, b: int) -> bool:
    """Is everything outside [a, b) a fill far flatter than the picture inside?"""
    n = len(profile)
    if b - a < BOX_MIN_FRACTION * n or a <= 0 or b >= n:
        return False
    inner, outer = profile[a:b], np.r_[profile[:a], profile[b:]]
    med_in = float(np.median(inner))
    if med_in <= 0 or float(outer.mean()) > FILL_DETAIL_RATIO * med_in:
        return False
    return float(np.percentile(outer, 75)) <= FILL_BUSY_RATIO * med_in


def _aspect_ok(fraction: float, expected: list[float] | None) -> bool:
    if expected is None:
        return True
    return any(abs(fraction - e) <= FILL_ASPECT_TOL for e in expected)


def _fill_split(
    profile: np.ndarray, edge: np.ndarray, prior: tuple[int, int] | None = None, expected: list[float] | None = None
) -> tuple[int, int] | None:
    """Symmetric (a, b) with a flat fill outside and the picture inside.

    ``prior``: the split found in the previous chunk; boxes rarely change
    within a video, so it is kept whenever the fill test still holds.
    """
    n = len(profile)
    if n < 16:
        return None
    if prior is not None and prior[1] <= n and _fill_ok(profile, *prior):
        return prior
    tol = max(1, int(round(FILL_SYMMETRY * n)))
    total = float(profile.sum())
    cs = np.r_[0.0, np.cumsum(profile)]
    # every (a, b): a in [5 %, 42 %) of the side, b within tol of a's mirror
    a = np.arange(int(0.05 * n), int(0.42 * n))[:, None]
    b = (n - a) + np.arange(-tol, tol + 1)[None, :]
    valid = (b >= a + 1) & (b <= n)
    bc = np.clip(b, 0, n)
    n_in = (bc - a).astype(np.float64)
    n_out = n - n_in
    s_in = cs[bc] - cs[a]
    with np.errstate(divide="ignore", invalid="ignore"):
        score = n_in * n_out * (s_in / n_in - (total - s_in) / n_out) ** 2
    score = np.where(valid & (n_out > 0), score, -np.inf)
    best = None
    if score.size and np.isfinite(score).any():
        k = int(np.argmax(score))  # first maximum, as a loop over a then b would find
        i, j = divmod(k, score.shape[1])
        best = (float(score[i, j]), int(a[i, 0]), int(b[i, j]))
    if best is None:
        return None
    _, a, b = best
    if not _fill_ok(profile, a, b) or not _aspect_ok((b - a) / n, expected):
        return None
    strongest = max(float(edge[max(0, a - 3) : a + 3].max()), float(edge[max(0, b - 3) : b + 3].max()))
    if strongest < max(FILL_EDGE_MIN, FILL_EDGE_RATIO * float(np.median(edge))):
        return None
    return a, b


def _snap(a: int, b: int, edge: np.ndarray, n: int) -> tuple[int, int]:
    """Move trimmed boundaries onto the strongest persistent edge nearby."""
    if a > 0:
        lo, hi = max(0, a - 2), min(n, a + SNAP_ROWS)
        a = lo + int(np.argmax(edge[lo:hi])) + 1
    if b < n:
        lo, hi = max(0, b - SNAP_ROWS), min(n, b + 2)
        b = lo + int(np.argmax(edge[lo:hi]))
    return a, b


def _snap_fill(a: int, b: int, edge: np.ndarray, expected: list[float] | None, reach: int = 2) -> tuple[int, int]:
    """Put a fill's boundaries on the pasted picture's edges.

    Fills centre the picture, and its size follows from a common aspect ratio,
    so the candidates are few: each expected size near the detected one,
    centred (+-``reach``); the one whose two boundaries carry the most
    persistent edge wins.
    """
    n = len(edge)
    detected = (b - a) / n
    sizes = sorted({int(round(e * n)) for e in (expected or []) if abs(e - detected) <= 0.05} | {b - a})
    best = (-1.0, a, b)
    for size in sizes:
        centre = (n - size) // 2
        for a2 in range(max(1, centre - reach), min(n - size - 1, centre + reach) + 1):
            b2 = a2 + size
            score = float(edge[a2]) + float(edge[b2 - 1])
            if score > best[0]:
                best = (score, a2, b2)
    return best[1], best[2]


#: A still's bar is a run of rows (columns) of one solid colour: each within
#: this std (grey levels) and within STILL_BAR_DRIFT of the outermost one.
STILL_BAR_STD = 2.0
STILL_BAR_DRIFT = 3.0


def _solid_run(lines: np.ndarray) -> tuple[int, float]:
    """(how many of ``lines`` (first = outermost) are one solid colour, that colour)."""
    std, mean = lines.std(axis=1), lines.mean(axis=1)
    ok = (std <= STILL_BAR_STD) & (np.abs(mean - mean[0]) <= STILL_BAR_DRIFT)
    return _leading(ok), float(mean[0])


def _bar_pair(lines: np.ndarray) -> tuple[int, int]:
    """[a, b) between a centred pair of same-colour solid bars, else the whole side."""
    n = len(lines)
    (a, ca), (nb, cb) = _solid_run(lines), _solid_run(lines[::-1])
    b = n - nb
    if a == 0 or nb == 0 or abs(ca - cb) > STILL_BAR_DRIFT or abs(a - nb) > max(2, FILL_SYMMETRY * n) or b - a < BOX_MIN_FRACTION * n:
        return 0, n
    return a, b


def _still_box(frame: np.ndarray) -> tuple[int, int, int, int]:
    """Content box of a single still (no earlier chunk): a centred pair of solid bars only.

    With one frame nothing moves, so neither a blurred fill nor a plain band
    of sky or floor at one edge can be told from a bar; a guessed box that
    differs between a still and its resized, recompressed or letterboxed copy
    moves its hash by 15-35 bits.  Bars, borders and letterboxes come in
    same-colour pairs on opposite sides; a picture's own bands rarely do.
    """
    f = frame.astype(np.float32)
    y0, y1 = _bar_pair(f)
    x0, x1 = _bar_pair(f[y0:y1].T)
    return y0, y1, x0, x1


def chunk_gradients(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(blurred frames, |d/dx|, |d/dy|) of a chunk: shared by the content-box
    and the inset detectors.  uint8 frames give uint8 and int16 arrays (exact,
    half the memory traffic of float); float frames give float32."""
    t = len(frames)
    h, w = frames[0].shape
    if frames[0].dtype == np.uint8:  # both 3x3 Sobel derivatives in one pass, exact in int16
        blurred = np.empty((t, h, w), np.uint8)
        ax = np.empty((t, h, w), np.int16)
        ay = np.empty((t, h, w), np.int16)
        for i, f in enumerate(frames):
            cv2.GaussianBlur(f, (3, 3), 0, dst=blurred[i])
            cv2.spatialGradient(blurred[i], dx=ax[i], dy=ay[i])
    else:
        blurred = np.empty((t, h, w), np.float32)
        ax = np.empty((t, h, w), np.float32)
        ay = np.empty((t, h, w), np.float32)
        for i, f in enumerate(frames):
            blurred[i] = cv2.GaussianBlur(f, (3, 3), 0)
            cv2.Sobel(blurred[i], cv2.CV_32F, 1, 0, dst=ax[i], ksize=3)
            cv2.Sobel(blurred[i], cv2.CV_32F, 0, 1, dst=ay[i], ksize=3)
    np.abs(ax, out=ax)
    np.abs(ay, out=ay)
    return blurred, ax, ay


def content_box(
    frames: np.ndarray, prior: dict | None = None, aspect: float | None = None, grads: tuple | None = None
) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of the picture inside bars, borders or blurred fill.

    Works on a stack of frames: bars and borders neither move nor carry
    detail (trimmed from each side); a blurred fill shows as a symmetric pair
    of straight edges that persist over time with a low-detail fill outside.
    ``prior`` (a dict, updated in place) carries a fill found in earlier
    chunks of the same video; ``aspect`` (display width / height) restricts a
    fill to surround a picture of a common aspect ratio.  Both rules are deliberately conservative: a box found on the original and
    on its copy must agree, so anything doubtful stays in.
    """
    frames = np.asarray(frames)
    if frames.ndim == 2:
        frames = frames[None]
    t, h, w = frames.shape
    if t == 1 and not prior:
        return _still_box(frames[0])
    blurred, ax, ay = grads if grads is not None else chunk_gradients(frames)
    tstd = blurred.std(axis=0, dtype=np.float32) if t > 1 else np.zeros((h, w), np.float32)
    gx = ax.sum(axis=0, dtype=np.float32)  # sums of integers below 2**24: exact
    gy = ay.sum(axis=0, dtype=np.float32)
    detail = (gx + gy) / (8.0 * t)
    # persistent straight edges: median along each row/column of the mean gradient
    row_edge = np.median(gy, axis=1) / (4.0 * t)
    col_edge = np.median(gx, axis=0) / (4.0 * t)
    dead = (tstd < DEAD_TSTD) & (detail < DEAD_DETAIL)
    y0, y1 = _snap(*_trim_dead(np.mean(dead, axis=1) > 0.9), row_edge, h)
    x0, x1 = _snap(*_trim_dead(np.mean(dead[y0:y1], axis=0) > 0.9), col_edge, w)
    prior = {} if prior is None else prior
    # content height fraction of a picture of aspect c inside the frame: aspect / c
    rows_expected = [aspect / c for c in COMMON_ASPECTS if aspect / c < 0.95] if aspect else None
    cols_expected = [c / aspect for c in COMMON_ASPECTS if c / aspect < 0.95] if aspect else None
    rows = _fill_split(np.median(detail[y0:y1, x0:x1], axis=1), row_edge[y0:y1], prior.get("rows"), rows_expected)
    prior["rows"] = rows
    if rows is not None:
        y0, y1 = _snap_fill(y0 + rows[0], y0 + rows[1], row_edge, rows_expected)
    else:
        cols = _fill_split(np.median(detail[y0:y1, x0:x1], axis=0), col_edge[x0:x1], prior.get("cols"), cols_expected)
        prior["cols"] = cols
        if cols is not None:
            x0, x1 = _snap_fill(x0 + cols[0], x0 + cols[1], col_edge, cols_expected)
    return y0, y1, x0, x1


# --- picture-in-picture ------------------------------------------------------
#: A pixel is on a persistent edge when its gradient exceeds this (Sobel units,
#: ~5 grey levels across the edge) in at least PIP_PERSIST of a chunk's frames.
PIP_GRADIENT = 20.0
PIP_PERSIST = 0.6
#: An inset edge spans at least this fraction of the frame side.
PIP_MIN_LINE = 0.2
#: Insets are 20-80 % of the frame side, of about the frame's shape.
PIP_MIN_SIZE, PIP_MAX_SIZE = 0.2, 0.8
PIP_SHAPE_TOL = 1.3
#: Each side of an inset lies on a persistent edge along at least this share
#: of its length (or on the frame's own border).
PIP_SIDE_SUPPORT = 0.75
#: Insets are often framed (a white, black or coloured line of a few pixels).
#: The frame's outer edge is the strongest, so the box found is the frame's,
#: and the frame's strips in the crop kept framed copies (five framings of
#: the tests' reference, ad hoc) a median 8-20 bits from the reference, 4-6
#: once cut.  Lines just inside a side that are uniform along it and still
#: over the chunk (both within PIP_FRAME_STD grey levels) are the frame and
#: are cut, up to PIP_FRAME of the side (a 6 px frame on a 200 px inset is 3 %).
PIP_FRAME = 0.1
PIP_FRAME_STD = 4.0


def _lines(persist: np.ndarray, min_len: int) -> list[tuple[int, int, int, float]]:
    """Straight persistent edges along axis 1: (position, start, end, support)."""
    on = persist > PIP_PERSIST
    counts = on.sum(axis=1)
    cand = np.nonzero(counts >= min_len)[0]
    out = []
    for band in np.split(cand, np.nonzero(np.diff(cand) > 1)[0] + 1) if len(cand) else []:
        pos = int(band[np.argmax(counts[band])])
        xs = np.nonzero(on[max(0, pos - 1) : pos + 2].any(axis=0))[0]
        # longest run allowing 3-pixel gaps
        runs = np.split(xs, np.nonzero(np.diff(xs) > 3)[0] + 1)
        run = max(runs, key=len)
        if len(run) >= min_len:
            out.append((pos, int(run[0]), int(run[-1]) + 1, float(counts[band].max())))
    return out


def inset_box(frames: np.ndarray, grads: tuple | None = None) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) of a picture-in-picture inset, or None.

    An inset's border is a straight edge that stays put while both pictures
    move; two such edges meeting at a corner (the other two may lie on the
    frame's own border) bound the inset.
    """
    frames = np.asarray(frames)
    if frames.ndim != 3 or len(frames) < 8:
        return None
    t, h, w = frames.shape
    _, ax, ay = grads if grads is not None else chunk_gradients(frames)
    py = (ay > PIP_GRADIENT).mean(axis=0, dtype=np.float32)
    px = (ax > PIP_GRADIENT).mean(axis=0, dtype=np.float32)
    on_y = py > PIP_PERSIST
    on_x = px > PIP_PERSIST
    ys = sorted({ln[0] for ln in _lines(py, int(PIP_MIN_LINE * w))})
    xs = sorted({ln[0] for ln in _lines(px.T, int(PIP_MIN_LINE * h))})
    if not ys or not xs:
        return None

    def side(on: np.ndarray, pos: int, lo: int, hi: int, border: bool) -> float:
        """Share of a rectangle side on a persistent edge (1 on the frame's own border)."""
        if border:
            return 1.0
        band = on[max(0, pos - 1) : pos + 2, lo:hi]
        return float(band.any(axis=0).mean()) if hi > lo else 0.0

    # Every rectangle whose sides are persistent lines or the frame border,
    # with at least two real sides; the best is the one whose weakest side
    # is best supported (a host's own static lines rarely close a rectangle).
    best = None
    for y0 in [0] + ys:
        for y1 in ys + [h]:
            bh = (y1 - y0) / h
            if not PIP_MIN_SIZE <= bh <= PIP_MAX_SIZE:
                continue
            for x0 in [0] + xs:
                for x1 in xs + [w]:
                    bw = (x1 - x0) / w
                    if not PIP_MIN_SIZE <= bw <= PIP_MAX_SIZE or max(bw / bh, bh / bw) > PIP_SHAPE_TOL:
                        continue
                    borders = (y0 == 0, y1 == h, x0 == 0, x1 == w)
                    if sum(borders) > 2:
                        continue
                    sides = (
                        side(on_y, y0, x0, x1, borders[0]),
                        side(on_y, y1, x0, x1, borders[1]),
                        side(on_x.T, x0, y0, y1, borders[2]),
                        side(on_x.T, x1, y0, y1, borders[3]),
                    )
                    # prefer real edges to the frame border, then the best-supported
                    score = (4 - sum(borders), min(sides), sum(sides))
                    if score[1] >= PIP_SIDE_SUPPORT and (best is None or score > best[0]):
                        best = (score, y0, y1, x0, x1)
    if best is None:
        return None
    _, y0, y1, x0, x1 = best
    # stay inside the edge smear (blur + Sobel spread it by ~2 px), then inside a frame
    return _inside_frame(frames, (y0 + 2, y1 - 1, x0 + 2, x1 - 1))


def _inside_frame(frames: np.ndarray, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """``box`` without the frame drawn around an inset (see PIP_FRAME)."""
    y0, y1, x0, x1 = box
    sub = frames[:, y0:y1, x0:x1].astype(np.float32)
    mean, still = sub.mean(axis=0), sub.std(axis=0)
    rows = (mean.std(axis=1) < PIP_FRAME_STD) & (still.mean(axis=1) < PIP_FRAME_STD)
    cols = (mean.std(axis=0) < PIP_FRAME_STD) & (still.mean(axis=0) < PIP_FRAME_STD)

    def cut(frame_lines: np.ndarray, smear: int) -> int:
        """Lines to cut from this end: the frame's, then the smear of its inner edge."""
        n = _leading(frame_lines[: max(2, int(PIP_FRAME * len(frame_lines)))])
        return n + smear if n else 0

    return y0 + cut(rows, 2), y1 - cut(rows[::-1], 1), x0 + cut(cols, 2), x1 - cut(cols[::-1], 1)


def crops2rasters(frames: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    y0, y1, x0, x1 = box
    out = np.empty((len(frames), HASH_INPUT, HASH_INPUT), np.float32)
    for i, f in enumerate(frames):
        out[i] = cv2.resize(f[y0:y1, x0:x1], (HASH_INPUT, HASH_INPUT), interpolation=cv2.INTER_AREA)
    return out


def frames2track(
    times: np.ndarray, frames: np.ndarray, prior: dict | None = None, aspect: float | None = None, grads: tuple | None = None
) -> VisualTrack:
    """Hash one chunk of frames that share a content box."""
    if len(frames) == 0:
        return VisualTrack.empty()
    box = content_box(frames, prior, aspect, grads)
    rasters = crops2rasters(frames, box)
    hashes, flipped = rasters2hashes(rasters)
    views = np.concatenate([crops2rasters(frames, zoom_box(box, z)) for z in ZOOM_VIEWS])
    zoom = rasters2hashes(views)[0].reshape(len(ZOOM_VIEWS), len(frames)).T
    return VisualTrack(np.asarray(times, np.float32), hashes, flipped, rasters2flags(rasters), zoom)


def zoom_box(box: tuple[int, int, int, int], scale: float) -> tuple[int, int, int, int]:
    """The centred crop of ``box`` whose sides are ``scale`` times as long."""
    y0, y1, x0, x1 = box
    dy = int(round((y1 - y0) * (1.0 - scale) / 2.0))
    dx = int(round((x1 - x0) * (1.0 - scale) / 2.0))
    return y0 + dy, y1 - dy, x0 + dx, x1 - dx


def rasters2flags(rasters: np.ndarray) -> np.ndarray:
    """FLAG_FLAT / FLAG_DIM of each hash raster, by its standard deviation."""
    std = rasters.reshape(len(rasters), -1).std(axis=1)
    return np.where(std < FLAT_STD, FLAG_FLAT, np.where(std < DIM_STD, FLAG_DIM, 0)).astype(np.uint8)


def concat_tracks(tracks: Iterable[VisualTrack]) -> VisualTrack:
    tracks = [t for t in tracks if len(t)]
    if not tracks:
        return VisualTrack.empty()
    return VisualTrack(
        np.concatenate([t.times for t in tracks]),
        np.concatenate([t.hashes for t in tracks]),
        np.concatenate([t.flipped for t in tracks]),
        np.concatenate([t.flags for t in tracks]),
        np.concatenate([t.zoom for t in tracks]) if len({t.zoom.shape[1] for t in tracks}) == 1 else None,
    )


def frames2inset(times: np.ndarray, frames: np.ndarray, grads: tuple | None = None) -> VisualTrack:
    """Hashes of a picture-in-picture inset in one chunk (empty if none)."""
    box = inset_box(frames, grads)
    if box is None:
        return VisualTrack.empty()
    rasters = crops2rasters(frames, box)
    hashes, flipped = rasters2hashes(rasters)
    return VisualTrack(np.asarray(times, np.float32), hashes, flipped, rasters2flags(rasters))


class VisualExtractor:
    """Streaming: feed (time, grey frame); hashes are made per chunk.

    ``finish()`` returns the main track; ``inset`` holds the hashes of a
    picture-in-picture inset wherever one was seen (often empty).
    """

    def __init__(self, chunk: int = BOX_CHUNK, aspect: float | None = None, chunk_seconds: float | None = None):
        self.chunk = chunk
        self.aspect = aspect  # display width / height, if known
        # chunks on a fixed time grid (multiples of chunk_seconds), so that a
        # window decoded on its own cuts the same chunks as the whole file
        self.chunk_seconds = chunk_seconds
        self._times: list[float] = []
        self._frames: list[np.ndarray] = []
        self._tracks: list[VisualTrack] = []
        self._insets: list[VisualTrack] = []
        self._prior: dict = {}
        self.inset: VisualTrack = VisualTrack.empty()

    def feed(self, t: float, frame: np.ndarray) -> None:
        if self.chunk_seconds and self._times and (
            math.floor(t / self.chunk_seconds) != math.floor(self._times[0] / self.chunk_seconds)
        ):
            self._flush()
        self._times.append(t)
        self._frames.append(frame)
        if len(self._frames) >= self.chunk:
            self._flush()

    def _flush(self) -> None:
        if self._frames:
            times, frames = np.array(self._times), np.stack(self._frames)
            grads = chunk_gradients(frames) if len(frames) > 1 else None
            self._tracks.append(frames2track(times, frames, self._prior, self.aspect, grads))
            self._insets.append(frames2inset(times, frames, grads))
            self._times, self._frames = [], []

    def finish(self) -> VisualTrack:
        self._flush()
        self.inset = concat_tracks(self._insets)
        return concat_tracks(self._tracks)


def image2hash(gray: np.ndarray) -> tuple[int, int, bool]:
    """Hash of one still image (grey uint8): (hash, mirrored hash, flat)."""
    track = frames2track(np.zeros(1), gray[None])
    return int(track.hashes[0]), int(track.flipped[0]), bool(track.flags[0] & FLAG_FLAT)

