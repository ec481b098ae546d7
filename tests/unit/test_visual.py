"""Visual fingerprint on synthetic footage: content box, hash invariants, flat flags.

Frames are built with numpy/cv2 (no video encoding): a textured scene
(smoothed noise at several scales plus sharp-edged objects) that the camera
pans over, with an object moving on its own, so every chunk moves and
carries detail like real footage.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import pytest

from mediadna import visual as V
from mediadna.fingerprint import FLAG_DIM, FLAG_FLAT, FINGERPRINT_VERSION, VisualTrack
from mediadna.visual import (
    HASH_INPUT,
    VisualExtractor,
    content_box,
    crops2rasters,
    frames2track,
    hamming,
    image2hash,
    rasters2hashes,
)

N_FRAMES = 40  # one content-box chunk (V.BOX_CHUNK)
SIZE = 192


# --- synthetic footage ------------------------------------------------------------
def _texture(rng, h, w, scales=(1.0, 3.0, 8.0, 20.0), weights=(0.6, 1.0, 1.0, 1.2)) -> np.ndarray:
    acc = np.zeros((h, w), np.float32)
    for s, wt in zip(scales, weights):
        n = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), s)
        acc += wt * n / (n.std() + 1e-6)
    return (acc - acc.mean()) / acc.std()


def _scene(rng, h, w) -> np.ndarray:
    s = _texture(rng, h, w)
    for _ in range(12):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(6, 30)), int(rng.integers(6, 30)))
        cv2.ellipse(s, centre, axes, float(rng.uniform(0, 180)), 0, 360, float(rng.uniform(-2, 2)), -1)
    for _ in range(8):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        cv2.rectangle(s, (x, y), (x + int(rng.integers(8, 40)), y + int(rng.integers(8, 40))), float(rng.uniform(-2, 2)), -1)
    return s


@lru_cache(maxsize=None)
def _footage(seed: int, n: int, h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vy, vx = 1.3, 2.1  # camera pan, pixels per frame
    sc = _scene(rng, h + int(vy * n) + 8, w + int(vx * n) + 8)
    obj = _texture(rng, max(8, h // 3), max(8, w // 3), scales=(1.0, 3.0), weights=(1.0, 1.0))
    frames = []
    for t in range(n):
        y, x = int(round(4 + vy * t)), int(round(4 + vx * t))
        f = sc[y : y + h, x : x + w].copy()
        oy = int(h / 2 + h / 4 * np.sin(t / 6.0)) - obj.shape[0] // 2
        ox = int(w / 2 + w / 4 * np.cos(t / 5.0)) - obj.shape[1] // 2
        f[oy : oy + obj.shape[0], ox : ox + obj.shape[1]] = 0.8 * obj + 0.8
        frames.append(f)
    out = np.clip(128 + 40 * np.stack(frames), 0, 255).astype(np.uint8)
    out.flags.writeable = False
    return out


def footage(seed: int, n: int = N_FRAMES, h: int = SIZE, w: int = SIZE) -> np.ndarray:
    """(n, h, w) uint8 grey frames of moving, textured content."""
    return _footage(seed, n, h, w).copy()


def times(n: int) -> np.ndarray:
    return np.arange(n) / 5.0


def track(frames: np.ndarray) -> VisualTrack:
    return frames2track(times(len(frames)), frames)


# --- framings (picture + bars / borders / fill), with the true box ------------------
def _cached(fn):
    """Memoise a framing builder; callers get fresh copies."""
    memo = lru_cache(maxsize=None)(fn)

    def wrapper(*args, **kw):
        src, framed, truth = memo(*args, **kw)
        return src.copy(), framed.copy(), truth

    return wrapper


@_cached
def letterbox(seed: int, ch: int = 108, value: int = 0):
    src = footage(seed, h=ch, w=SIZE)
    out = np.full((len(src), SIZE, SIZE), value, np.uint8)
    y0 = (SIZE - ch) // 2
    out[:, y0 : y0 + ch] = src
    return src, out, (y0, y0 + ch, 0, SIZE)


@_cached
def pillarbox(seed: int, cw: int = 108):
    src = footage(seed, h=SIZE, w=cw)
    out = np.zeros((len(src), SIZE, SIZE), np.uint8)
    x0 = (SIZE - cw) // 2
    out[:, :, x0 : x0 + cw] = src
    return src, out, (0, SIZE, x0, x0 + cw)


@_cached
def coloured_border(seed: int, margins=(14, 16, 20, 16), bgr=(40, 160, 220)):
    """A colour frame around the picture (made in BGR, converted to grey like decode does)."""
    t, b, l, r = margins
    src = footage(seed, h=SIZE - t - b, w=SIZE - l - r)
    out = []
    for f in src:
        c = np.empty((SIZE, SIZE, 3), np.uint8)
        c[:] = bgr
        c[t : SIZE - b, l : SIZE - r] = f[..., None]
        out.append(cv2.cvtColor(c, cv2.COLOR_BGR2GRAY))
    return src, np.stack(out), (t, SIZE - b, l, SIZE - r)


@_cached
def blurred_fill(seed: int, n: int = N_FRAMES, H: int = 320, W: int = 180, caption: bool = True):
    """9:16 re-upload: the 16:9 picture in the middle band, the rest a heavily
    blurred zoom of the same frame, with a static caption drawn in the fill."""
    ph = int(round(W * 9 / 16))
    src = footage(seed, n=n, h=ph, w=W)
    y0 = (H - ph) // 2
    out = []
    for f in src:
        zoom = cv2.resize(f, (int(W * H / ph), H), interpolation=cv2.INTER_LINEAR)
        x = (zoom.shape[1] - W) // 2
        fill = cv2.GaussianBlur(zoom[:, x : x + W], (0, 0), 12)
        if caption:
            cv2.putText(fill, "FOLLOW ME", (22, 50), cv2.FONT_HERSHEY_SIMPLEX, 0.7, 255, 2, cv2.LINE_AA)
            cv2.putText(fill, "#viral #fyp", (30, H - 40), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 255, 1, cv2.LINE_AA)
        fill[y0 : y0 + ph] = f
        out.append(fill)
    return src, np.stack(out), (y0, y0 + ph, 0, W)


def assert_box_near(got, truth, tol=3):
    assert len(got) == 4
    err = [abs(int(a) - int(b)) for a, b in zip(got, truth)]
    assert max(err) <= tol, f"box {tuple(got)} vs truth {truth}"


# --- content box ----------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_content_box_clean_footage_is_full_frame(seed):
    assert tuple(content_box(footage(seed))) == (0, SIZE, 0, SIZE)


def test_content_box_clean_non_square_footage_is_full_frame():
    fr = footage(3, h=108, w=192)
    assert tuple(content_box(fr)) == (0, 108, 0, 192)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_content_box_letterbox(seed):
    _, fr, truth = letterbox(seed)
    assert_box_near(content_box(fr), truth)


def test_content_box_letterbox_with_grey_bars_and_tall_picture():
    _, fr, truth = letterbox(4, ch=150, value=16)  # limited-range "black" bars, thin
    assert_box_near(content_box(fr), truth)


@pytest.mark.parametrize("seed", [0, 1])
def test_content_box_pillarbox(seed):
    _, fr, truth = pillarbox(seed)
    assert_box_near(content_box(fr), truth)


@pytest.mark.parametrize("seed", [0, 1])
def test_content_box_coloured_border(seed):
    _, fr, truth = coloured_border(seed)
    assert_box_near(content_box(fr), truth)


@pytest.mark.parametrize("seed,caption", [(0, True), (1, True), (2, False)])
def test_content_box_blurred_fill(seed, caption):
    _, fr, truth = blurred_fill(seed, caption=caption)
    assert_box_near(content_box(fr), truth)


def test_content_box_single_frame_and_2d_input():
    fr = footage(5)
    assert tuple(content_box(fr[0])) == (0, SIZE, 0, SIZE)
    _, lb, truth = letterbox(5)
    assert_box_near(content_box(lb[0]), truth)  # a still with black bars


def test_content_box_all_black_keeps_full_frame():
    assert tuple(content_box(np.zeros((10, 64, 96), np.uint8))) == (0, 64, 0, 96)


def test_content_box_records_fill_in_prior():
    _, fr, truth = blurred_fill(6)
    prior: dict = {}
    box = content_box(fr, prior)
    assert_box_near(box, truth)
    assert prior.get("rows") is not None
    # the next chunk of the same video keeps the same box
    assert tuple(content_box(fr[::-1].copy(), prior)) == tuple(box)


# --- hash invariants ----------------------------------------------------------------
def _gamma(fr, g):
    return np.clip(255.0 * (fr / 255.0) ** g, 0, 255).astype(np.uint8)


def _linear(fr, gain, bias):
    return np.clip(gain * (fr.astype(np.float32) - 128) + 128 + bias, 0, 255).astype(np.uint8)


def _noise(fr, sigma, seed=0):
    rng = np.random.default_rng(seed)
    return np.clip(fr + rng.normal(0, sigma, fr.shape), 0, 255).astype(np.uint8)


def _rescale(fr, factor):
    """Down (or up) and back: what a low-resolution re-encode does to detail."""
    h, w = fr.shape[1:]
    size = (int(w * factor), int(h * factor))
    return np.stack([cv2.resize(cv2.resize(f, size, interpolation=cv2.INTER_AREA), (w, h), interpolation=cv2.INTER_LINEAR) for f in fr])


def _resize(fr, factor):
    h, w = fr.shape[1:]
    return np.stack([cv2.resize(f, (int(w * factor), int(h * factor)), interpolation=cv2.INTER_AREA) for f in fr])


def _watermark(fr):
    out = fr.copy()
    for f in out:  # small opaque logo in the bottom-right corner (~2 % of the area)
        cv2.rectangle(f, (150, 170), (186, 186), 235, -1)
        cv2.putText(f, "TV", (156, 184), cv2.FONT_HERSHEY_SIMPLEX, 0.45, 20, 1, cv2.LINE_AA)
    return out


def _jpeg(fr, q=40):
    return np.stack([cv2.imdecode(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, q])[1], cv2.IMREAD_GRAYSCALE) for f in fr])


EDITS = {
    "downscale_x0.5_and_back": (lambda f: _rescale(f, 0.5), 3, 6),
    "downscale_x0.33_and_back": (lambda f: _rescale(f, 0.34), 3, 6),
    "upscale_x1.7_and_back": (lambda f: _rescale(f, 1.7), 3, 6),
    "half_resolution": (lambda f: _resize(f, 0.5), 3, 6),
    "double_resolution": (lambda f: _resize(f, 2.0), 3, 6),
    "gaussian_noise_8": (lambda f: _noise(f, 8), 3, 6),
    "gaussian_noise_14": (lambda f: _noise(f, 14), 4, 8),
    "gamma_0.7": (lambda f: _gamma(f, 0.7), 4, 8),
    "gamma_1.4": (lambda f: _gamma(f, 1.4), 4, 8),
    "contrast_0.6": (lambda f: _linear(f, 0.6, 0), 3, 6),
    "contrast_1.3": (lambda f: _linear(f, 1.3, 0), 3, 6),
    "brightness_+30": (lambda f: _linear(f, 1.0, 30), 3, 6),
    "brightness_-30": (lambda f: _linear(f, 1.0, -30), 3, 6),
    "jpeg_q40": (lambda f: _jpeg(f), 3, 6),
    "corner_watermark": (_watermark, 8, 14),
}


@pytest.fixture(scope="module")
def base_tracks():
    return {seed: track(footage(seed)) for seed in (0, 1)}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_edited_copy_hashes_stay_near(base_tracks, edit):
    fn, mean_max, worst_max = EDITS[edit]
    seed = sorted(EDITS).index(edit) % 2  # both footages, one each (keeps the suite fast)
    edited = track(fn(footage(seed)))
    base = base_tracks[seed]
    d = hamming(base.hashes, edited.hashes)
    assert d.mean() <= mean_max and d.max() <= worst_max, f"{edit}: mean {d.mean():.2f}, max {d.max()}"
    # the mirrored hashes are just as robust
    df = hamming(base.flipped, edited.flipped)
    assert df.mean() <= mean_max and df.max() <= worst_max
    assert not np.any(edited.flags & FLAG_FLAT)


def test_unrelated_footage_hashes_are_far(base_tracks):
    a = base_tracks[0]
    for other_seed in (100, 101):
        b = track(footage(other_seed))
        same_time = hamming(a.hashes, b.hashes)
        all_pairs = hamming(a.hashes[:, None], b.hashes[None, :])
        assert same_time.mean() >= 20, same_time.mean()
        assert all_pairs.mean() >= 24, all_pairs.mean()
        assert np.percentile(all_pairs, 5) >= 18
    # and frames seconds apart in the same (panning) shot are unrelated too
    far = hamming(a.hashes[:10], a.hashes[-10:])
    assert far.mean() >= 20


def test_hashes_are_deterministic_and_order_independent():
    fr = footage(7)
    h1, f1 = rasters2hashes(crops2rasters(fr, (0, SIZE, 0, SIZE)))
    h2, f2 = rasters2hashes(crops2rasters(fr[::-1].copy(), (0, SIZE, 0, SIZE)))
    assert h1.dtype == np.uint64 and f1.dtype == np.uint64
    assert np.array_equal(h1, h2[::-1]) and np.array_equal(f1, f2[::-1])
    # balanced: a median split sets half of the 64 bits
    ones = np.bitwise_count(h1)
    assert np.all((ones >= 28) & (ones <= 36))


def test_rasters2hashes_empty():
    h, f = rasters2hashes(np.zeros((0, HASH_INPUT, HASH_INPUT), np.float32))
    assert h.shape == f.shape == (0,) and h.dtype == np.uint64


def test_hash_ignores_global_gain_and_offset_exactly():
    """DCT coefficients (DC excluded) scale with gain and ignore offset: same bits."""
    r = crops2rasters(footage(8), (0, SIZE, 0, SIZE))
    h, f = rasters2hashes(r)
    h2, f2 = rasters2hashes(r * 0.5 + 40.0)
    assert hamming(h, h2).max() <= 1 and hamming(f, f2).max() <= 1


# --- mirrored hash -------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_mirrored_hash_property(seed):
    fr = footage(seed)
    rasters = crops2rasters(fr, (0, SIZE, 0, SIZE))
    h, f = rasters2hashes(rasters)
    hm, fm = rasters2hashes(np.ascontiguousarray(rasters[:, :, ::-1]))
    assert hamming(hm, f).max() <= 2  # hash of the mirror == mirrored hash
    assert hamming(fm, h).max() <= 2
    assert hamming(h, f).mean() >= 16  # and the mirror is a different picture
    # the same through box + hash on the frames themselves
    t, tm = track(fr), track(np.ascontiguousarray(fr[:, :, ::-1]))
    assert hamming(tm.hashes, t.flipped).max() <= 2
    assert hamming(tm.flipped, t.hashes).max() <= 2
    assert hamming(tm.hashes, t.hashes).mean() >= 16


def test_mirrored_letterboxed_copy_matches_flipped_hash():
    src, lb, _ = letterbox(9)
    mirrored = np.ascontiguousarray(lb[:, :, ::-1])
    d = hamming(track(mirrored).hashes, track(src).flipped)
    assert d.mean() <= 3 and d.max() <= 8


# --- box + hash -----------------------------------------------------------------
FRAMINGS = {"letterbox": letterbox, "pillarbox": pillarbox, "coloured_border": coloured_border, "blurred_fill": blurred_fill}


@pytest.mark.parametrize("framing", sorted(FRAMINGS))
@pytest.mark.parametrize("seed", [0])
def test_framed_copy_hashes_near_clean_original(framing, seed):
    src, framed, truth = FRAMINGS[framing](seed)
    original = track(src)
    copy = track(framed)
    d = hamming(original.hashes, copy.hashes)
    assert d.mean() <= 6 and d.max() <= 12, f"{framing}: mean {d.mean():.2f} max {d.max()}"
    # without the content box the same copy would not match: the box matters
    y0, y1, x0, x1 = 0, framed.shape[1], 0, framed.shape[2]
    raw, _ = rasters2hashes(crops2rasters(framed, (y0, y1, x0, x1)))
    assert hamming(original.hashes, raw).mean() >= d.mean() + 8


def test_visual_extractor_streams_chunks_of_a_filled_video():
    """50 frames: a full chunk and a short tail of 10 frames, each boxed on its own
    (the tail with the prior of the first chunk)."""
    src, framed, _ = blurred_fill(10, n=50)
    vx = VisualExtractor()
    for i, f in enumerate(framed):
        vx.feed(i / 5.0, f)
    got = vx.finish()
    assert len(got) == 50
    assert np.allclose(got.times, times(50))
    ref = frames2track(times(50), src)
    d = hamming(got.hashes, ref.hashes)
    assert d.mean() <= 6 and d.max() <= 12
    assert hamming(got.hashes[40:], ref.hashes[40:]).mean() <= 6


def test_visual_extractor_empty():
    vt = VisualExtractor().finish()
    assert len(vt) == 0 and vt.hashes.dtype == np.uint64


# --- flat frames ----------------------------------------------------------------
@lru_cache(maxsize=1)
def _flat_cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 10
    low_contrast = []
    for i in range(n):
        tex = _texture(np.random.default_rng(i), SIZE, SIZE)
        low_contrast.append(np.clip(100 + 2.5 * tex, 0, 255).astype(np.uint8))
    return {
        "black": np.zeros((n, SIZE, SIZE), np.uint8),
        "uniform_grey": np.full((n, SIZE, SIZE), 128, np.uint8),
        "white": np.full((n, SIZE, SIZE), 255, np.uint8),
        "near_black_with_noise": np.clip(rng.normal(6, 3, (n, SIZE, SIZE)), 0, 255).astype(np.uint8),
        "very_low_contrast_texture": np.stack(low_contrast),
        "end_of_fade_to_black": (footage(0)[:n] * 0.04).astype(np.uint8),
        "faint_gradient": np.stack([np.tile(np.linspace(120, 130, SIZE).astype(np.uint8), (SIZE, 1))] * n),
    }


@pytest.mark.parametrize("case", sorted(_flat_cases()))
def test_flat_frames_get_flag_flat(case):
    t = track(_flat_cases()[case])
    assert np.all(t.flags & FLAG_FLAT)
    assert not np.any(t.informative)


def test_real_content_is_not_flat_even_when_dim():
    for fr in (footage(0)[:10], (footage(0)[:10] * 0.3).astype(np.uint8), letterbox(1)[1][:10]):
        t = track(fr)
        assert not np.any(t.flags & FLAG_FLAT)


def test_dim_frames_are_flagged_dim_and_hash_like_the_bright_picture():
    """Night-footage levels (a few grey levels of structure) are evidence, flagged
    dim, and the hash of a dimmed picture is the hash of the picture."""
    bright = footage(0)[:10]
    dim = track((bright * 0.15).astype(np.uint8))
    assert np.all(dim.flags == FLAG_DIM) and np.all(dim.informative)
    full = track(bright)
    assert not np.any(full.flags)
    assert np.all(hamming(dim.hashes, full.hashes) <= 6)


def test_flags_are_per_frame_in_a_fade():
    fr = footage(2).astype(np.float32)
    fr[25:] *= 0.03  # cut to (almost) black mid-chunk
    t = track(fr.astype(np.uint8))
    assert not np.any(t.flags[:25] & FLAG_FLAT)
    assert np.all(t.flags[25:] & FLAG_FLAT)


def test_image2hash_flat_and_not_flat():
    h, f, flat = image2hash(np.full((90, 160), 77, np.uint8))
    assert flat
    h, f, flat = image2hash(footage(3)[0])
    assert not flat and h != f


# --- golden value -------------------------------------------------------------------
# These pinned hashes are the on-disk meaning of fingerprint v1.  If a change to
# mediadna.visual (DCT, coefficient order, median split, bit order, resizing,
# content box) makes them differ, every stored library becomes incomparable with
# new queries: bump FINGERPRINT_VERSION (stores then refuse to mix versions)
# and re-pin these values in the same change.  Never just re-pin.
GOLDEN_VERSION = 1
GOLDEN_RASTER_HASH = "3a2d45789aae2d5c"
GOLDEN_RASTER_FLIPPED = "af06e13dd08b7856"
GOLDEN_IMAGE_HASH = "3a3d45789aae0d5c"
GOLDEN_IMAGE_FLIPPED = "af02e11dd2ab5956"


def _golden_pattern(n: int) -> np.ndarray:
    """A fixed, asymmetric gradient + checker + stripes (no randomness), values 23..236."""
    y, x = np.mgrid[0:n, 0:n].astype(np.float64) * (32.0 / n)
    img = 20 + 2.5 * x + 1.5 * y + 0.05 * x * y
    img += 30.0 * (((x // 5) + (y // 3)) % 2)
    img += 20.0 * ((x + 2 * y) % 11 < 4)
    return img


def _median_margin(raster: np.ndarray) -> float:
    c = np.einsum("ux,xy,vy->uv", V._D, raster.astype(np.float32), V._D)[V._CU, V._CV]
    return float(np.min(np.abs(c - np.median(c))))


def test_golden_hash_of_fixed_raster():
    assert FINGERPRINT_VERSION == GOLDEN_VERSION, "re-pin the golden hashes for the new version"
    raster = _golden_pattern(HASH_INPUT).astype(np.float32)
    # well-conditioned: no coefficient sits within float noise of the median,
    # so a mismatch below is a real change of the hash, not rounding
    assert _median_margin(raster) > 0.05
    h, f = rasters2hashes(raster[None])
    assert f"{int(h[0]):016x}" == GOLDEN_RASTER_HASH
    assert f"{int(f[0]):016x}" == GOLDEN_RASTER_FLIPPED


def test_golden_hash_of_fixed_image():
    """The whole still-image path: content box, INTER_AREA resize, DCT hash."""
    assert FINGERPRINT_VERSION == GOLDEN_VERSION, "re-pin the golden hashes for the new version"
    img = np.round(_golden_pattern(128)).astype(np.uint8)
    assert _median_margin(cv2.resize(img, (HASH_INPUT, HASH_INPUT), interpolation=cv2.INTER_AREA)) > 0.02
    h, f, flat = image2hash(img)
    assert (f"{h:016x}", f"{f:016x}", flat) == (GOLDEN_IMAGE_HASH, GOLDEN_IMAGE_FLIPPED, False)


# --- picture-in-picture inset --------------------------------------------------------
# Insets are found end to end on encoded media in test_transforms.py (pip); here:
# framings that are not insets must not be taken for one.
def test_inset_box_is_none_for_bars_and_borders():
    assert V.inset_box(letterbox(5)[1]) is None
    assert V.inset_box(coloured_border(5)[1]) is None
    assert V.inset_box(pillarbox(5)[1]) is None


def test_inset_frame_is_cut_but_still_or_uniform_picture_alone_is_not():
    fr = footage(7)
    box = (40, 160, 30, 170)
    assert V._inside_frame(fr, box) == box  # moving, textured picture up to the edge: nothing to cut
    framed = fr.copy()
    framed[:, 40:44, 30:170] = framed[:, 156:160, 30:170] = 255  # a still, uniform 4 px frame
    framed[:, 40:160, 30:34] = framed[:, 40:160, 166:170] = 255
    # the frame, then the 2 px (top, left) or 1 px (bottom, right) smear of its inner edge
    assert V._inside_frame(framed, box) == (46, 155, 36, 165)
    logo = fr.copy()
    logo[:, 40:44, 30:170] = fr[0, 100:104, 30:170]  # still but textured (a static strip of picture)
    logo[:, 40:160, 30:34] = fr[:, 100:101, 100:101]  # uniform along the side but changing (a fade, a flash)
    assert V._inside_frame(logo, box) == box
    thick = fr.copy()
    thick[:, 40:80] = 0  # a still black band far wider than any frame: cut at most PIP_FRAME of the side
    assert V._inside_frame(thick, box)[0] == 40 + int(V.PIP_FRAME * 120) + 2


def test_chunk_gradients_are_the_3x3_sobel_of_the_blurred_frames():
    import cv2

    rng = np.random.default_rng(21)
    frames = rng.integers(0, 256, (5, 48, 64)).astype(np.uint8)
    frames[:, :8] = 16  # a flat bar: zero gradient inside, an edge at its border
    blurred, ax, ay = V.chunk_gradients(frames)
    for i, f in enumerate(frames):
        b = cv2.GaussianBlur(f, (3, 3), 0).astype(np.float32)
        assert np.array_equal(blurred[i], b)
        assert np.array_equal(ax[i], np.abs(cv2.Sobel(b, cv2.CV_32F, 1, 0, ksize=3)))
        assert np.array_equal(ay[i], np.abs(cv2.Sobel(b, cv2.CV_32F, 0, 1, ksize=3)))
    assert ax[:, 1:6, 1:6].max() == 0 and ay[:, 8].max() > 0
    # float frames: the same filters in float
    fl = frames.astype(np.float32) + 0.25
    fb, fx, fy = V.chunk_gradients(fl)
    b = cv2.GaussianBlur(fl[2], (3, 3), 0)
    assert np.array_equal(fb[2], b) and np.array_equal(fx[2], np.abs(cv2.Sobel(b, cv2.CV_32F, 1, 0, ksize=3)))


# --- centred crops (zoom views) -------------------------------------------------------
def _cropped(fr, left, right, top, bottom):
    """Each frame cut by these fractions of its sides, scaled back to full size (a cropped copy)."""
    n, h, w = fr.shape
    y0, y1, x0, x1 = int(top * h), h - int(bottom * h), int(left * w), w - int(right * w)
    return np.stack([cv2.resize(f[y0:y1, x0:x1], (w, h), interpolation=cv2.INTER_AREA) for f in fr])


def test_every_frame_carries_one_hash_per_zoom_view():
    t = track(footage(3))
    assert t.zoom.shape == (N_FRAMES, len(V.ZOOM_VIEWS))
    assert t.views.shape == (N_FRAMES, 1 + len(V.ZOOM_VIEWS))
    assert np.array_equal(t.views[:, 0], t.hashes)
    # each view is the hash of the centred crop, as frames2track would hash that crop itself
    fr = footage(3)
    for k, z in enumerate(V.ZOOM_VIEWS):
        box = V.zoom_box((0, SIZE, 0, SIZE), z)
        assert np.array_equal(t.zoom[:, k], rasters2hashes(crops2rasters(fr, box))[0])


def test_zoom_box_is_centred_and_scaled():
    assert V.zoom_box((0, 200, 0, 100), 0.8) == (20, 180, 10, 90)
    assert V.zoom_box((10, 110, 40, 140), 0.9) == (15, 105, 45, 135)


@pytest.mark.parametrize(
    "crop, most",
    [((0.08, 0.04, 0.10, 0.02), 14), ((0.03, 0.09, 0.02, 0.12), 18), ((0.07, 0.07, 0.06, 0.06), 6)],
    ids=["off-centre", "one-sided", "centred"],
)
def test_cropped_copy_is_nearer_the_zoom_views_than_the_whole_frame(crop, most):
    """A copy keeping 80-90 % of each side (left, right, top, bottom cut): the
    nearest view is at least 4 bits closer than the whole frame (16-22 bits,
    where unrelated frames begin); a centred crop all but meets its view."""
    base = track(footage(5))
    copy = track(_cropped(footage(5), *crop))
    whole = hamming(copy.hashes, base.hashes)
    nearest = hamming(copy.hashes[:, None], base.views).min(axis=1)
    assert np.median(nearest) <= np.median(whole) - 4, (np.median(nearest), np.median(whole))
    assert np.median(nearest) <= most
    # unrelated footage gains nothing like that from the views
    other = track(footage(105))
    assert hamming(other.hashes[:, None], base.views).min(axis=1).mean() >= 20
