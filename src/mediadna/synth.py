"""Synthetic media generator and transformation library.

Tests, the benchmark corpus and the demo cannot download media, so every
clip is generated procedurally and encoded with PyAV.  Two halves:

* **Generation** -- :func:`make_video`, :func:`make_image`, :func:`make_audio`.
  Six visual families (``VIDEO_KINDS``) with scene cuts and motion, and four
  soundtracks (``AUDIO_KINDS``).  Output is a pure function of
  ``(kind, seed, size, fps, duration)``: the same seed gives identical decoded
  frames, different seeds give unrelated clips of the same family.
* **Transformation** -- :func:`transform` reads a file, applies one named
  re-upload style edit from :data:`TRANSFORMS` and re-encodes it with a
  different encoding than the source.  It always writes the ground truth to
  ``dst + ".truth.json"``: the copied window in the query (the output) and
  the reference (the source), in seconds.

Ground truth fields: ``query_start/query_end`` (seconds in the output),
``reference_start/reference_end`` (seconds in the source), ``video`` / ``audio``
(is the source's picture / sound in the copy), and where relevant ``mirrored``,
``speed_factor``, ``region`` ([x0, y0, x1, y1] of the source picture in the
output frame, normalised), ``crop`` (visible part of the source frame).

libx264 runs with ``mbtree=0``: with mb-tree its output varies from run to run
on identical input, which would break the determinism guarantee.

Video is streamed frame by frame (decode -> numpy RGB -> encode); only audio
(small next to video) is held in memory as float32 ``(channels, samples)``.

Typical cost on one core: ``make_video(kind=..., duration=20, size=(480, 270))``
takes 1.5-4 s depending on the kind, a single transform of that clip about 2 s
(3-5 s for blurfill916, embed, pip and combos).

Example::

    from mediadna import synth
    src = synth.make_video("ref.mp4", kind="scenes", duration=20, seed=1)
    synth.transform(src, "q.mp4", "blurfill916", caption="wait for it")
    truth = synth.read_truth("q.mp4")   # {"query_start": 0.0, ...}
"""

from __future__ import annotations

import colorsys
import json
import math
import tempfile
import zlib
from bisect import bisect_right
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import av
import cv2
import numpy as np
from scipy import signal

__all__ = [
    "AUDIO_KINDS",
    "AUDIO_TRANSFORMS",
    "AUTO_AUDIO",
    "Encoding",
    "HARD_TRANSFORMS",
    "MediaInfo",
    "STANDARD_TRANSFORMS",
    "TRANSFORMS",
    "VIDEO_KINDS",
    "iter_frames",
    "make_audio",
    "make_image",
    "make_video",
    "probe",
    "random_params",
    "read_audio",
    "read_truth",
    "render_frame",
    "synth_audio",
    "transform",
]

VIDEO_KINDS: tuple[str, ...] = ("shapes", "texture", "scenes", "talk", "text", "dark")
AUDIO_KINDS: tuple[str, ...] = ("music", "speech", "noise", "silence")
#: Soundtrack chosen by ``audio="auto"`` for each video kind.
AUTO_AUDIO: dict[str, str] = {
    "shapes": "music",
    "texture": "noise",
    "scenes": "music",
    "talk": "speech",
    "text": "speech",
    "dark": "noise",
}

_F32 = np.float32
Color = tuple[int, int, int]
Array = np.ndarray


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------


def _rng(seed: int, *tags: str) -> np.random.Generator:
    """A generator keyed by ``seed`` and stable string tags (crc32, not hash())."""
    key = [int(seed) & 0xFFFFFFFF, (int(seed) >> 32) & 0xFFFFFFFF]
    key += [zlib.crc32(t.encode()) for t in tags]
    return np.random.default_rng(key)


def _even(n: float, minimum: int = 16) -> int:
    """Round to the nearest even integer >= ``minimum`` (yuv420p needs even sizes)."""
    return max(minimum, int(round(n / 2.0)) * 2)


def _frac(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001)


def _ease(u: float) -> float:
    u = min(max(u, 0.0), 1.0)
    return u * u * (3.0 - 2.0 * u)


def _reflect(u: float, lo: float, hi: float) -> float:
    """Bounce ``u`` between ``lo`` and ``hi`` (a triangle wave): stateless motion."""
    span = max(hi - lo, 1e-6)
    m = (u - lo) % (2 * span)
    return lo + (m if m < span else 2 * span - m)


def _color(rng: np.random.Generator, s: tuple[float, float] = (0.4, 0.9),
           v: tuple[float, float] = (0.3, 0.9), h: float | None = None) -> Color:
    hh = rng.random() if h is None else h % 1.0
    r, g, b = colorsys.hsv_to_rgb(hh, rng.uniform(*s), rng.uniform(*v))
    return (int(r * 255), int(g * 255), int(b * 255))


def _fractal(rng: np.random.Generator, h: int, w: int, base: float = 3.0,
             octaves: int = 6, persistence: float = 0.5) -> Array:
    """Multi-octave value noise in [0, 1], shape (h, w), float32."""
    out = np.zeros((h, w), _F32)
    amp = 1.0
    for o in range(octaves):
        cells = base * (2 ** o)
        gh = max(2, int(cells * h / max(h, w)) + 2)
        gw = max(2, int(cells * w / max(h, w)) + 2)
        g = rng.random((gh, gw), dtype=_F32)
        up = cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)
        cell = max(w / gw, h / gh)
        if cell < 48 and h > 1:  # hide the interpolation grid of fine octaves
            up = cv2.GaussianBlur(up, (0, 0), cell * 0.45)
        out += amp * up
        amp *= persistence
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / max(hi - lo, 1e-6)


def _noise1d(rng: np.random.Generator, n: int, base: float = 4.0, octaves: int = 5) -> Array:
    """1-D fractal noise in [0, 1], length n."""
    return _fractal(rng, 1, n, base=base, octaves=octaves)[0]


def _lut(stops: Sequence[tuple[float, Color]]) -> Array:
    """A 256x3 uint8 colour ramp through ``(position, rgb)`` stops."""
    pos = np.array([p for p, _ in stops], _F32)
    cols = np.array([c for _, c in stops], _F32)
    x = np.linspace(0, 1, 256, dtype=_F32)
    return np.stack([np.interp(x, pos, cols[:, k]) for k in range(3)], 1).clip(0, 255).astype(np.uint8)


_SYL_C = "b c d f g h j k l m n p r s t v w z br st tr ch sh th pl gr cl".split()
_SYL_V = "a e i o u a e o ai ea ou io".split()


def _word(rng: np.random.Generator, nsyl: int | None = None) -> str:
    n = int(rng.integers(1, 4)) if nsyl is None else nsyl
    w = "".join(str(rng.choice(_SYL_C)) + str(rng.choice(_SYL_V)) for _ in range(n))
    if rng.random() < 0.4:
        w += str(rng.choice(list("nrstlm")))
    return w


def _words(rng: np.random.Generator, n: int) -> str:
    return " ".join(_word(rng) for _ in range(n))


def _gauss_sprite(radius: int) -> Array:
    """A 2-D gaussian of peak 1 covering about +-3 sigma, float32."""
    r = max(1, int(radius))
    ax = np.arange(-r, r + 1, dtype=_F32)
    g = np.exp(-(ax ** 2) / (2 * (r / 3.0) ** 2))
    return np.outer(g, g).astype(_F32)


def _add_sprite(acc: Array, sprite: Array, cx: float, cy: float, color: Array) -> None:
    """Add ``sprite * color`` centred at (cx, cy) into float image ``acc`` (clipped)."""
    h, w = acc.shape[:2]
    r = sprite.shape[0] // 2
    x0, y0 = int(round(cx)) - r, int(round(cy)) - r
    x1, y1 = x0 + sprite.shape[1], y0 + sprite.shape[0]
    sx0, sy0 = max(0, -x0), max(0, -y0)
    sx1, sy1 = sprite.shape[1] - max(0, x1 - w), sprite.shape[0] - max(0, y1 - h)
    if sx1 <= sx0 or sy1 <= sy0:
        return
    acc[y0 + sy0:y0 + sy1, x0 + sx0:x0 + sx1] += sprite[sy0:sy1, sx0:sx1, None] * color


def _poly(cx: float, cy: float, r: float, n: int, ang: float, star: bool = False,
          aspect: float = 1.0) -> Array:
    """Vertices of a regular polygon / star, as int32 with 4 bits of sub-pixel shift."""
    k = 2 * n if star else n
    a = ang + np.arange(k) * 2 * np.pi / k
    rad = np.full(k, r)
    if star:
        rad[1::2] *= 0.45
    xs = cx + rad * np.cos(a) * aspect
    ys = cy + rad * np.sin(a)
    return (np.stack([xs, ys], 1) * 16).astype(np.int32)


def _put_text(img: Array, text: str, org: tuple[int, int], height: float, color: Color,
              font: int = cv2.FONT_HERSHEY_SIMPLEX, thick: int | None = None) -> int:
    """Draw text whose cap height is about ``height`` px; return its width in px."""
    th = thick if thick is not None else max(1, int(round(height / 9)))
    scale = cv2.getFontScaleFromHeight(font, max(4, int(height)), th)
    cv2.putText(img, text, org, font, scale, color, th, cv2.LINE_AA)
    return cv2.getTextSize(text, font, scale, th)[0][0]


def _text_width(text: str, height: float, font: int = cv2.FONT_HERSHEY_SIMPLEX,
                thick: int | None = None) -> int:
    th = thick if thick is not None else max(1, int(round(height / 9)))
    scale = cv2.getFontScaleFromHeight(font, max(4, int(height)), th)
    return cv2.getTextSize(text, font, scale, th)[0][0]


def _vgradient(h: int, w: int, top: Sequence[float], bottom: Sequence[float]) -> Array:
    u = np.linspace(0, 1, h, dtype=_F32)[:, None, None]
    col = np.asarray(top, _F32) * (1 - u) + np.asarray(bottom, _F32) * u
    return np.broadcast_to(col, (h, w, 3)).clip(0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------
# video content: one class per "shot" family, rendered as a pure function of t
# ---------------------------------------------------------------------------


class _Shot:
    """One shot of a clip; ``render(t, tg)`` with shot-local and global time."""

    def __init__(self, rng: np.random.Generator, W: int, H: int, L: float, index: int, ctx: dict):
        self.W, self.H, self.L, self.index, self.ctx = W, H, L, index, ctx

    def render(self, t: float, tg: float) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError


class _ShapesShot(_Shot):
    """Moving, rotating coloured shapes over a rotating two-colour gradient."""

    def __init__(self, rng, W, H, L, index, ctx):
        super().__init__(rng, W, H, L, index, ctx)
        self.c1 = np.array(_color(rng, v=(0.15, 0.6)), _F32)
        self.c2 = np.array(_color(rng, v=(0.45, 0.95)), _F32)
        self.glow = np.array(_color(rng, s=(0.2, 0.6), v=(0.6, 1.0)), _F32) * 0.6
        self.theta0, self.omega = rng.uniform(0, 2 * np.pi), rng.uniform(-0.7, 0.7)
        self.gp = rng.uniform(-0.6, 0.6, 2), rng.uniform(0.15, 0.6, 2), rng.uniform(0, 6.3, 2)
        sw, sh = max(8, W // 8), max(8, H // 8)
        self.gx, self.gy = np.meshgrid(np.linspace(-1, 1, sw, dtype=_F32),
                                       np.linspace(-H / W, H / W, sh, dtype=_F32))
        self.shapes = []
        for _ in range(int(rng.integers(3, 9))):
            r = H * rng.uniform(0.05, 0.22)
            spd = W * rng.uniform(0.05, 0.35)
            ang = rng.uniform(0, 2 * np.pi)
            self.shapes.append(dict(
                kind=str(rng.choice(["circle", "rect", "tri", "star", "hex", "ring"])),
                color=_color(rng, s=(0.5, 1.0), v=(0.5, 1.0)),
                edge=_color(rng, s=(0.0, 0.5), v=(0.0, 1.0)) if rng.random() < 0.5 else None,
                r=r, x0=rng.uniform(0, W), y0=rng.uniform(0, H),
                vx=spd * math.cos(ang), vy=spd * math.sin(ang),
                a0=rng.uniform(0, 6.3), w=rng.uniform(-2.5, 2.5), aspect=rng.uniform(0.5, 1.8)))

    def render(self, t, tg):
        th = self.theta0 + self.omega * t
        s = np.clip(0.5 + 0.6 * (math.cos(th) * self.gx + math.sin(th) * self.gy), 0, 1)[..., None]
        (px, py), (ax, ay), (ph, pv) = self.gp
        cx, cy = px + ax * math.sin(0.7 * t + ph), py * self.H / self.W + ay * math.sin(0.5 * t + pv) * 0.5
        g = np.exp(-((self.gx - cx) ** 2 + (self.gy - cy) ** 2) / 0.15)[..., None]
        bg = (self.c1 * (1 - s) + self.c2 * s + self.glow * g).clip(0, 255).astype(np.uint8)
        img = cv2.resize(bg, (self.W, self.H), interpolation=cv2.INTER_LINEAR)
        for sh in self.shapes:
            r = sh["r"]
            x = _reflect(sh["x0"] + sh["vx"] * t, r, self.W - r)
            y = _reflect(sh["y0"] + sh["vy"] * t, r, self.H - r)
            a = sh["a0"] + sh["w"] * t
            k = sh["kind"]
            if k in ("circle", "ring"):
                c = (int(x * 16), int(y * 16))
                cv2.circle(img, c, int(r * 16), sh["color"], -1 if k == "circle" else max(2, int(r / 3)),
                           cv2.LINE_AA, shift=4)
                cv2.circle(img, (int((x + r * 0.4 * math.cos(a)) * 16), int((y + r * 0.4 * math.sin(a)) * 16)),
                           int(r * 0.18 * 16), sh["edge"] or (255, 255, 255), -1, cv2.LINE_AA, shift=4)
                continue
            n, star, asp = {"rect": (4, False, sh["aspect"]), "tri": (3, False, 1.0),
                            "star": (5, True, 1.0), "hex": (6, False, 1.0)}[k]
            pts = _poly(x, y, r, n, a, star, 1.0)
            if asp != 1.0:  # rotated rectangle of given aspect
                box = cv2.boxPoints(((x, y), (r * 1.4 * asp, r * 1.4 / asp), math.degrees(a)))
                pts = (box * 16).astype(np.int32)
            cv2.fillPoly(img, [pts], sh["color"], cv2.LINE_AA, shift=4)
            if sh["edge"] is not None:
                cv2.polylines(img, [pts], True, sh["edge"], 2, cv2.LINE_AA, shift=4)
        return img


_PALETTES: dict[str, list[tuple[float, Color]]] = {
    "terrain": [(0.0, (15, 35, 85)), (0.33, (35, 85, 145)), (0.40, (200, 190, 140)), (0.46, (95, 140, 55)),
                (0.62, (45, 95, 35)), (0.78, (110, 100, 85)), (0.9, (170, 165, 160)), (1.0, (245, 245, 250))],
    "forest": [(0.0, (10, 30, 10)), (0.3, (30, 70, 25)), (0.55, (70, 120, 40)), (0.75, (150, 160, 60)),
               (1.0, (220, 210, 120))],
    "desert": [(0.0, (110, 60, 30)), (0.35, (180, 110, 60)), (0.6, (215, 165, 100)), (0.85, (235, 205, 150)),
               (1.0, (250, 235, 200))],
    "clouds": [(0.0, (40, 90, 170)), (0.45, (90, 150, 220)), (0.65, (200, 215, 235)), (1.0, (255, 255, 255))],
    "autumn": [(0.0, (40, 15, 5)), (0.3, (120, 40, 15)), (0.55, (200, 90, 20)), (0.75, (230, 170, 40)),
               (1.0, (250, 230, 150))],
    "ocean": [(0.0, (5, 20, 60)), (0.5, (10, 70, 120)), (0.75, (40, 140, 170)), (0.9, (160, 220, 230)),
              (1.0, (250, 255, 255))],
    "rock": [(0.0, (30, 28, 26)), (0.4, (90, 85, 80)), (0.7, (140, 130, 115)), (1.0, (210, 200, 185))],
}


class _TextureShot(_Shot):
    """Camera pan/zoom/roll over a large coloured fractal 'nature' image."""

    def __init__(self, rng, W, H, L, index, ctx):
        super().__init__(rng, W, H, L, index, ctx)
        bw, bh = int(W * 3), int(H * 3)
        name = str(rng.choice(list(_PALETTES)))
        stops = [(p, tuple(int(np.clip(c + rng.integers(-25, 26), 0, 255)) for c in col))
                 for p, col in _PALETTES[name]]
        lut = _lut(stops)  # type: ignore[arg-type]
        elev = _fractal(rng, bh, bw, base=rng.uniform(2, 5), octaves=7, persistence=rng.uniform(0.45, 0.6))
        if rng.random() < 0.5:  # ridged variant: sharper valleys
            elev = 1 - np.abs(2 * elev - 1)
        detail = _fractal(rng, bh, bw, base=rng.uniform(12, 30), octaves=4)
        img = lut[(elev * 255).astype(np.uint8)].astype(_F32)
        if name != "clouds":
            gy, gx = np.gradient(elev * rng.uniform(150, 400))
            la = rng.uniform(0, 2 * np.pi)
            shade = np.clip(0.85 + 0.5 * (gx * math.cos(la) + gy * math.sin(la)), 0.45, 1.35)
            img *= shade[..., None]
        img *= (0.8 + 0.4 * detail)[..., None]
        self.big = img.clip(0, 255).astype(np.uint8)
        m0, m1 = rng.uniform(0.5, 1.1, 2)
        self.m = (m0, m1)
        mx = 0.55 * max(m0, m1) * (W + 0.1 * H)
        my = 0.55 * max(m0, m1) * (H + 0.1 * W)
        self.c0 = np.array([rng.uniform(mx, bw - mx), rng.uniform(my, bh - my)])
        self.c1 = np.array([rng.uniform(mx, bw - mx), rng.uniform(my, bh - my)])
        d = self.c1 - self.c0  # limit pan speed to ~0.25 frame widths / s
        lim = 0.25 * W * L
        if np.linalg.norm(d) > lim:
            self.c1 = self.c0 + d * lim / np.linalg.norm(d)
        self.rot = np.radians(rng.uniform(-5, 5, 2))

    def render(self, t, tg):
        u = t / max(self.L, 1e-6)
        e = 0.5 * u + 0.5 * _ease(u)
        c = self.c0 + (self.c1 - self.c0) * e
        m = self.m[0] + (self.m[1] - self.m[0]) * e
        th = self.rot[0] + (self.rot[1] - self.rot[0]) * u
        ca, sa = m * math.cos(th), m * math.sin(th)
        hw, hh = self.W / 2, self.H / 2
        M = np.array([[ca, -sa, c[0] - ca * hw + sa * hh], [sa, ca, c[1] - sa * hw - ca * hh]], _F32)
        return cv2.warpAffine(self.big, M, (self.W, self.H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REFLECT101)


class _ScenesShot(_Shot):
    """One procedural scene per shot: landscape, blobs, city street or particles."""

    def __init__(self, rng, W, H, L, index, ctx):
        super().__init__(rng, W, H, L, index, ctx)
        self.sub = str(rng.choice(["landscape", "blobs", "city", "particles"]))
        getattr(self, "_init_" + self.sub)(rng)

    # -- landscape: sky, sun, parallax ridges, clouds
    def _init_landscape(self, rng):
        W, H = self.W, self.H
        top, hor = _color(rng, s=(0.3, 0.8), v=(0.4, 0.9)), _color(rng, s=(0.1, 0.6), v=(0.7, 1.0))
        self.sky = _vgradient(H, W, top, hor)
        self.sun = (rng.uniform(0.1, 0.9) * W, rng.uniform(0.1, 0.45) * H, rng.uniform(0.04, 0.09) * H,
                    rng.uniform(-0.04, 0.04) * W, _color(rng, s=(0.1, 0.5), v=(0.9, 1.0), h=rng.uniform(0.05, 0.17)))
        self.layers = []
        nl = int(rng.integers(3, 6))
        base_col = np.array(_color(rng, s=(0.3, 0.8), v=(0.15, 0.5)), _F32)
        direction = 1 if rng.random() < 0.5 else -1
        for k in range(nl):
            depth = (k + 1) / nl  # 1 = nearest
            col = base_col * depth + np.array(hor, _F32) * (1 - depth) * 0.85
            wl = W * 4
            prof = _noise1d(rng, wl, base=rng.uniform(3, 9), octaves=6)
            y = H * (0.4 + 0.5 * depth) - prof * H * rng.uniform(0.2, 0.45)
            self.layers.append((y.astype(_F32), tuple(int(c) for c in col), direction * W * 0.05 * (0.3 + 2.5 * depth ** 2),
                                rng.uniform(0, W)))
        self.clouds = [(rng.uniform(0, W), rng.uniform(0.05, 0.35) * H, rng.uniform(0.06, 0.18) * W,
                        rng.uniform(0.02, 0.05) * H, rng.uniform(0.01, 0.04) * W * direction) for _ in range(int(rng.integers(0, 5)))]

    def _render_landscape(self, t):
        W, H = self.W, self.H
        img = self.sky.copy()
        sx, sy, sr, sv, sc = self.sun
        cv2.circle(img, (int((sx + sv * t) * 16), int(sy * 16)), int(sr * 16), sc, -1, cv2.LINE_AA, shift=4)
        for cx, cy, rx, ry, v in self.clouds:
            x = (cx + v * t) % (W + 2 * rx) - rx
            cv2.ellipse(img, (int(x), int(cy)), (int(rx), int(ry)), 0, 0, 360, (235, 235, 240), -1, cv2.LINE_AA)
        xs = np.arange(0, W + 8, 8)
        for y, col, v, off in self.layers:
            o = (off + v * t) % (len(y) - W - 9)
            ys = y[(o + xs).astype(int)]
            pts = np.concatenate([np.stack([xs, ys], 1), [[W, H], [0, H]]]).astype(np.int32)
            cv2.fillPoly(img, [pts], col, cv2.LINE_AA)
        return img

    # -- blobs: soft coloured gaussians drifting, plus a few sharp dots
    def _init_blobs(self, rng):
        W, H = self.W, self.H
        self.bg = np.array(_color(rng, s=(0.2, 0.8), v=(0.05, 0.9)), _F32)
        sw, sh = max(8, W // 4), max(8, H // 4)
        self.X, self.Y = np.meshgrid(np.arange(sw, dtype=_F32) * 4, np.arange(sh, dtype=_F32) * 4)
        self.blobs = [(np.array(_color(rng, s=(0.4, 1.0), v=(0.4, 1.0)), _F32) * rng.choice([-0.6, 0.8, 1.0]),
                       rng.uniform(0.06, 0.22) * H, rng.uniform(0.1, 0.9, 2) * (W, H), rng.uniform(0.05, 0.4, 2) * (W, H),
                       rng.uniform(0.2, 1.2, 2), rng.uniform(0, 6.3, 2)) for _ in range(int(rng.integers(5, 13)))]
        self.dots = [(_color(rng, v=(0.7, 1.0)), rng.uniform(0.01, 0.04) * H, rng.uniform(0, W), rng.uniform(0, H),
                      rng.uniform(-0.3, 0.3) * W, rng.uniform(-0.3, 0.3) * H) for _ in range(int(rng.integers(2, 8)))]

    def _render_blobs(self, t):
        acc = np.broadcast_to(self.bg, self.X.shape + (3,)).copy()
        for col, sig, c, a, f, ph in self.blobs:
            cx = c[0] + a[0] * math.sin(f[0] * t + ph[0])
            cy = c[1] + a[1] * math.sin(f[1] * t + ph[1])
            g = np.exp(-((self.X - cx) ** 2 + (self.Y - cy) ** 2) / (2 * sig * sig))
            acc += g[..., None] * col
        img = cv2.resize(acc.clip(0, 255).astype(np.uint8), (self.W, self.H), interpolation=cv2.INTER_LINEAR)
        for col, r, x0, y0, vx, vy in self.dots:
            x, y = _reflect(x0 + vx * t, r, self.W - r), _reflect(y0 + vy * t, r, self.H - r)
            cv2.circle(img, (int(x * 16), int(y * 16)), int(r * 16), col, -1, cv2.LINE_AA, shift=4)
        return img

    # -- city: skyline strip panning slowly, road with cars both ways
    def _init_city(self, rng):
        W, H = self.W, self.H
        self.horizon = int(H * rng.uniform(0.55, 0.7))
        sky = _vgradient(self.horizon, W * 2, _color(rng, s=(0.3, 0.7), v=(0.5, 0.95)),
                         _color(rng, s=(0.1, 0.5), v=(0.75, 1.0)))
        strip = np.zeros((H, W * 2, 3), np.uint8)
        strip[:self.horizon] = sky
        x = 0
        while x < W * 2:
            bw = int(rng.uniform(0.05, 0.14) * W)
            bh = int(rng.uniform(0.15, 0.5) * H)
            col = _color(rng, s=(0.0, 0.35), v=(0.25, 0.7))
            cv2.rectangle(strip, (x, self.horizon - bh), (x + bw - 2, self.horizon), col, -1)
            wc = tuple(min(255, c + 60) for c in col)
            for wy in range(self.horizon - bh + 4, self.horizon - 6, 9):
                for wx in range(x + 3, x + bw - 6, 7):
                    if rng.random() < 0.6:
                        cv2.rectangle(strip, (wx, wy), (wx + 3, wy + 4), wc, -1)
            x += bw + int(rng.integers(0, 6))
        road = _color(rng, s=(0.0, 0.1), v=(0.2, 0.4))
        strip[self.horizon:] = road
        self.strip = strip
        self.pan = rng.uniform(-0.05, 0.05) * W
        self.pan0 = rng.uniform(0.2, 0.8) * W
        lanes = [self.horizon + (H - self.horizon) * f for f in (0.3, 0.65)]
        self.lanes = lanes
        self.cars = []
        for _ in range(int(rng.integers(3, 9))):
            lane = int(rng.integers(0, 2))
            v = rng.uniform(0.15, 0.5) * W * (1 if lane else -1)
            self.cars.append((lane, v, rng.uniform(-1.5, self.L), rng.uniform(0.12, 0.22) * W,
                              _color(rng, s=(0.5, 1.0), v=(0.5, 1.0))))

    def _render_city(self, t):
        W = self.W
        o = int(self.pan0 + self.pan * t) % W
        img = np.ascontiguousarray(self.strip[:, o:o + W])
        dash = int((t * 0.3 * W) % 40)
        ym = int((self.lanes[0] + self.lanes[1]) / 2)
        for x in range(-dash, W, 40):
            cv2.rectangle(img, (x, ym - 1), (x + 20, ym + 1), (230, 230, 230), -1)
        for lane, v, t0, ln, col in self.cars:
            x = (-ln if v > 0 else W + ln) + v * (t - t0)
            if x < -ln * 1.5 or x > W + ln * 1.5:
                continue
            y = self.lanes[lane]
            h = ln * 0.32
            cv2.rectangle(img, (int(x - ln / 2), int(y - h)), (int(x + ln / 2), int(y)), col, -1, cv2.LINE_AA)
            cv2.rectangle(img, (int(x - ln / 4), int(y - h * 1.7)), (int(x + ln / 4), int(y - h)),
                          tuple(int(c * 0.7) for c in col), -1, cv2.LINE_AA)
            for wx in (x - ln * 0.3, x + ln * 0.3):
                cv2.circle(img, (int(wx), int(y)), max(2, int(h * 0.35)), (20, 20, 20), -1, cv2.LINE_AA)
        return img

    # -- particles: snow/rain/confetti over a gradient with a slowly turning polygon
    def _init_particles(self, rng):
        W, H = self.W, self.H
        self.bg = _vgradient(H, W, _color(rng, v=(0.1, 0.6)), _color(rng, v=(0.3, 0.9)))
        n = int(rng.integers(60, 220))
        self.p = np.stack([rng.uniform(0, W, n), rng.uniform(0, H, n), rng.uniform(-0.1, 0.1, n) * W + rng.uniform(-0.1, 0.1) * W,
                           rng.uniform(0.05, 0.4, n) * H, rng.uniform(1, 4, n)], 1)
        self.pcol = [_color(rng, s=(0.0, 1.0), v=(0.7, 1.0)) for _ in range(6)]
        self.big = (rng.uniform(0.3, 0.7) * W, rng.uniform(0.3, 0.7) * H, rng.uniform(0.2, 0.4) * H,
                    int(rng.integers(3, 8)), rng.uniform(-0.8, 0.8), _color(rng, v=(0.2, 0.8)))

    def _render_particles(self, t):
        W, H = self.W, self.H
        img = self.bg.copy()
        bx, by, br, bn, bw, bc = self.big
        cv2.fillPoly(img, [_poly(bx, by, br, bn, bw * t)], bc, cv2.LINE_AA, shift=4)
        xs = (self.p[:, 0] + self.p[:, 2] * t) % W
        ys = (self.p[:, 1] + self.p[:, 3] * t) % H
        for i in range(len(xs)):
            cv2.circle(img, (int(xs[i] * 16), int(ys[i] * 16)), int(self.p[i, 4] * 16), self.pcol[i % 6], -1,
                       cv2.LINE_AA, shift=4)
        return img

    def render(self, t, tg):
        return getattr(self, "_render_" + self.sub)(t)


def _talk_ctx(rng: np.random.Generator, W: int, H: int) -> dict:
    """Per-video studio, presenter and graphics shared by all 'talk' shots."""
    skins = [(241, 194, 160), (224, 172, 120), (198, 134, 90), (141, 85, 54), (90, 56, 38), (255, 219, 190)]
    skin = tuple(int(np.clip(c + rng.integers(-12, 13), 0, 255)) for c in skins[int(rng.integers(len(skins)))])
    ctx: dict[str, Any] = dict(
        wall=_color(rng, s=(0.1, 0.5), v=(0.3, 0.8)),
        floor=_color(rng, s=(0.1, 0.4), v=(0.15, 0.4)),
        accent=_color(rng, s=(0.6, 1.0), v=(0.5, 0.9)),
        skin=skin, hair=_color(rng, s=(0.2, 0.7), v=(0.05, 0.5)), clothes=_color(rng, s=(0.2, 0.8), v=(0.15, 0.7)),
        sway=(rng.uniform(0.08, 0.2), rng.uniform(0.25, 0.45), rng.uniform(0, 6.3)),
        px=rng.uniform(0.4, 0.6), mouth_f=rng.uniform(3.0, 5.0),
        blink=rng.uniform(2.5, 5.0), objects=[],
        setups=[(1.0, 0.5, 0.5), (rng.uniform(1.35, 1.6), 0.5, 0.36), (rng.uniform(1.1, 1.25), rng.uniform(0.6, 0.68), 0.45)],
        step=int(rng.integers(1, 3)), off=int(rng.integers(0, 3)), bg_cache={},
    )
    for _ in range(int(rng.integers(4, 9))):
        kind = str(rng.choice(["shelf", "window", "frame", "plant", "lamp"]))
        ctx["objects"].append((kind, rng.uniform(-0.2, 1.2), rng.uniform(0.1, 0.6), rng.uniform(0.08, 0.25),
                               rng.uniform(0.08, 0.3), _color(rng, s=(0.2, 0.9), v=(0.3, 1.0))))
    # lower third and ticker, rendered once in frame coordinates
    lt_h, lt_w = int(H * 0.16), int(W * 0.62)
    lt = np.zeros((lt_h, lt_w, 3), np.uint8)
    lt[:] = ctx["accent"]
    lt[int(lt_h * 0.62):] = (245, 245, 245)
    name = f"{_word(rng, 2).title()} {_word(rng, 2).title()}"
    _put_text(lt, name, (int(lt_h * 0.25), int(lt_h * 0.47)), lt_h * 0.32, (255, 255, 255))
    _put_text(lt, _words(rng, 4), (int(lt_h * 0.25), int(lt_h * 0.9)), lt_h * 0.2, (30, 30, 30))
    ctx["lower_third"] = lt
    tk_h = max(10, int(H * 0.07))
    text = "   +++   ".join(_words(rng, int(rng.integers(3, 7))).upper() for _ in range(8))
    tw = _text_width(text, tk_h * 0.55) + W
    tk = np.zeros((tk_h, tw + W, 3), np.uint8)
    tk[:] = tuple(int(c * 0.35) for c in ctx["accent"])
    _put_text(tk, text, (W // 2, int(tk_h * 0.78)), tk_h * 0.55, (255, 255, 255))
    ctx["ticker"], ctx["ticker_speed"] = tk, rng.uniform(0.08, 0.15) * W
    ctx["logo"] = (_word(rng, 1).upper()[:3], _color(rng, s=(0.5, 1.0), v=(0.6, 1.0)))
    return ctx


class _TalkShot(_Shot):
    """Talking head: static blurred studio, slowly swaying presenter, lower third, ticker."""

    def __init__(self, rng, W, H, L, index, ctx):
        super().__init__(rng, W, H, L, index, ctx)
        self.setup = (ctx["off"] + index * ctx["step"]) % len(ctx["setups"])
        self.show_lt = index % 3 != 2

    def _map(self, sx: float, sy: float) -> tuple[float, float]:
        z, cx, cy = self.ctx["setups"][self.setup]
        return (sx - cx) * z * self.W + self.W / 2, (sy - cy) * z * self.H + self.H / 2

    def _background(self) -> Array:
        cache = self.ctx["bg_cache"]
        if self.setup in cache:
            return cache[self.setup]
        W, H, c = self.W, self.H, self.ctx
        z = c["setups"][self.setup][0]
        img = np.zeros((H, W, 3), np.uint8)
        img[:] = c["wall"]
        _, y0 = self._map(-1, 0.78)
        cv2.rectangle(img, (0, int(y0)), (W, H), c["floor"], -1)
        for kind, sx, sy, sw, sh, col in c["objects"]:
            a, b = self._map(sx, sy)
            e, f = self._map(sx + sw, sy + sh)
            p0, p1 = (int(a), int(b)), (int(e), int(f))
            if kind == "window":
                cv2.rectangle(img, p0, p1, (220, 235, 250), -1)
                cv2.rectangle(img, p0, p1, (90, 80, 70), max(2, int(3 * z)))
                cv2.line(img, ((p0[0] + p1[0]) // 2, p0[1]), ((p0[0] + p1[0]) // 2, p1[1]), (90, 80, 70), max(2, int(3 * z)))
            elif kind == "shelf":
                for k in range(3):
                    yy = int(b + (f - b) * (k + 1) / 3)
                    cv2.rectangle(img, (p0[0], yy - 3), (p1[0], yy), (100, 70, 50), -1)
                    xx = p0[0]
                    while xx < p1[0] - 4:
                        bw = max(2, int((e - a) * 0.06))
                        cv2.rectangle(img, (xx, yy - int((f - b) * 0.25)), (xx + bw, yy - 3),
                                      tuple((np.array(col) * (0.5 + 0.5 * ((xx * 7) % 5) / 4)).astype(int).tolist()), -1)
                        xx += bw + 1
            elif kind == "frame":
                cv2.rectangle(img, p0, p1, col, -1)
                cv2.rectangle(img, p0, p1, (40, 30, 20), max(2, int(4 * z)))
            elif kind == "plant":
                cx, cy = (p0[0] + p1[0]) // 2, p1[1]
                for k in range(7):
                    ang = -90 + (k - 3) * 22
                    ex = int(cx + (e - a) * 0.6 * math.cos(math.radians(ang)))
                    ey = int(cy + (f - b) * 0.9 * math.sin(math.radians(ang)))
                    cv2.ellipse(img, ((cx + ex) // 2, (cy + ey) // 2), (max(2, int((e - a) * 0.12)), max(3, int((f - b) * 0.45))),
                                ang + 90, 0, 360, (40, 110 + 10 * k, 40), -1, cv2.LINE_AA)
            else:  # lamp
                cv2.circle(img, ((p0[0] + p1[0]) // 2, p0[1]), max(3, int((e - a) * 0.3)), (255, 240, 200), -1, cv2.LINE_AA)
        # desk in front of the presenter
        a, b = self._map(0.15, 0.86)
        e, f = self._map(0.85, 1.2)
        cv2.rectangle(img, (int(a), int(b)), (int(e), int(f)), tuple(int(x * 0.6) for x in c["floor"]), -1)
        sig = max(1.0, 2.5 * z * W / 480)
        img = cv2.GaussianBlur(img, (0, 0), sig)
        cache[self.setup] = img
        return img

    def render(self, t, tg):
        W, H, c = self.W, self.H, self.ctx
        img = self._background().copy()
        z = c["setups"][self.setup][0]
        f1, f2, ph = c["sway"]
        dx = 0.012 * math.sin(2 * math.pi * f1 * tg + ph) + 0.005 * math.sin(2 * math.pi * f2 * tg)
        dy = 0.004 * math.sin(2 * math.pi * f2 * 0.7 * tg + ph)
        tilt = 3 * math.sin(2 * math.pi * f1 * 0.8 * tg + 1.0)
        # torso (clothes) and neck
        tx, ty = self._map(c["px"] + dx * 0.5, 0.95)
        cv2.ellipse(img, (int(tx), int(ty)), (int(0.2 * z * W), int(0.32 * z * H)), 0, 180, 360, c["clothes"], -1, cv2.LINE_AA)
        nx, ny = self._map(c["px"] + dx * 0.7, 0.6)
        cv2.rectangle(img, (int(nx - 0.035 * z * W), int(ny)), (int(nx + 0.035 * z * W), int(ty - 0.25 * z * H)),
                      tuple(int(v * 0.85) for v in c["skin"]), -1)
        # head
        hx, hy = self._map(c["px"] + dx, 0.45 + dy)
        ax, ay = int(0.065 * z * W), int(0.16 * z * H)
        cv2.ellipse(img, (int(hx), int(hy)), (ax, ay), tilt, 0, 360, c["skin"], -1, cv2.LINE_AA)
        cv2.ellipse(img, (int(hx), int(hy - ay * 0.25)), (int(ax * 1.08), int(ay * 0.85)), tilt, 180, 360, c["hair"], -1, cv2.LINE_AA)
        blink = (tg % c["blink"]) < 0.12
        for s in (-1, 1):
            ex, ey = int(hx + s * ax * 0.4), int(hy - ay * 0.05)
            cv2.ellipse(img, (ex, ey), (max(1, int(ax * 0.14)), 1 if blink else max(1, int(ay * 0.07))), 0, 0, 360,
                        (30, 25, 25), -1, cv2.LINE_AA)
        talk = max(0.0, math.sin(2 * math.pi * 0.37 * tg + ph)) > 0.1 or math.sin(2 * math.pi * 0.11 * tg) > 0.5
        op = abs(math.sin(2 * math.pi * c["mouth_f"] * tg)) if talk else 0.05
        cv2.ellipse(img, (int(hx), int(hy + ay * 0.5)), (max(2, int(ax * 0.3)), max(1, int(ay * 0.16 * op))), 0, 0, 360,
                    (90, 30, 35), -1, cv2.LINE_AA)
        # graphics in frame coordinates
        if self.show_lt and t > 0.6:
            lt = c["lower_third"]
            y0, x0 = int(H * 0.7), int(W * 0.05)
            roi = img[y0:y0 + lt.shape[0], x0:x0 + lt.shape[1]]
            cv2.addWeighted(lt[:roi.shape[0], :roi.shape[1]], 0.88, roi, 0.12, 0, dst=roi)
        tk = c["ticker"]
        o = int(c["ticker_speed"] * tg) % (tk.shape[1] - W)
        img[H - tk.shape[0]:] = tk[:, o:o + W]
        label, lc = c["logo"]
        cv2.rectangle(img, (int(W * 0.88), int(H * 0.05)), (int(W * 0.97), int(H * 0.13)), lc, -1)
        _put_text(img, label, (int(W * 0.89), int(H * 0.115)), H * 0.04, (255, 255, 255))
        return img


def _text_ctx(rng: np.random.Generator, W: int, H: int) -> dict:
    """Per-video presentation theme shared by all 'text' slides."""
    theme = int(rng.integers(0, 3))
    if theme == 0:  # light
        bg, fg = _color(rng, s=(0.0, 0.08), v=(0.92, 1.0)), _color(rng, s=(0.0, 0.3), v=(0.05, 0.25))
    elif theme == 1:  # dark (code editor)
        bg, fg = _color(rng, s=(0.0, 0.3), v=(0.08, 0.2)), _color(rng, s=(0.0, 0.2), v=(0.8, 0.95))
    else:  # coloured
        bg, fg = _color(rng, s=(0.4, 0.8), v=(0.3, 0.6)), (250, 250, 250)
    fonts = [cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX]
    return dict(bg=bg, fg=fg, accent=_color(rng, s=(0.6, 1.0), v=(0.6, 1.0)), font=fonts[int(rng.integers(len(fonts)))],
                lh=rng.uniform(0.065, 0.09))


class _TextShot(_Shot):
    """A slide or scrolling document rendered with cv2.putText, with a moving cursor."""

    def __init__(self, rng, W, H, L, index, ctx):
        super().__init__(rng, W, H, L, index, ctx)
        self.mode = str(rng.choice(["scroll", "build", "static"], p=[0.45, 0.35, 0.2]))
        ch = H * 3 if self.mode == "scroll" else H
        lh = max(8, int(H * ctx["lh"]))
        canvas = np.zeros((ch, W, 3), np.uint8)
        canvas[:] = ctx["bg"]
        font, fg, acc = ctx["font"], ctx["fg"], ctx["accent"]
        y = int(lh * 1.6)
        _put_text(canvas, _words(rng, int(rng.integers(2, 5))).title(), (int(W * 0.05), y), lh * 0.75, acc, font)
        cv2.rectangle(canvas, (int(W * 0.05), y + lh // 3), (int(W * 0.5), y + lh // 3 + 2), acc, -1)
        y += int(lh * 1.3)
        self.rows = [y]
        while y < ch - lh:
            r = rng.random()
            if r < 0.12 and y + 4 * lh < ch:  # bar chart
                n = int(rng.integers(3, 8))
                bw = int(W * 0.5 / n)
                for k in range(n):
                    bh = int(rng.uniform(0.3, 1.0) * 3 * lh)
                    cv2.rectangle(canvas, (int(W * 0.1) + k * bw, y + 3 * lh - bh), (int(W * 0.1) + (k + 1) * bw - 3, y + 3 * lh),
                                  _color(rng, v=(0.5, 1.0)), -1)
                y += 4 * lh
            elif r < 0.2:  # highlight box
                cv2.rectangle(canvas, (int(W * 0.05), y - int(lh * 0.8)), (int(W * 0.95), y + int(lh * 0.3)),
                              tuple(int(0.3 * a + 0.7 * b) for a, b in zip(acc, ctx["bg"])), -1)
                _put_text(canvas, _words(rng, int(rng.integers(3, 7))), (int(W * 0.08), y), lh * 0.45, fg, font)
                y += int(lh * 1.4)
            elif r < 0.3:  # blank
                y += lh // 2
            else:  # bullet / code line
                code = rng.random() < 0.3
                indent = int(W * (0.05 + 0.04 * int(rng.integers(0, 3)) if code else 0.1))
                if not code:
                    cv2.circle(canvas, (int(W * 0.07), y - lh // 5), max(2, lh // 9), acc, -1, cv2.LINE_AA)
                line, maxw = _word(rng), W * 0.9 - indent
                while True:
                    nxt = line + " " + _word(rng)
                    if _text_width(nxt, lh * 0.45, font) > maxw or rng.random() < 0.08:
                        break
                    line = nxt
                col = (tuple(int(v) for v in _color(rng, s=(0.4, 0.8), v=(0.6, 0.9))) if code else fg)
                _put_text(canvas, line, (indent, y), lh * 0.45, col, cv2.FONT_HERSHEY_PLAIN if code else font)
                y += lh
            self.rows.append(y)
        self.canvas = canvas
        if self.mode == "scroll":  # window chrome of a screen recording
            self.chrome = max(6, int(H * 0.06))
        self.cur = (rng.uniform(0.2, 0.8, 2), rng.uniform(0.1, 0.35, 2), rng.uniform(0.2, 0.9, 2), rng.uniform(0, 6.3, 2))
        self.build_dt = rng.uniform(0.4, 1.0)
        self.zoom, self.focus = rng.uniform(0.1, 0.3), rng.uniform(0.2, 0.8, 2)

    def render(self, t, tg):
        W, H = self.W, self.H
        if self.mode == "scroll":
            u = t / max(self.L, 1e-6)
            steps = 4
            e = 0.4 * u + 0.6 * (math.floor(u * steps) + _ease((u * steps) % 1.0 * 1.6)) / steps
            o = int((self.canvas.shape[0] - H) * min(e, 1.0))
            img = self.canvas[o:o + H].copy()
            img[:self.chrome] = (60, 60, 66)
            for k in range(3):
                cv2.circle(img, (self.chrome * (k + 1), self.chrome // 2), max(2, self.chrome // 4),
                           [(240, 90, 80), (240, 190, 60), (90, 200, 90)][k], -1, cv2.LINE_AA)
        elif self.mode == "build":
            img = self.canvas.copy()
            k = 1 + int(t / self.build_dt)
            if k < len(self.rows):
                img[self.rows[k - 1] + max(2, H // 60):] = self.ctx["bg"]
        else:  # static slide: slow zoom towards a point, like a presenter's camera move
            z = 1.0 + self.zoom * t / max(self.L, 1e-6)
            fx, fy = self.focus[0] * W, self.focus[1] * H
            M = np.array([[z, 0, fx * (1 - z)], [0, z, fy * (1 - z)]], _F32)
            img = cv2.warpAffine(self.canvas, M, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        c, a, f, ph = self.cur
        x = W * (c[0] + a[0] * math.sin(f[0] * t + ph[0]))
        y = H * (c[1] + a[1] * math.sin(f[1] * t + ph[1]))
        s = max(6, H * 0.05)
        pts = np.array([[x, y], [x, y + s], [x + s * 0.28, y + s * 0.75], [x + s * 0.65, y + s * 0.7]], np.int32)
        cv2.fillPoly(img, [pts], (255, 255, 255), cv2.LINE_AA)
        cv2.polylines(img, [pts], True, (0, 0, 0), 1, cv2.LINE_AA)
        return img


def _dark_ctx(rng: np.random.Generator, W: int, H: int) -> dict:
    """Sensor-noise bank shared by 'dark' shots (cycled by frame time)."""
    return dict(noise=[rng.normal(0, 1.8, (H, W, 3)).astype(_F32) for _ in range(4)])


class _DarkShot(_Shot):
    """Night footage: near-black sky and silhouettes, dim moving lights, fades to black."""

    def __init__(self, rng, W, H, L, index, ctx):
        super().__init__(rng, W, H, L, index, ctx)
        hor = int(H * rng.uniform(0.5, 0.75))
        top = (rng.uniform(1, 4), rng.uniform(1, 5), rng.uniform(4, 14))
        low = (rng.uniform(6, 16), rng.uniform(6, 14), rng.uniform(10, 24))
        base = np.zeros((H, W, 3), np.uint8)
        base[:hor] = _vgradient(hor, W, top, low)
        base[hor:] = (3, 3, 4)
        for _ in range(int(rng.integers(5, 40))):
            v = int(rng.integers(20, 80))
            base[int(rng.integers(0, hor)), int(rng.integers(0, W))] = (v, v, int(v * 1.1))
        xs = np.arange(0, W + 8, 8)
        prof = hor - _noise1d(rng, len(xs), base=rng.uniform(2, 8)) * H * rng.uniform(0.05, 0.3)
        if rng.random() < 0.6:  # blocky skyline
            prof = np.repeat(prof[::3], 3)[:len(xs)]
        pts = np.concatenate([np.stack([xs, prof], 1), [[W, H], [0, H]]]).astype(np.int32)
        cv2.fillPoly(base, [pts], (2, 2, 3))
        for _ in range(int(rng.integers(0, 8))):
            x, y = int(rng.uniform(0, W)), int(rng.uniform(hor - 0.2 * H, hor))
            cv2.rectangle(base, (x, y), (x + 3, y + 4), (int(rng.integers(30, 70)), int(rng.integers(25, 55)), 15), -1)
        self.base = base.astype(_F32)
        self.road = hor + (H - hor) * rng.uniform(0.3, 0.7)
        self.lamps = [(rng.uniform(0, W), rng.uniform(hor - 0.25 * H, hor), _gauss_sprite(H * rng.uniform(0.05, 0.12)),
                       np.array([rng.uniform(60, 110), rng.uniform(40, 70), rng.uniform(10, 25)], _F32),
                       rng.uniform(5, 13), rng.uniform(0, 0.25)) for _ in range(int(rng.integers(0, 4)))]
        self.cars = [(rng.uniform(-0.5, 1.5) * W, rng.uniform(0.1, 0.35) * W * rng.choice([-1, 1]),
                      self.road + rng.uniform(-0.05, 0.05) * H, _gauss_sprite(H * rng.uniform(0.03, 0.07)),
                      rng.uniform(0.6, 1.2)) for _ in range(int(rng.integers(1, 5)))]
        self.torch = (rng.uniform(0.2, 0.8, 2), rng.uniform(0.1, 0.3, 2), rng.uniform(0.3, 1.2, 2),
                      _gauss_sprite(H * rng.uniform(0.15, 0.3)), rng.uniform(15, 45)) if rng.random() < 0.6 else None
        self.fi, self.fo = rng.uniform(0.4, 1.5), rng.uniform(0.4, 1.5)
        self.hold = min(rng.uniform(0.2, 0.8), L * 0.2)

    def render(self, t, tg):
        W, H = self.W, self.H
        acc = self.base.copy()
        for x, y, spr, col, f, fl in self.lamps:
            _add_sprite(acc, spr, x, y, col * (1 - fl + fl * math.sin(2 * math.pi * f * tg)))
        for x0, v, y, spr, gain in self.cars:
            x = (x0 + v * t) % (2 * W) - W / 2
            col = np.array([120, 115, 95], _F32) * gain if v > 0 else np.array([110, 15, 10], _F32) * gain
            for dx in (-spr.shape[0] * 0.6, spr.shape[0] * 0.6):
                _add_sprite(acc, spr, x + dx, y, col)
        if self.torch is not None:
            c, a, f, spr, g = self.torch
            _add_sprite(acc, spr, W * (c[0] + a[0] * math.sin(f[0] * t)), H * (c[1] + 0.4 + a[1] * math.sin(f[1] * t + 1)),
                        np.array([g, g * 0.9, g * 0.7], _F32))
        fade = min(1.0, t / self.fi, (self.L - self.hold - t) / self.fo)
        fade = max(0.0, fade)
        noise = self.ctx["noise"][int(tg * 25) % len(self.ctx["noise"])]
        acc *= fade
        acc += noise * (0.3 + 0.7 * fade)
        return acc.clip(0, 255).astype(np.uint8)


@dataclass(frozen=True)
class _KindSpec:
    shot: type
    shot_len: tuple[float, float]
    ctx: Callable[[np.random.Generator, int, int], dict] | None = None


_KINDS: dict[str, _KindSpec] = {
    "shapes": _KindSpec(_ShapesShot, (3.0, 8.0)),
    "texture": _KindSpec(_TextureShot, (4.0, 9.0)),
    "scenes": _KindSpec(_ScenesShot, (2.0, 6.0)),
    "talk": _KindSpec(_TalkShot, (5.0, 14.0), _talk_ctx),
    "text": _KindSpec(_TextShot, (3.0, 7.0), _text_ctx),
    "dark": _KindSpec(_DarkShot, (4.0, 9.0), _dark_ctx),
}


class _Renderer:
    """Frames of one synthetic clip as a pure function of time (shots built lazily)."""

    def __init__(self, kind: str, seed: int, size: tuple[int, int], duration: float):
        if kind not in _KINDS:
            raise ValueError(f"unknown video kind {kind!r}; expected one of {VIDEO_KINDS}")
        self.spec = _KINDS[kind]
        self.W, self.H = int(size[0]), int(size[1])
        rng = _rng(seed, "video", kind)
        self.ctx = self.spec.ctx(_rng(seed, "video-ctx", kind), self.W, self.H) if self.spec.ctx else {}
        self.starts: list[float] = []
        self.shots: list[tuple[float, int]] = []
        t = 0.0
        while t < duration or not self.shots:
            L = float(rng.uniform(*self.spec.shot_len))
            self.starts.append(t)
            self.shots.append((L, int(rng.integers(0, 2 ** 62))))
            t += L
        self._cur: tuple[int, _Shot] | None = None

    def frame(self, t: float) -> Array:
        i = max(0, bisect_right(self.starts, t) - 1)
        if self._cur is None or self._cur[0] != i:
            L, s = self.shots[i]
            shot = self.spec.shot(np.random.default_rng(s), self.W, self.H, L, i, self.ctx)
            self._cur = (i, shot)
        img = self._cur[1].render(t - self.starts[i], t)
        return np.ascontiguousarray(img[:self.H, :self.W])

    @property
    def cuts(self) -> list[float]:
        return self.starts[1:]


@lru_cache(maxsize=8)
def _cached_renderer(kind: str, seed: int, size: tuple[int, int], horizon: float) -> _Renderer:
    return _Renderer(kind, seed, size, horizon)


def render_frame(kind: str, seed: int, t: float, size: tuple[int, int] = (480, 270)) -> Array:
    """One RGB frame (H, W, 3) uint8 of ``make_video(kind, seed, size)`` at time ``t`` (no encoding).

    Renderers are cached, so sampling several times of one clip is cheap.
    """
    horizon = 60.0 * math.ceil((t + 1.0) / 60.0)
    return _cached_renderer(kind, int(seed), (int(size[0]), int(size[1])), horizon).frame(t).copy()


# ---------------------------------------------------------------------------
# audio synthesis
# ---------------------------------------------------------------------------

_SCALES = {"major": [0, 2, 4, 5, 7, 9, 11], "minor": [0, 2, 3, 5, 7, 8, 10], "dorian": [0, 2, 3, 5, 7, 9, 10],
           "mixolydian": [0, 2, 4, 5, 7, 9, 10], "pentatonic": [0, 2, 4, 7, 9, 12, 14]}


def _midi_hz(m: float) -> float:
    return 440.0 * 2 ** ((m - 69) / 12)


def _tone(f: float, dur: float, sr: int, amps: Array, attack: float, decay: float | None,
          release: float = 0.05, phases: Array | None = None) -> Array:
    """Additive tone with harmonic amplitudes ``amps``; pluck (decay) or sustained envelope."""
    n = int((dur + release) * sr)
    t = np.arange(n, dtype=_F32) / sr
    k = np.arange(1, len(amps) + 1, dtype=_F32)
    keep = k * f < sr * 0.45
    k, a = k[keep], amps[keep]
    ph = np.zeros(len(k), _F32) if phases is None else phases[:len(k)]
    wave = a @ np.sin(2 * np.pi * f * k[:, None] * t[None, :] + ph[:, None]).astype(_F32)
    env = np.minimum(1.0, t / max(attack, 1e-3))
    if decay is not None:
        env *= np.exp(-t / decay)
    rel = np.clip((dur + release - t) / release, 0, 1)
    return (wave * env * rel).astype(_F32)


def _place(out: Array, x: Array, start: float, sr: int, gain: float, pan: float = 0.0) -> None:
    """Mix mono ``x`` into ``out`` (channels, n) at time ``start`` with a constant-power pan."""
    i = int(start * sr)
    if i >= out.shape[1] or i + len(x) <= 0:
        return
    x = x[: out.shape[1] - i]
    if out.shape[0] == 1:
        out[0, i:i + len(x)] += gain * x
    else:
        a = (pan + 1) * np.pi / 4
        out[0, i:i + len(x)] += gain * math.cos(a) * x
        out[1, i:i + len(x)] += gain * math.sin(a) * x


def _music(rng: np.random.Generator, duration: float) -> tuple[Array, int]:
    """Seeded song: chord pad, bass, melody with harmonics and note onsets, drum beat; stereo 44.1 kHz."""
    sr = 44100
    n = int(round(duration * sr))
    out = np.zeros((2, n), _F32)
    bpm = rng.uniform(78, 150)
    beat = 60.0 / bpm
    root = int(rng.integers(45, 58))
    scale = _SCALES[str(rng.choice(list(_SCALES)))]
    progs = [[0, 4, 5, 3], [0, 5, 3, 4], [5, 3, 0, 4], [0, 3, 4, 4], [0, 2, 3, 4], [0, 6, 5, 4]]
    prog = progs[int(rng.integers(len(progs)))]

    def note(deg: int, octave: int = 0) -> float:
        o, d = divmod(deg, len(scale))
        return _midi_hz(root + 12 * (octave + o) + scale[d])

    def timbre(nh: int, slope: float, odd: bool) -> Array:
        k = np.arange(1, nh + 1, dtype=_F32)
        a = 1.0 / k ** slope
        if odd:
            a[1::2] *= 0.15
        return (a / a.sum()).astype(_F32)

    lead = timbre(int(rng.integers(4, 11)), rng.uniform(0.7, 2.0), rng.random() < 0.4)
    pad = timbre(int(rng.integers(3, 7)), rng.uniform(1.2, 2.5), rng.random() < 0.3)
    bass = timbre(int(rng.integers(2, 6)), rng.uniform(1.0, 2.0), False)
    lead_decay = rng.uniform(0.15, 0.8) if rng.random() < 0.6 else None
    pans = rng.uniform(-0.6, 0.6, 3)
    bass_pat = [[0.0, 2.0], [0.0, 1.5, 2.0, 3.5], [0.0, 1.0, 2.0, 3.0], [0.0, 0.75, 2.0, 2.5]][int(rng.integers(4))]
    kick_pat = [[0, 2], [0, 1.5, 2], [0, 1, 2, 3], [0, 2.5]][int(rng.integers(4))]
    hat_p = rng.uniform(0.4, 1.0)
    p_note = rng.uniform(0.45, 0.85)
    snare_noise = rng.standard_normal(int(0.25 * sr)).astype(_F32)
    sos_snare = signal.butter(2, [800, 5000], btype="band", fs=sr, output="sos")
    snare_noise = signal.sosfilt(sos_snare, snare_noise).astype(_F32)
    hat_noise = np.diff(rng.standard_normal(int(0.08 * sr) + 1)).astype(_F32)
    tk = np.arange(int(0.35 * sr), dtype=_F32) / sr
    kick = np.sin(2 * np.pi * np.cumsum(45 + 90 * np.exp(-tk / 0.04)) / sr) * np.exp(-tk / 0.15)
    ts = np.arange(len(snare_noise), dtype=_F32) / sr
    snare = snare_noise * np.exp(-ts / 0.08) * 0.5 + np.sin(2 * np.pi * 190 * ts) * np.exp(-ts / 0.05)
    th = np.arange(len(hat_noise), dtype=_F32) / sr
    hat = hat_noise * np.exp(-th / 0.02)

    bar = 4 * beat
    deg = int(rng.integers(0, 5))
    for b in range(int(math.ceil(duration / bar))):
        t0 = b * bar
        section = (b // 4) % 3
        drums_on = section != 2 or rng.random() < 0.3
        chord = prog[b % len(prog)]
        for d in (chord, chord + 2, chord + 4):
            _place(out, _tone(note(d, 1), bar * 0.95, sr, pad, 0.12, None, 0.2), t0, sr, 0.10, pans[1])
        for p in bass_pat:
            _place(out, _tone(note(chord, -1), beat * 0.45, sr, bass, 0.01, 0.3), t0 + p * beat, sr, 0.35, 0.0)
        step = 0
        while step < 8:
            ln = int(rng.integers(1, 4))
            if rng.random() < p_note:
                deg = int(np.clip(deg + rng.integers(-2, 3), -2, 9))
                if rng.random() < 0.3:
                    deg = chord + int(rng.choice([0, 2, 4]))
                dur = ln * beat / 2
                _place(out, _tone(note(deg, 2), dur * 0.9, sr, lead, 0.01, lead_decay, 0.04),
                       t0 + step * beat / 2, sr, 0.22 * rng.uniform(0.7, 1.0), pans[0])
            step += ln
        if drums_on:
            for p in kick_pat:
                _place(out, kick.astype(_F32), t0 + p * beat, sr, 0.5)
            for p in (1, 3):
                _place(out, snare.astype(_F32), t0 + p * beat, sr, 0.25, pans[2] * 0.3)
            for e in range(8):
                if rng.random() < hat_p:
                    _place(out, hat, t0 + e * beat / 2, sr, 0.12 * (1.0 if e % 2 == 0 else 0.6), pans[2])
    peak = float(np.abs(out).max()) or 1.0
    return (out * (rng.uniform(0.55, 0.9) / peak)).astype(_F32), sr


_VOWELS = [(730, 1090, 2440), (530, 1840, 2480), (270, 2290, 3010), (570, 840, 2410), (300, 870, 2240),
           (660, 1720, 2410), (490, 1350, 1690)]


def _resonator(x: Array, f: float, bw: float, sr: int) -> Array:
    r = math.exp(-math.pi * bw / sr)
    th = 2 * math.pi * f / sr
    return signal.lfilter([1 - r], [1, -2 * r * math.cos(th), r * r], x).astype(_F32)


def _speech(rng: np.random.Generator, duration: float) -> tuple[Array, int]:
    """Formant-filtered glottal pulses and noise consonants in words and phrases; mono 48 kHz."""
    sr = 16000
    n = int(round(duration * sr))
    out = np.zeros(n + sr, _F32)
    f0 = rng.uniform(95, 230)
    fscale = rng.uniform(0.9, 1.05) * (1.0 + (f0 - 95) / 135 * 0.15)
    syl = rng.uniform(0.12, 0.2)
    t = rng.uniform(0.05, 0.4)
    while t < duration:
        nwords = int(rng.integers(3, 11))
        hi, lo = f0 * rng.uniform(1.05, 1.25), f0 * rng.uniform(0.75, 0.95)
        total = nwords * 2.2 * syl
        t_ph = t
        for _ in range(nwords):
            for _ in range(int(rng.integers(1, 4))):
                if rng.random() < 0.6:  # consonant onset
                    cd = rng.uniform(0.03, 0.09)
                    m = int(cd * sr)
                    z = rng.standard_normal(m).astype(_F32)
                    fc = rng.uniform(2000, 6000)
                    z = _resonator(z, fc, fc * 0.3, sr)
                    z *= np.hanning(m).astype(_F32) * (rng.uniform(0.02, 0.06) / (float(np.std(z)) + 1e-9))
                    i = int(t * sr)
                    out[i:i + m] += z[: max(0, len(out) - i)]
                    t += cd * rng.uniform(0.6, 1.0)
                vd = syl * rng.uniform(0.6, 1.5)
                m = int(vd * sr)
                u = (t - t_ph) / max(total, 1e-3)
                fq = (hi + (lo - hi) * min(u, 1.0)) * (1 + 0.08 * np.sin(np.linspace(0, rng.uniform(1, 3), m)))
                fq = fq * (1 + 0.01 * rng.standard_normal(m))
                ph = np.cumsum(fq / sr)
                src = np.diff(np.floor(ph), prepend=0.0).astype(_F32)  # one impulse per cycle
                src = signal.lfilter([1.0], [1, -0.95], src).astype(_F32)
                src += 0.02 * rng.standard_normal(m).astype(_F32)
                v = _VOWELS[int(rng.integers(len(_VOWELS)))]
                y = src
                for k, F in enumerate(v):
                    y = _resonator(y, F * fscale, 60 + 40 * k, sr)
                env = np.minimum(1.0, np.minimum(np.arange(m) / (0.015 * sr), (m - np.arange(m)) / (0.03 * sr))).astype(_F32)
                y = y * env * (rng.uniform(0.12, 0.25) / (float(np.std(y)) + 1e-9))
                i = int(t * sr)
                out[i:i + m] += y[: max(0, len(out) - i)]
                t += vd
            t += rng.uniform(0.02, 0.12)
        t += rng.uniform(0.25, 0.9)
    out = out[:n]
    out += rng.standard_normal(n).astype(_F32) * 1e-4
    peak = float(np.abs(out).max()) or 1.0
    y = signal.resample_poly(out * (rng.uniform(0.5, 0.8) / peak), 3, 1).astype(_F32)
    return y[None, : int(round(duration * 48000))], 48000


def _ambience(rng: np.random.Generator, duration: float) -> tuple[Array, int]:
    """Coloured-noise ambience with gusts and seeded events (birds, drips, crickets); stereo 48 kHz."""
    sr = 48000
    n = max(1, int(round(duration * sr)))
    a, b = rng.standard_normal(n), rng.standard_normal(n)
    c = rng.uniform(0.3, 0.85)
    white = np.stack([a, c * a + math.sqrt(1 - c * c) * b])
    spec = np.fft.rfft(white, axis=1)
    f = np.fft.rfftfreq(n, 1 / sr)
    f[0] = f[1] if n > 1 else 1.0
    alpha, fc = rng.uniform(0.7, 2.0), rng.uniform(600, 6000)
    spec *= (1 / f ** (alpha / 2)) / (1 + (f / fc) ** 2)
    x = np.fft.irfft(spec, n=n, axis=1).astype(_F32)
    x /= float(np.abs(x).max()) or 1.0
    gust = 0.35 + 0.65 * _noise1d(rng, max(2, int(duration * 4)), base=rng.uniform(1, 4), octaves=3)
    x *= np.interp(np.arange(n) / sr, np.linspace(0, duration, len(gust)), gust).astype(_F32)
    x *= 0.5
    event = str(rng.choice(["birds", "drips", "crickets", "thumps"]))
    rate = rng.uniform(0.3, 1.5)
    t = rng.exponential(1 / rate)
    while t < duration:
        if event == "birds":
            for k in range(int(rng.integers(2, 6))):
                d = rng.uniform(0.05, 0.2)
                tt = np.arange(int(d * sr)) / sr
                f1, f2 = rng.uniform(2500, 6000, 2)
                ch = np.sin(2 * np.pi * (f1 * tt + (f2 - f1) * tt ** 2 / (2 * d))) * np.hanning(len(tt))
                _place(x, ch.astype(_F32), t + k * d * 1.3, sr, 0.3, rng.uniform(-0.8, 0.8))
        elif event == "drips":
            tt = np.arange(int(0.15 * sr)) / sr
            ch = np.sin(2 * np.pi * rng.uniform(700, 2000) * tt) * np.exp(-tt / 0.03)
            _place(x, ch.astype(_F32), t, sr, 0.35, rng.uniform(-0.8, 0.8))
        elif event == "crickets":
            tt = np.arange(int(rng.uniform(0.2, 0.6) * sr)) / sr
            ch = np.sin(2 * np.pi * rng.uniform(4000, 5000) * tt) * (np.sin(2 * np.pi * rng.uniform(25, 45) * tt) > 0.3)
            _place(x, (ch * np.hanning(len(tt))).astype(_F32), t, sr, 0.15, rng.uniform(-0.8, 0.8))
        else:
            tt = np.arange(int(0.4 * sr)) / sr
            ch = np.sin(2 * np.pi * rng.uniform(40, 90) * tt) * np.exp(-tt / 0.12)
            _place(x, ch.astype(_F32), t, sr, 0.6, rng.uniform(-0.3, 0.3))
        t += rng.exponential(1 / rate)
    peak = float(np.abs(x).max()) or 1.0
    return (x * (rng.uniform(0.35, 0.7) / peak)).astype(_F32), sr


def synth_audio(kind: str, duration: float, seed: int, *, tag: str = "") -> tuple[Array, int]:
    """Render a soundtrack: ``(samples (channels, n) float32 in [-1, 1], sample_rate)``.

    ``music`` stereo 44.1 kHz, ``speech`` mono 48 kHz, ``noise`` stereo 48 kHz,
    ``silence`` mono 44.1 kHz zeros.  ``tag`` separates streams with the same seed
    (``make_video`` passes the video kind so two kinds never share a soundtrack).
    """
    rng = _rng(seed, "audio", kind, tag)
    if kind == "music":
        return _music(rng, duration)
    if kind == "speech":
        return _speech(rng, duration)
    if kind == "noise":
        return _ambience(rng, duration)
    if kind == "silence":
        return np.zeros((1, int(round(duration * 44100))), _F32), 44100
    raise ValueError(f"unknown audio kind {kind!r}; expected one of {AUDIO_KINDS}")


# ---------------------------------------------------------------------------
# encoding / decoding
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Encoding:
    """Output encoding.  ``crf`` is on the x264 scale (0-51) for every codec."""

    codec: str = "libx264"
    crf: float | None = 20
    bitrate: int | None = None  # video bits/s; overrides crf
    preset: str = "veryfast"
    gop: int | None = None
    audio_codec: str | None = None  # default by container
    audio_bitrate: int | None = None


_ENC_KEYS = ("codec", "crf", "bitrate", "preset", "gop", "audio_codec", "audio_bitrate")
_VIDEO_EXT = {".mp4", ".m4v", ".mkv", ".mov", ".webm"}
_AUDIO_EXT = {".wav": "pcm_s16le", ".mp3": "libmp3lame", ".m4a": "aac", ".aac": "aac", ".flac": "flac",
              ".ogg": "libopus", ".opus": "libopus", ".mka": "aac"}
_LOSSLESS_AUDIO = {"pcm_s16le", "flac"}


def _parse_rate(v: int | float | str | None) -> int | None:
    """Parse a bit rate: 64000, 64e3, '64k', '1.5M'."""
    if v is None:
        return None
    if isinstance(v, str):
        s = v.strip().lower()
        mult = 1000 if s.endswith("k") else 1_000_000 if s.endswith("m") else 1
        return int(float(s.rstrip("km")) * mult)
    return int(v)


class _Writer:
    """Streaming encoder: video frames pushed one by one, audio interleaved from an array."""

    def __init__(self, path: str | Path, *, fps: float | None, enc: Encoding,
                 audio: tuple[Array, int] | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ext = self.path.suffix.lower()
        self.audio_only = ext in _AUDIO_EXT
        if not self.audio_only and ext not in _VIDEO_EXT:
            raise ValueError(f"unsupported output extension {ext!r}")
        if self.audio_only and audio is None:
            raise ValueError("audio-only output needs audio")
        self.enc = enc
        self.fps = _frac(fps) if fps else None
        self.vcodec = "libvpx-vp9" if ext == ".webm" and enc.codec not in ("libvpx-vp9", "libvpx") else enc.codec
        self.acodec = enc.audio_codec or (_AUDIO_EXT[ext] if self.audio_only else
                                          "libopus" if ext == ".webm" else "aac")
        self.audio = None
        if audio is not None:
            x, sr = audio
            x = np.asarray(x, _F32)
            if x.ndim == 1:
                x = x[None]
            x = x[:2]
            if self.acodec == "libopus" and sr != 48000:
                x, sr = _resample(x, sr, 48000), 48000
            self.audio = (np.clip(x, -1, 1), int(sr))
        self.c = av.open(str(self.path), "w")
        self.vs: Any = None
        self.as_: Any = None
        self.n = 0
        self.apos = 0
        self.size: tuple[int, int] | None = None
        if self.audio_only:
            self._add_audio()

    # streams are added lazily: the first frame fixes the video size
    def _add_video(self, w: int, h: int) -> None:
        e, fps = self.enc, self.fps
        assert fps is not None, "video output needs fps"
        vs = self.c.add_stream(self.vcodec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        crf = 23 if e.crf is None else float(e.crf)
        br = _parse_rate(e.bitrate)
        opts: dict[str, str] = {}
        if self.vcodec in ("libx264", "h264", "libx265"):
            opts["preset"] = e.preset
            if self.vcodec == "libx265":
                opts["x265-params"] = "log-level=none"
            else:  # x264's mb-tree reads uninitialised memory: output would vary run to run
                opts["x264-params"] = "mbtree=0"
            if br is None:
                opts["crf"] = str(int(round(crf)))
        elif self.vcodec in ("libvpx-vp9", "libvpx"):
            opts.update({"deadline": "realtime", "cpu-used": "8", "row-mt": "1"})
            if br is None:
                opts.update({"crf": str(int(np.clip(round(crf * 1.3), 4, 63))), "b": "0"})
        elif br is None:  # mpeg4 / mjpeg: derive a bit rate from crf
            br = int(w * h * float(fps) * 0.25 * 2 ** ((20 - crf) / 6))
        if br is not None:
            vs.bit_rate = br
        if e.gop:
            vs.codec_context.gop_size = int(e.gop)
        vs.options = opts
        self.vs = vs
        if self.audio is not None:
            self._add_audio()

    def _add_audio(self) -> None:
        assert self.audio is not None
        x, sr = self.audio
        layout = "mono" if x.shape[0] == 1 else "stereo"
        self.as_ = self.c.add_stream(self.acodec, rate=sr, layout=layout)
        if self.acodec not in _LOSSLESS_AUDIO:
            self.as_.bit_rate = _parse_rate(self.enc.audio_bitrate) or (128000 if layout == "stereo" else 96000)
        if self.acodec == "aac":
            self.as_.options = {"aac_coder": "fast"}
        self.layout = layout

    def write(self, img: Array) -> None:
        """Encode one RGB uint8 frame (odd sizes are cropped to even)."""
        h, w = img.shape[:2]
        if self.vs is None:
            self.size = (w - w % 2, h - h % 2)
            self._add_video(*self.size)
        assert self.size is not None
        if (w, h) != self.size:
            if w >= self.size[0] and h >= self.size[1]:
                img = img[: self.size[1], : self.size[0]]
            else:
                img = cv2.resize(img, self.size, interpolation=cv2.INTER_AREA)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        frame.pts = self.n
        self.c.mux(self.vs.encode(frame))
        self.n += 1
        if self.audio is not None:
            self._write_audio(int(self.n / self.fps * self.audio[1]))  # type: ignore[operator]

    def _write_audio(self, end: int) -> None:
        x, sr = self.audio  # type: ignore[misc]
        end = min(end, x.shape[1])
        while self.apos < end:
            stop = min(self.apos + 4096, end)
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, self.apos:stop]), format="fltp", layout=self.layout)
            af.sample_rate = sr
            af.pts = self.apos
            af.time_base = Fraction(1, sr)
            self.c.mux(self.as_.encode(af))
            self.apos = stop

    def close(self) -> None:
        """Pad/trim audio to the video length, flush the encoders, close the file."""
        try:
            if self.audio is not None:
                x, sr = self.audio
                if self.vs is not None:
                    target = int(round(self.n / self.fps * sr))  # type: ignore[operator]
                    if x.shape[1] < target:
                        x = np.pad(x, ((0, 0), (0, target - x.shape[1])))
                    self.audio = (x[:, :target], sr)
                    self._write_audio(target)
                elif not self.audio_only:
                    self.audio = None
                else:
                    self._write_audio(x.shape[1])
            if self.vs is not None:
                self.c.mux(self.vs.encode())
            if self.as_ is not None:
                self.c.mux(self.as_.encode())
        finally:
            self.c.close()

    def abort(self) -> None:
        try:
            self.c.close()
        except Exception:  # noqa: BLE001 - best effort on an already failing path
            pass
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> "_Writer":
        return self

    def __exit__(self, et, ev, tb) -> None:
        if et is None:
            self.close()
        else:
            self.abort()


@dataclass(frozen=True)
class MediaInfo:
    """What :func:`probe` finds in a media file."""

    path: str
    duration: float
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    fps: float = 0.0
    frames: int = 0
    video_codec: str = ""
    audio_codec: str = ""
    sample_rate: int = 0
    channels: int = 0


def probe(path: str | Path, *, count_frames: bool = False) -> MediaInfo:
    """Container facts; ``count_frames`` demuxes video packets for an exact frame count."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0] if c.streams.video else None
        as_ = c.streams.audio[0] if c.streams.audio else None
        cdur = c.duration / 1e6 if c.duration else 0.0
        kw: dict[str, Any] = {}
        dur = cdur
        if as_ is not None:
            kw.update(audio_codec=as_.codec_context.name, sample_rate=int(as_.rate or 0),
                      channels=int(as_.layout.nb_channels))
            if as_.duration and as_.time_base:
                dur = float(as_.duration * as_.time_base)
        if vs is not None:
            fps = float(vs.average_rate or vs.guessed_rate or 25)
            frames = int(vs.frames or 0)
            if count_frames or not frames:
                n = sum(1 for p in c.demux(vs) if p.size)
                frames = n if (count_frames or not frames) else frames
            dur = frames / fps if frames else cdur
            kw.update(width=vs.codec_context.width, height=vs.codec_context.height, fps=fps, frames=frames,
                      video_codec=vs.codec_context.name)
        return MediaInfo(str(path), float(dur), vs is not None, as_ is not None, **kw)


def _decode_tolerant(container: Any, stream: Any) -> Iterator[Any]:
    """Frames of ``stream``, skipping packets the decoder rejects (real files carry a few)."""
    for packet in container.demux(stream):
        try:
            yield from packet.decode()
        except av.error.InvalidDataError:
            continue


def _iter_raw(path: str | Path) -> Iterator[tuple[float, Any]]:
    """Decoded video frames as (time from first frame, av.VideoFrame)."""
    with av.open(str(path)) as c:
        if not c.streams.video:
            return
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        rate = float(s.average_rate or s.guessed_rate or 25)
        t0 = None
        for i, f in enumerate(_decode_tolerant(c, s)):
            t = float(f.time) if f.time is not None else i / rate
            if t0 is None:
                t0 = t
            yield t - t0, f


def iter_frames(path: str | Path) -> Iterator[tuple[float, Array]]:
    """Yield ``(time_s, rgb uint8 (H, W, 3))`` for every decoded video frame."""
    for t, f in _iter_raw(path):
        yield t, f.to_ndarray(format="rgb24")


def read_audio(path: str | Path) -> tuple[Array, int] | None:
    """Decode the first audio stream to ``(float32 (channels<=2, n), sample_rate)``, or None."""
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return None
        s = c.streams.audio[0]
        sr = int(s.rate or s.codec_context.sample_rate)
        layout = "mono" if s.layout.nb_channels == 1 else "stereo"
        res = av.AudioResampler(format="fltp", layout=layout, rate=sr)
        nch = 1 if layout == "mono" else 2
        chunks, have, t_first = [], 0, None
        for f in _decode_tolerant(c, s):
            if f.time is not None and t_first is None:
                t_first = float(f.time)
            elif f.time is not None:  # a skipped packet leaves a gap: keep it, as silence
                gap = int(round((float(f.time) - t_first) * sr)) - have
                if gap > sr // 100:
                    chunks.append(np.zeros((nch, gap), _F32))
                    have += gap
            for g in res.resample(f):
                chunks.append(g.to_ndarray())
                have += g.samples
        for g in res.resample(None):
            chunks.append(g.to_ndarray())
    x = np.concatenate(chunks, axis=1).astype(_F32) if chunks else np.zeros((nch, 0), _F32)
    return x, sr


# ---------------------------------------------------------------------------
# public generators
# ---------------------------------------------------------------------------


def make_video(path: str | Path, *, kind: str, duration: float, seed: int, size: tuple[int, int] = (480, 270),
               fps: float = 25.0, audio: str | None = "auto", codec: str = "libx264", crf: float | None = 20,
               bitrate: int | str | None = None, preset: str = "superfast") -> Path:
    """Write a synthetic clip (container by extension: .mp4/.mkv/.mov/.webm) and return its path.

    ``kind`` in :data:`VIDEO_KINDS`; ``audio`` = "auto" (per kind, see :data:`AUTO_AUDIO`),
    one of :data:`AUDIO_KINDS`, or None for no audio stream.  Frames are a pure
    function of (kind, seed, size, t).  Cost for 20 s at 480x270 (one core): about 1.5 s
    for talk/text, 2-3 s for scenes/shapes/dark, 2.5-4 s for texture (x264 dominates).
    """
    w, h = int(size[0]), int(size[1])
    if w % 2 or h % 2 or w < 16 or h < 16:
        raise ValueError(f"size must be even and >= 16, got {size}")
    if duration <= 0:
        raise ValueError("duration must be > 0")
    renderer = _Renderer(kind, seed, (w, h), duration)
    n = max(1, int(round(duration * fps)))
    akind = AUTO_AUDIO[kind] if audio == "auto" else audio
    aud = synth_audio(akind, n / fps, seed, tag="video:" + kind) if akind else None
    enc = Encoding(codec=codec, crf=crf, bitrate=_parse_rate(bitrate), preset=preset)
    with _Writer(path, fps=fps, enc=enc, audio=aud) as wr:
        for i in range(n):
            wr.write(renderer.frame(i / fps))
    return Path(path)


def make_image(path: str | Path, *, kind: str, seed: int, size: tuple[int, int] = (480, 270),
               t: float | None = None, quality: int = 90) -> Path:
    """Write one still (PNG/JPEG by extension) of a ``kind`` clip at time ``t`` (seeded if None)."""
    tt = float(_rng(seed, "image", kind).uniform(0.5, 8.0)) if t is None else float(t)
    img = _Renderer(kind, seed, (int(size[0]), int(size[1])), tt + 1.0).frame(tt)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if p.suffix.lower() in (".jpg", ".jpeg") else []
    if not cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), params):
        raise ValueError(f"cannot write image {p}")
    return p


def make_audio(path: str | Path, *, kind: str, duration: float, seed: int,
               bitrate: int | str | None = None) -> Path:
    """Write a soundtrack (.wav/.mp3/.m4a/.flac/.ogg by extension) and return its path."""
    x, sr = synth_audio(kind, duration, seed)
    with _Writer(path, fps=None, enc=Encoding(audio_bitrate=_parse_rate(bitrate)), audio=(x, sr)):
        pass
    return Path(path)


# ---------------------------------------------------------------------------
# audio processing for transforms
# ---------------------------------------------------------------------------


def _resample(x: Array, sr_from: int, sr_to: int) -> Array:
    if sr_from == sr_to:
        return x
    g = math.gcd(int(sr_from), int(sr_to))
    return signal.resample_poly(x, sr_to // g, sr_from // g, axis=-1).astype(_F32)


def _channels(x: Array, n: int) -> Array:
    if x.shape[0] == n:
        return x
    if n == 1:
        return x.mean(0, keepdims=True)
    return np.repeat(x[:1], n, axis=0)


def _fit_len(x: Array, n: int, loop: bool = False) -> Array:
    if x.shape[1] >= n:
        return x[:, :n]
    if loop and x.shape[1] > 0:
        reps = int(math.ceil(n / x.shape[1]))
        return np.tile(x, (1, reps))[:, :n]
    return np.pad(x, ((0, 0), (0, n - x.shape[1])))


def _fade(x: Array, sr: int, ms: float = 8.0) -> Array:
    """Short fade in/out to avoid clicks at splice points."""
    m = min(int(sr * ms / 1000), x.shape[1] // 2)
    if m > 0:
        r = np.linspace(0, 1, m, dtype=_F32)
        x = x.copy()
        x[:, :m] *= r
        x[:, -m:] *= r[::-1]
    return x


def _wsola(x: Array, factor: float, sr: int) -> Array:
    """Time-stretch keeping pitch (WSOLA): output length ~ len / factor (factor > 1 = faster)."""
    if abs(factor - 1.0) < 1e-6 or x.shape[1] == 0:
        return x
    N = int(sr * 0.04) // 2 * 2
    Hs, tol = N // 2, N // 4
    n = x.shape[1]
    n_out = int(round(n / factor))
    pad_back = N + 2 * tol + int(Hs * factor) * 2
    xp = np.pad(x, ((0, 0), (N // 2 + tol, pad_back)))
    mono = xp.mean(0)
    dec = 4
    mono_d = mono[::dec]
    win = signal.windows.hann(N, sym=False).astype(_F32)
    n_frames = (n_out + N // 2) // Hs + 2
    y = np.zeros((x.shape[0], n_frames * Hs + N), _F32)
    prev = -1
    for k in range(n_frames):
        nominal = int(round(k * Hs * factor)) + tol
        if prev < 0:
            pos = nominal
        else:
            nat = prev + Hs  # natural continuation of the last copied frame
            a0 = nominal - tol
            tgt = mono_d[nat // dec:(nat + N) // dec]
            seg = mono_d[a0 // dec:(a0 + N + 2 * tol) // dec]
            if len(seg) >= len(tgt) > 0:
                c = np.correlate(seg, tgt, "valid")
                coarse = a0 + int(np.argmax(c)) * dec
                lo, hi = max(a0, coarse - dec), min(a0 + 2 * tol, coarse + dec)
                tf = mono[nat:nat + N]
                best, pos = -np.inf, coarse
                for p in range(lo, hi + 1):
                    v = float(np.dot(mono[p:p + N], tf))
                    if v > best:
                        best, pos = v, p
            else:
                pos = nominal
        pos = min(max(pos, 0), xp.shape[1] - N)
        y[:, k * Hs:k * Hs + N] += xp[:, pos:pos + N] * win
        prev = pos
    return y[:, N // 2:N // 2 + n_out]


def _speed_audio(x: Array, sr: int, factor: float, pitch: bool) -> Array:
    if abs(factor - 1.0) < 1e-9:
        return x
    if pitch:  # plain resampling: tempo and pitch change together
        fr = Fraction(1 / factor).limit_denominator(200)
        return signal.resample_poly(x, fr.numerator, fr.denominator, axis=-1).astype(_F32)
    return _wsola(x, factor, sr)


def _excerpt(x: Array, sr: int, start: float, length: float | None) -> Array:
    i = int(round(start * sr))
    j = x.shape[1] if length is None else i + int(round(length * sr))
    return x[:, i:j]


# ---------------------------------------------------------------------------
# transform machinery
# ---------------------------------------------------------------------------


def _retime(frames: Iterator[tuple[float, Any]], *, fps_out: float, src_fps: float, speed: float = 1.0,
            start: float = 0.0, end: float | None = None, max_frames: int | None = None) -> Iterator[Array]:
    """Resample a decoded stream: output frame i shows the source frame nearest to
    ``start + i * speed / fps_out`` (hold/drop frames); stops at ``end`` or the source end."""
    dt = 1.0 / src_fps
    prev: tuple[float, Any] | None = None
    cur = next(frames, None)
    cache: tuple[Any, Array] | None = None  # holds the frame object itself, so identity is safe
    i = 0
    try:
        while max_frames is None or i < max_frames:
            target = start + i * speed / fps_out
            if end is not None and target >= end - 1e-6:
                break
            while cur is not None and cur[0] <= target + 1e-6:
                prev, cur = cur, next(frames, None)
            if prev is None:
                if cur is None:
                    break
                chosen = cur
            elif cur is None:
                if target >= prev[0] + dt - 1e-6:
                    break
                chosen = prev
            else:
                chosen = prev if target - prev[0] <= cur[0] - target else cur
            if cache is None or cache[0] is not chosen[1]:
                cache = (chosen[1], chosen[1].to_ndarray(format="rgb24"))
            yield cache[1]
            i += 1
    finally:
        close = getattr(frames, "close", None)
        if close:
            close()


def _truth(q0: float, q1: float, r0: float, r1: float, **extra: Any) -> dict:
    d = {"query_start": round(q0, 4), "query_end": round(q1, 4), "reference_start": round(r0, 4),
         "reference_end": round(r1, 4), "video": True, "audio": True}
    d.update(extra)
    return d


def _run(src: Path, dst: Path, enc: Encoding, *, frame_fn: Callable[[Array], Array] | None = None,
         speed: float = 1.0, fps: float | None = None, pitch: bool = False,
         audio: tuple[Array, int] | None | str = "keep", **extra: Any) -> dict:
    """Decode ``src``, map frames through ``frame_fn`` (retimed by ``speed``/``fps``), encode ``dst``."""
    info = probe(src)
    fps_out = float(fps or info.fps)
    if audio == "keep":
        a = read_audio(src)
        aud = (_speed_audio(a[0], a[1], speed, pitch), a[1]) if a is not None else None
    else:
        aud = audio  # type: ignore[assignment]
    with _Writer(dst, fps=fps_out, enc=enc, audio=aud) as wr:
        for img in _retime(_iter_raw(src), fps_out=fps_out, src_fps=info.fps, speed=speed):
            wr.write(frame_fn(img) if frame_fn else img)
        n = wr.n
    q1 = n / fps_out
    extra = {"audio": audio == "keep" and info.has_audio, **extra}
    return _truth(0.0, q1, 0.0, min(q1 * speed, info.duration), **extra)


_TRANSFORM_FNS: dict[str, Callable[..., dict]] = {}
#: Default output encoding of transforms: deliberately not the generator's (crf 20, keyint 250).
_TRANSFORM_ENC = Encoding(codec="libx264", crf=26, preset="veryfast", gop=50)


def _register(name: str, default_crf: float = 26) -> Callable[[Callable[..., dict]], Callable[..., dict]]:
    def deco(fn: Callable[..., dict]) -> Callable[..., dict]:
        def run(src: str | Path, dst: str | Path, **params: Any) -> dict:
            enc_kw = {k: params.pop(k) for k in list(params) if k in _ENC_KEYS}
            for k in ("bitrate", "audio_bitrate"):
                if k in enc_kw:
                    enc_kw[k] = _parse_rate(enc_kw[k])
            if "crf" not in enc_kw:
                enc_kw["crf"] = None if enc_kw.get("bitrate") else default_crf
            enc = Encoding(**{**_TRANSFORM_ENC.__dict__, **enc_kw})
            return fn(Path(src), Path(dst), enc, **params)

        run.__name__ = f"transform_{name}"
        run.__doc__ = fn.__doc__
        _TRANSFORM_FNS[name] = run
        return fn

    return deco


def _resize(img: Array, w: int, h: int) -> Array:
    if img.shape[1] == w and img.shape[0] == h:
        return img
    inter = cv2.INTER_AREA if w < img.shape[1] else cv2.INTER_LINEAR
    return cv2.resize(img, (w, h), interpolation=inter)


def _aspect(a: float | str | Sequence[float]) -> float:
    if isinstance(a, str):
        p, q = a.replace("/", ":").split(":")
        return float(p) / float(q)
    if isinstance(a, (tuple, list)):
        return float(a[0]) / float(a[1])
    return float(a)


def _fit_box(sw: int, sh: int, W: int, H: int) -> tuple[int, int, int, int]:
    """Largest (x, y, w, h) with the source aspect centred inside W x H."""
    s = min(W / sw, H / sh)
    w, h = max(2, int(round(sw * s))), max(2, int(round(sh * s)))
    return (W - w) // 2, (H - h) // 2, w, h


def _region(x: float, y: float, w: float, h: float, W: float, H: float) -> list[float]:
    return [round(x / W, 4), round(y / H, 4), round((x + w) / W, 4), round((y + h) / H, 4)]


@_register("reencode", default_crf=30)
def _t_reencode(src: Path, dst: Path, enc: Encoding) -> dict:
    """Re-encode only (pass codec= libx264/mpeg4/libx265/libvpx-vp9, crf= (default 30) or bitrate=)."""
    return _run(src, dst, enc)


@_register("resize")
def _t_resize(src: Path, dst: Path, enc: Encoding, scale: float = 0.5, width: int | None = None,
              height: int | None = None) -> dict:
    """Scale by ``scale`` (0.3-2.0) or to ``width``/``height`` (rounded to even)."""
    info = probe(src)
    W = _even(width if width else (info.width * height / info.height if height else info.width * scale))
    H = _even(height if height else W * info.height / info.width)
    return _run(src, dst, enc, frame_fn=lambda im: _resize(im, W, H))


@_register("crop")
def _t_crop(src: Path, dst: Path, enc: Encoding, fraction: float = 0.1, left: float | None = None,
            right: float | None = None, top: float | None = None, bottom: float | None = None,
            rescale: bool = False) -> dict:
    """Remove ``fraction`` of each dimension (split evenly) or explicit side fractions."""
    info = probe(src)
    W, H = info.width, info.height
    l, r = (fraction / 2 if left is None else left), (fraction / 2 if right is None else right)
    tp, b = (fraction / 2 if top is None else top), (fraction / 2 if bottom is None else bottom)
    x0, x1 = int(round(W * l)), W - int(round(W * r))
    y0, y1 = int(round(H * tp)), H - int(round(H * b))
    cw, chh = (x1 - x0) - (x1 - x0) % 2, (y1 - y0) - (y1 - y0) % 2

    def fn(im: Array) -> Array:
        c = im[y0:y0 + chh, x0:x0 + cw]
        return _resize(c, W, H) if rescale else c

    return _run(src, dst, enc, frame_fn=fn, crop=[round(x0 / W, 4), round(y0 / H, 4),
                                                   round((x0 + cw) / W, 4), round((y0 + chh) / H, 4)])


def _canvas_fn(W: int, H: int, box: tuple[int, int, int, int], color: Sequence[int]) -> Callable[[Array], Array]:
    x, y, w, h = box
    base = np.zeros((H, W, 3), np.uint8)
    base[:] = tuple(int(c) for c in color)

    def fn(im: Array) -> Array:
        out = base.copy()
        out[y:y + h, x:x + w] = _resize(im, w, h)
        return out

    return fn


@_register("letterbox")
def _t_letterbox(src: Path, dst: Path, enc: Encoding, aspect: float | str = "4:3",
                 color: Sequence[int] = (0, 0, 0)) -> dict:
    """Full width on a taller canvas (``aspect`` w:h, e.g. 4:3 or 1:1), bars top/bottom.

    If ``aspect`` is not taller than the source (a 4:3 source asked for 4:3), the canvas
    is made 4/3 of the source height instead, so there are always bars.
    """
    info = probe(src)
    W = _even(info.width)
    H = _even(W / _aspect(aspect))
    if H < info.height + 8:
        H = _even(info.height * 4 / 3)
    box = _fit_box(info.width, info.height, W, H)
    return _run(src, dst, enc, frame_fn=_canvas_fn(W, H, box, color), region=_region(*box, W, H))


@_register("pillarbox")
def _t_pillarbox(src: Path, dst: Path, enc: Encoding, aspect: float | str = "21:9",
                 color: Sequence[int] = (0, 0, 0)) -> dict:
    """Full height on a wider canvas (``aspect`` e.g. 21:9, or 16:9 for 4:3 sources), bars left/right.

    If ``aspect`` is not wider than the source, the canvas is made 4/3 of the source width.
    """
    info = probe(src)
    H = _even(info.height)
    W = _even(H * _aspect(aspect))
    if W < info.width + 8:
        W = _even(info.width * 4 / 3)
    box = _fit_box(info.width, info.height, W, H)
    return _run(src, dst, enc, frame_fn=_canvas_fn(W, H, box, color), region=_region(*box, W, H))


@_register("border")
def _t_border(src: Path, dst: Path, enc: Encoding, thickness: float = 0.05,
              color: Sequence[int] = (255, 255, 255)) -> dict:
    """Shrink the picture inside a coloured frame ``thickness`` (3-10%) of each dimension."""
    info = probe(src)
    W, H = info.width - info.width % 2, info.height - info.height % 2
    bx, by = int(round(W * thickness)), int(round(H * thickness))
    box = (bx, by, W - 2 * bx, H - 2 * by)
    return _run(src, dst, enc, frame_fn=_canvas_fn(W, H, box, color), region=_region(*box, W, H))


@_register("blurfill916")
def _t_blurfill(src: Path, dst: Path, enc: Encoding, width: int | None = None, caption: str | None = None,
                darken: float = 0.75) -> dict:
    """Vertical 9:16 canvas: sharp full-width picture centred over a blurred zoomed copy (+ caption)."""
    info = probe(src)
    W = _even(width or info.height)
    H = _even(W * 16 / 9)
    fw, fh = W, _even(W * info.height / info.width, 2)
    y0 = (H - fh) // 2
    zs = max(W / info.width, H / info.height) * 1.15  # cover + zoom
    zw, zh = int(info.width * zs), int(info.height * zs)
    small = (max(4, zw // 12), max(4, zh // 12))
    ox, oy = (zw - W) // 2, (zh - H) // 2

    def fn(im: Array) -> Array:
        s = cv2.resize(im, small, interpolation=cv2.INTER_AREA)
        s = cv2.GaussianBlur(s, (0, 0), 2.0)
        bg = cv2.resize(s, (zw, zh), interpolation=cv2.INTER_LINEAR)[oy:oy + H, ox:ox + W]
        out = cv2.convertScaleAbs(bg, alpha=darken)
        out[y0:y0 + fh] = _resize(im, fw, fh)
        if caption:
            hgt = W * 0.06
            tw = _text_width(caption, hgt, cv2.FONT_HERSHEY_DUPLEX, 2)
            org = (max(2, (W - tw) // 2), int(y0 * 0.55))
            _put_text(out, caption, (org[0] + 2, org[1] + 2), hgt, (0, 0, 0), cv2.FONT_HERSHEY_DUPLEX, 2)
            _put_text(out, caption, org, hgt, (255, 255, 255), cv2.FONT_HERSHEY_DUPLEX, 2)
        return out

    return _run(src, dst, enc, frame_fn=fn, region=_region(0, y0, fw, fh, W, H))


@_register("hflip")
def _t_hflip(src: Path, dst: Path, enc: Encoding) -> dict:
    """Mirror left-right."""
    return _run(src, dst, enc, frame_fn=lambda im: cv2.flip(im, 1), mirrored=True)


def _grade_fn(brightness: float, contrast: float, saturation: float, gamma: float, hue: float) -> Callable[[Array], Array]:
    x = np.arange(256, dtype=np.float64) / 255
    tone = np.clip(((x ** gamma) - 0.5) * contrast + 0.5 + brightness, 0, 1)
    tone_lut = (tone * 255 + 0.5).astype(np.uint8)
    h_lut = ((np.arange(256) + int(round(hue / 2))) % 180).astype(np.uint8)
    s_lut = np.clip(np.arange(256) * saturation, 0, 255).astype(np.uint8)
    do_hsv = abs(hue) > 0.5 or abs(saturation - 1) > 1e-3

    def fn(im: Array) -> Array:
        if do_hsv:
            hsv = cv2.cvtColor(im, cv2.COLOR_RGB2HSV)
            hsv[..., 0] = cv2.LUT(hsv[..., 0], h_lut)
            hsv[..., 1] = cv2.LUT(hsv[..., 1], s_lut)
            im = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        return cv2.LUT(im, tone_lut)

    return fn


@_register("colorgrade")
def _t_colorgrade(src: Path, dst: Path, enc: Encoding, brightness: float = 0.05, contrast: float = 1.1,
                  saturation: float = 1.2, gamma: float = 0.95, hue: float = 0.0) -> dict:
    """out = ((in ** gamma) - .5) * contrast + .5 + brightness, saturation x, hue shift in degrees."""
    return _run(src, dst, enc, frame_fn=_grade_fn(brightness, contrast, saturation, gamma, hue))


@_register("grayscale")
def _t_grayscale(src: Path, dst: Path, enc: Encoding) -> dict:
    """Luma only (3 equal channels)."""
    return _run(src, dst, enc, frame_fn=lambda im: cv2.cvtColor(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB))


@_register("noise")
def _t_noise(src: Path, dst: Path, enc: Encoding, sigma: float = 8.0, seed: int = 0) -> dict:
    """Add gaussian noise of ``sigma`` (0-255 scale), fresh per frame."""
    rng = _rng(seed, "noise-transform")
    bank: list[Array] = []
    pad = 64

    def fn(im: Array) -> Array:
        # a bank of noise fields sampled at random offsets: fresh-looking noise at 1/5 the cost
        if not bank:
            shp = (im.shape[0] + pad, im.shape[1] + pad, im.shape[2])
            bank.extend((rng.standard_normal(shp, dtype=_F32) * sigma).round().astype(np.int16) for _ in range(6))
        k, oy, ox = int(rng.integers(len(bank))), int(rng.integers(pad)), int(rng.integers(pad))
        n = bank[k][oy:oy + im.shape[0], ox:ox + im.shape[1]]
        return np.clip(im.astype(np.int16) + n, 0, 255).astype(np.uint8)

    return _run(src, dst, enc, frame_fn=fn)


def _logo(W: int, size: float, seed: int, text: str | None) -> tuple[Array, Array]:
    """A channel logo (rgb, alpha in [0,1]) about ``size`` x width wide."""
    rng = _rng(seed, "logo")
    lw = max(12, int(W * size))
    lh = max(8, int(lw * 0.32))
    rgb = np.zeros((lh, lw, 3), np.uint8)
    alpha = np.zeros((lh, lw), np.uint8)
    col = _color(rng, s=(0.6, 1.0), v=(0.7, 1.0))
    cv2.rectangle(alpha, (0, 0), (lw - 1, lh - 1), 150, -1)
    rgb[:] = (20, 20, 20)
    r = lh // 2 - 2
    cv2.circle(rgb, (lh // 2, lh // 2), r, col, -1, cv2.LINE_AA)
    cv2.circle(alpha, (lh // 2, lh // 2), r, 255, -1, cv2.LINE_AA)
    label = text or _word(rng, 2).upper()
    th = lh * 0.45
    while _text_width(label, th) > lw - lh - 4 and th > 4:
        th *= 0.9
    _put_text(rgb, label, (lh, int(lh * 0.72)), th, (255, 255, 255))
    _put_text(alpha, label, (lh, int(lh * 0.72)), th, (255, 255, 255))  # type: ignore[arg-type]
    return rgb, alpha.astype(_F32) / 255


@_register("watermark")
def _t_watermark(src: Path, dst: Path, enc: Encoding, size: float = 0.18, corner: str = "br", opacity: float = 0.6,
                 text: str | None = None, seed: int = 0) -> dict:
    """Semi-transparent logo/text, ``size`` (0.10-0.25) of the width, in corner tl/tr/bl/br."""
    info = probe(src)
    W, H = info.width, info.height
    rgb, alpha = _logo(W, size, seed, text)
    a = (alpha * opacity)[..., None]
    lh, lw = alpha.shape
    m = int(0.03 * W)
    x = m if corner[1] == "l" else W - lw - m
    y = m if corner[0] == "t" else H - lh - m
    x, y = max(0, x), max(0, y)
    lw, lh = min(lw, W - x), min(lh, H - y)
    rgb_f, a = rgb[:lh, :lw].astype(_F32), a[:lh, :lw]

    def fn(im: Array) -> Array:
        out = im.copy()
        roi = out[y:y + lh, x:x + lw].astype(_F32)
        out[y:y + lh, x:x + lw] = (roi * (1 - a) + rgb_f * a).astype(np.uint8)
        return out

    return _run(src, dst, enc, frame_fn=fn)


@_register("speed")
def _t_speed(src: Path, dst: Path, enc: Encoding, factor: float = 1.05, pitch: bool = False) -> dict:
    """Play ``factor`` x faster (0.9-1.1): frames retimed, audio time-stretched (WSOLA) or resampled if ``pitch``."""
    if factor <= 0:
        raise ValueError("factor must be > 0")
    return _run(src, dst, enc, speed=float(factor), pitch=pitch, speed_factor=float(factor), pitch_shifted=bool(pitch))


@_register("fps")
def _t_fps(src: Path, dst: Path, enc: Encoding, fps: float = 15.0) -> dict:
    """Change the frame rate (drop/duplicate frames), same timeline."""
    return _run(src, dst, enc, fps=float(fps))


def _host_path(src: Path, host: str | Path | None, seed: int, kind: str, duration: float, tmp: Path) -> Path:
    """The given host, or an unrelated clip generated in ``tmp`` at the source's size/fps."""
    if host is not None:
        return Path(host)
    info = probe(src)
    p = tmp / "host.mp4"
    return make_video(p, kind=kind, duration=duration, seed=seed, size=(_even(info.width), _even(info.height)),
                      fps=info.fps, crf=18)


def _looping(path: Path) -> Iterator[tuple[float, Any]]:
    """Decoded frames of ``path`` forever (restart at the end), with continuous times."""
    off = 0.0
    while True:
        last = None
        for t, f in _iter_raw(path):
            last = t
            yield off + t, f
        if last is None:
            return
        info = probe(path)
        off += last + 1.0 / info.fps


@_register("embed")
def _t_embed(src: Path, dst: Path, enc: Encoding, host: str | Path | None = None, start: float | None = None,
             length: float | None = None, at: float = 4.0, mode: str = "insert", start_frac: float = 0.3,
             host_seed: int = 7919, host_kind: str = "scenes", host_duration: float | None = None) -> dict:
    """Splice ``src[start, start+length)`` into an unrelated host at ``at`` s (``mode`` insert|replace).

    The clip is fitted to the host size (aspect kept) and fps; host audio around it,
    clip audio during it.  With ``host=None`` a ``host_kind`` clip is generated from ``host_seed``
    (``host_duration`` s, default ``at`` + 6 s plus ``length`` in replace mode).
    """
    if mode not in ("insert", "replace"):
        raise ValueError("mode must be 'insert' or 'replace'")
    info = probe(src)
    length = min(float(length) if length else 10.0, info.duration)
    if start is None:
        start = max(0.0, info.duration - length) * float(np.clip(start_frac, 0, 1))
    start = float(min(max(0.0, start), max(0.0, info.duration - length)))
    with tempfile.TemporaryDirectory(dir=dst.parent) as td:
        hdur = host_duration or at + 6.0 + (length if mode == "replace" else 0.0)
        hp = _host_path(src, host, host_seed, host_kind, hdur, Path(td))
        hi = probe(hp)
        fps = hi.fps
        HW, HH = hi.width - hi.width % 2, hi.height - hi.height % 2
        box = _fit_box(info.width, info.height, HW, HH)
        n_at = int(round(min(at, hi.duration) * fps))
        n_clip = int(round(length * fps))
        ha, sa = read_audio(hp), read_audio(src)
        aud = None
        if ha is not None or sa is not None:
            sr = ha[1] if ha is not None else sa[1]  # type: ignore[index]
            nch = max(a[0].shape[0] for a in (ha, sa) if a is not None)
            hx = _channels(ha[0], nch) if ha is not None else np.zeros((nch, int(hi.duration * sr)), _F32)
            sx = _channels(_resample(sa[0], sa[1], sr), nch) if sa is not None else np.zeros((nch, 0), _F32)
            i_at = int(round(n_at / fps * sr))
            clip = _fit_len(_excerpt(sx, sr, start, None), int(round(n_clip / fps * sr)))
            skip = clip.shape[1] if mode == "replace" else 0
            parts = [_fade(_fit_len(hx[:, :i_at], i_at), sr), _fade(clip, sr), _fade(hx[:, i_at + skip:], sr)]
            aud = (np.concatenate(parts, axis=1), sr)
        with _Writer(dst, fps=fps, enc=enc, audio=aud) as wr:
            hostf = _iter_raw(hp)
            for im in _retime(hostf, fps_out=fps, src_fps=fps, max_frames=n_at):
                wr.write(_resize(im, HW, HH))
            q0 = wr.n / fps
            canvas = _canvas_fn(HW, HH, box, (0, 0, 0))
            for im in _retime(_iter_raw(src), fps_out=fps, src_fps=info.fps, start=start, end=start + length,
                              max_frames=n_clip):
                wr.write(canvas(im))
            q1 = wr.n / fps
            rest_start = n_at / fps + ((q1 - q0) if mode == "replace" else 0.0)
            for im in _retime(_iter_raw(hp), fps_out=fps, src_fps=fps, start=rest_start):
                wr.write(_resize(im, HW, HH))
    return _truth(q0, q1, start, start + (q1 - q0), region=_region(*box, HW, HH), host=str(host) if host else None,
                  audio=sa is not None)


@_register("pip")
def _t_pip(src: Path, dst: Path, enc: Encoding, host: str | Path | None = None, scale: float = 0.45,
           position: str = "br", audio: str = "src", margin: float = 0.04, host_seed: int = 7927,
           host_kind: str = "scenes", frame: int = 2, frame_color: Color = (240, 240, 240)) -> dict:
    """Picture-in-picture: src at ``scale`` of the host width in a corner (tl/tr/bl/br) or ``center``
    over an unrelated (looped) host, inside a ``frame`` px border of ``frame_color`` (0: none);
    ``audio`` = src | host | mix.  Output lasts as long as src."""
    if audio not in ("src", "host", "mix"):
        raise ValueError("audio must be src, host or mix")
    info = probe(src)
    with tempfile.TemporaryDirectory(dir=dst.parent) as td:
        hp = _host_path(src, host, host_seed, host_kind, min(info.duration, 20.0), Path(td))
        hi = probe(hp)
        HW, HH = hi.width - hi.width % 2, hi.height - hi.height % 2
        pw = _even(HW * scale, 4)
        ph = _even(pw * info.height / info.width, 4)
        m = int(margin * HW)
        if position == "center":
            x, y = (HW - pw) // 2, (HH - ph) // 2
        else:
            x = m if position[1] == "l" else HW - pw - m
            y = m if position[0] == "t" else HH - ph - m
        sa, ha = read_audio(src), read_audio(hp)
        aud = None
        n_total = int(round(info.duration * info.fps))
        if audio == "src" or (audio == "mix" and ha is None):
            aud = sa
        elif ha is not None:
            sr = ha[1]
            n = int(round(info.duration * sr))
            hx = _fit_len(ha[0], n, loop=True)
            if audio == "mix" and sa is not None:
                sx = _fit_len(_channels(_resample(sa[0], sa[1], sr), hx.shape[0]), n)
                hx = 0.6 * sx + 0.4 * hx
            aud = (hx, sr)
        hostf = _retime(_looping(hp), fps_out=info.fps, src_fps=hi.fps, max_frames=n_total)
        with _Writer(dst, fps=info.fps, enc=enc, audio=aud) as wr:
            for im in _retime(_iter_raw(src), fps_out=info.fps, src_fps=info.fps):
                bg = next(hostf, None)
                out = _resize(bg, HW, HH).copy() if bg is not None else np.zeros((HH, HW, 3), np.uint8)
                if frame > 0:
                    cv2.rectangle(out, (x - frame, y - frame), (x + pw + frame - 1, y + ph + frame - 1),
                                  tuple(int(c) for c in frame_color), -1)
                out[y:y + ph, x:x + pw] = _resize(im, pw, ph)
                wr.write(out)
            q1 = wr.n / info.fps
        hostf.close()
    return _truth(0.0, q1, 0.0, q1, audio=audio in ("src", "mix") and sa is not None,
                  region=_region(x, y, pw, ph, HW, HH), host=str(host) if host else None)


@_register("soundswap")
def _t_soundswap(src: Path, dst: Path, enc: Encoding, host: str | Path | None = None, seed: int = 1,
                 kind: str = "music") -> dict:
    """Same picture, soundtrack replaced by ``host``'s audio (looped) or a generated ``kind``/``seed``."""
    info = probe(src)
    a = read_audio(host) if host is not None else None
    if a is None:
        a = synth_audio(kind, info.duration, seed, tag="soundswap")
    x, sr = a
    x = _fit_len(x, int(round(info.duration * sr)), loop=True)
    return _run(src, dst, enc, audio=(x, sr))


@_register("audio_only")
def _t_audio_only(src: Path, dst: Path, enc: Encoding, start: float | None = None, length: float | None = None,
                  snr_db: float | None = None, start_frac: float = 0.0, seed: int = 0) -> dict:
    """Soundtrack only (.mp3/.m4a/.wav/.flac/.ogg by ``dst``): optional excerpt
    [start, start+length), white noise at ``snr_db``, lossy ``bitrate`` (e.g. '64k')."""
    if dst.suffix.lower() not in _AUDIO_EXT:
        raise ValueError(f"audio_only needs an audio extension ({sorted(_AUDIO_EXT)}), got {dst.suffix!r}")
    a = read_audio(src)
    if a is None:
        raise ValueError(f"{src} has no audio stream")
    x, sr = a
    dur = x.shape[1] / sr
    ln = min(float(length), dur) if length else dur
    st = (dur - ln) * float(np.clip(start_frac, 0, 1)) if start is None else float(min(max(0.0, start), dur - ln))
    y = _excerpt(x, sr, st, ln)
    if snr_db is not None:
        p = float(np.mean(y ** 2)) or 1e-8
        rng = _rng(seed, "snr")
        y = y + rng.standard_normal(y.shape).astype(_F32) * math.sqrt(p / 10 ** (snr_db / 10))
        y = y / max(1.0, float(np.abs(y).max()))
    abr = enc.audio_bitrate or (enc.bitrate if enc.bitrate and enc.bitrate < 600_000 else None)
    with _Writer(dst, fps=None, enc=Encoding(audio_codec=enc.audio_codec, audio_bitrate=abr), audio=(y, sr)):
        pass
    return _truth(0.0, y.shape[1] / sr, st, st + y.shape[1] / sr, video=False)


def _compose(a: dict, b: dict) -> dict:
    """Truth of applying step ``a`` then ``b`` (both linear time maps)."""
    lo, hi = max(a["query_start"], b["reference_start"]), min(a["query_end"], b["reference_end"])
    if hi <= lo:
        raise ValueError("combo steps leave no copied content")

    def a_inv(q: float) -> float:  # a's query time -> original reference time
        sa = (a["reference_end"] - a["reference_start"]) / max(a["query_end"] - a["query_start"], 1e-9)
        return a["reference_start"] + (q - a["query_start"]) * sa

    def b_fwd(r: float) -> float:  # b's reference time -> final query time
        sb = (b["query_end"] - b["query_start"]) / max(b["reference_end"] - b["reference_start"], 1e-9)
        return b["query_start"] + (r - b["reference_start"]) * sb

    out = {**a, **b}
    out.update(_truth(b_fwd(lo), b_fwd(hi), a_inv(lo), a_inv(hi)))
    out["video"] = a.get("video", True) and b.get("video", True)
    out["audio"] = a.get("audio", True) and b.get("audio", True)
    out["mirrored"] = bool(a.get("mirrored")) != bool(b.get("mirrored"))
    out.pop("region", None)
    out.pop("crop", None)
    if "speed_factor" in a or "speed_factor" in b:
        out["speed_factor"] = a.get("speed_factor", 1.0) * b.get("speed_factor", 1.0)
    return out


_INTERMEDIATE = {"codec": "libx264", "crf": 10, "preset": "ultrafast", "gop": None, "audio_codec": "pcm_s16le"}


@_register("combo")
def _t_combo(src: Path, dst: Path, enc: Encoding, steps: Sequence[Any] = ()) -> dict:
    """Apply ``steps`` = [(name, params), ...] (or {"name": .., **params}) in order; near-lossless
    intermediates, the combo's own encoding on the last step."""
    norm: list[tuple[str, dict]] = []
    for s in steps:
        if isinstance(s, dict):
            s = dict(s)
            norm.append((s.pop("name"), s))
        else:
            norm.append((str(s[0]), dict(s[1]) if len(s) > 1 and s[1] else {}))
    if not norm:
        raise ValueError("combo needs at least one step")
    if any(n == "combo" for n, _ in norm) or any(n == "audio_only" for n, _ in norm[:-1]):
        raise ValueError("combo steps cannot nest combos; audio_only may only be last")
    truth: dict | None = None
    with tempfile.TemporaryDirectory(dir=dst.parent) as td:
        cur = src
        for i, (name, params) in enumerate(norm):
            last = i == len(norm) - 1
            out = dst if last else Path(td) / f"step{i}.mkv"
            p = dict(params)
            if last:
                for k, v in enc.__dict__.items():
                    p.setdefault(k, v)
            else:
                p.update(_INTERMEDIATE)
            t = _TRANSFORM_FNS[name](cur, out, **p)
            truth = t if truth is None else _compose(truth, t)
            cur = out
    assert truth is not None
    truth["steps"] = [[n, p] for n, p in norm]
    return truth


#: name -> callable(src, dst, **params) -> truth dict (no sidecar; use :func:`transform`).
TRANSFORMS: dict[str, Callable[..., dict]] = _TRANSFORM_FNS


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, np.generic):
        return v.item()
    return v


def transform(src: str | Path, dst: str | Path, name: str, **params: Any) -> Path:
    """Apply transformation ``name`` (a key of :data:`TRANSFORMS`) to ``src``, write ``dst``
    and ``dst + ".truth.json"`` ({query_start, query_end, reference_start, reference_end, ...}).

    Encoding params accepted by every transform: codec, crf, bitrate, preset, gop,
    audio_codec, audio_bitrate (default libx264 crf 26 keyint 50, unlike the generator).
    About 2 s for a 20 s 480x270 clip on one core; embed/pip also generate a host when none
    is given, combos pay one pass per step (3-5 s).
    """
    if name not in TRANSFORMS:
        raise ValueError(f"unknown transform {name!r}; expected one of {sorted(TRANSFORMS)}")
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise FileNotFoundError(src)
    if src.resolve() == dst.resolve():
        raise ValueError("dst must differ from src")
    dst.parent.mkdir(parents=True, exist_ok=True)
    truth = TRANSFORMS[name](src, dst, **params)
    truth = {**truth, "transform": name, "params": _jsonable(params), "reference": str(src), "query": str(dst)}
    Path(str(dst) + ".truth.json").write_text(json.dumps(_jsonable(truth), indent=1))
    return dst


def read_truth(dst: str | Path) -> dict:
    """The ground-truth sidecar written by :func:`transform` for ``dst``."""
    return json.loads(Path(str(dst) + ".truth.json").read_text())


# ---------------------------------------------------------------------------
# presets and random parameters
# ---------------------------------------------------------------------------

_MILD_GRADE = {"brightness": 0.05, "contrast": 1.1, "saturation": 1.2, "gamma": 0.95, "hue": 0.0}
_HARD_GRADE = {"brightness": -0.1, "contrast": 1.35, "saturation": 0.55, "gamma": 1.3, "hue": 25.0}

#: Typical re-upload edits: (name, params).
STANDARD_TRANSFORMS: list[tuple[str, dict]] = [
    ("reencode", {"crf": 32}),
    ("reencode", {"codec": "mpeg4", "bitrate": 500_000}),
    ("resize", {"scale": 0.5}),
    ("crop", {"fraction": 0.1}),
    ("letterbox", {"aspect": "4:3"}),
    ("pillarbox", {"aspect": "21:9"}),
    ("border", {"thickness": 0.05, "color": (255, 255, 255)}),
    ("blurfill916", {}),
    ("hflip", {}),
    ("colorgrade", dict(_MILD_GRADE)),
    ("grayscale", {}),
    ("noise", {"sigma": 6.0}),
    ("watermark", {"size": 0.15, "corner": "br", "opacity": 0.6}),
    ("speed", {"factor": 1.05}),
    ("fps", {"fps": 15}),
    ("combo", {"steps": [("crop", {"fraction": 0.08}), ("colorgrade", dict(_MILD_GRADE)), ("reencode", {"crf": 30})]}),
]

#: Harder edits for the benchmark: heavy quality loss, strong geometry, partial copies.
HARD_TRANSFORMS: list[tuple[str, dict]] = [
    ("reencode", {"codec": "libx264", "bitrate": 150_000}),
    ("reencode", {"codec": "libx265", "crf": 36}),
    ("reencode", {"codec": "libvpx-vp9", "crf": 40}),
    ("resize", {"scale": 0.3}),
    ("crop", {"left": 0.15, "right": 0.03, "top": 0.12, "bottom": 0.05}),
    ("letterbox", {"aspect": "1:1"}),
    ("border", {"thickness": 0.1, "color": (230, 40, 160)}),
    ("blurfill916", {"caption": "WAIT FOR IT"}),
    ("colorgrade", dict(_HARD_GRADE)),
    ("noise", {"sigma": 18.0}),
    ("watermark", {"size": 0.25, "corner": "tl", "opacity": 0.8}),
    ("speed", {"factor": 0.9}),
    ("speed", {"factor": 1.1, "pitch": True}),
    ("fps", {"fps": 12}),
    ("embed", {"length": 8.0, "at": 4.0}),
    ("pip", {"scale": 0.45, "position": "br"}),
    ("soundswap", {"seed": 99}),
    ("combo", {"steps": [("hflip", {}), ("crop", {"fraction": 0.12}), ("colorgrade", dict(_MILD_GRADE)),
                         ("speed", {"factor": 1.07})]}),
    ("combo", {"steps": [("blurfill916", {}), ("noise", {"sigma": 5.0}), ("reencode", {"crf": 34})]}),
]

#: Audio-query edits; ``dst`` must have an audio extension (.mp3/.m4a/.wav/...).
AUDIO_TRANSFORMS: list[tuple[str, dict]] = [
    ("audio_only", {}),
    ("audio_only", {"length": 10.0, "start_frac": 0.5, "bitrate": "64k"}),
    ("audio_only", {"length": 8.0, "start_frac": 0.2, "snr_db": 10.0, "bitrate": "32k"}),
]

_PER_FRAME = ["crop", "colorgrade", "hflip", "resize", "noise", "watermark", "border", "letterbox", "grayscale",
              "blurfill916", "speed", "pillarbox"]


def random_params(name: str, rng: np.random.Generator) -> dict:
    """Draw varied parameters for transform ``name`` (hosts are generated from drawn seeds)."""
    u = rng.uniform
    if name == "reencode":
        codec = str(rng.choice(["libx264", "mpeg4", "libx265", "libvpx-vp9"], p=[0.5, 0.15, 0.2, 0.15]))
        if codec == "mpeg4" or rng.random() < 0.2:
            return {"codec": codec, "bitrate": int(u(120_000, 900_000))}
        return {"codec": codec, "crf": int(rng.integers(24, 40))}
    if name == "resize":
        return {"scale": round(float(u(0.3, 1.0) if rng.random() < 0.8 else u(1.0, 2.0)), 3)}
    if name == "crop":
        f, g = u(0.05, 0.2), u(0.05, 0.2)
        a, b = u(0.1, 0.9), u(0.1, 0.9)
        return {"left": round(f * a, 4), "right": round(f * (1 - a), 4), "top": round(g * b, 4),
                "bottom": round(g * (1 - b), 4), "rescale": bool(rng.random() < 0.3)}
    if name == "letterbox":
        return {"aspect": str(rng.choice(["4:3", "1:1", "5:4", "3:2"]))}
    if name == "pillarbox":
        return {"aspect": str(rng.choice(["21:9", "2:1", "2.4:1"]))}
    if name == "border":
        return {"thickness": round(float(u(0.03, 0.1)), 3), "color": [int(c) for c in rng.integers(0, 256, 3)]}
    if name == "blurfill916":
        return {"caption": _words(rng, int(rng.integers(1, 4))).upper() if rng.random() < 0.5 else None}
    if name == "colorgrade":
        return {"brightness": round(float(u(-0.12, 0.12)), 3), "contrast": round(float(u(0.75, 1.3)), 3),
                "saturation": round(float(u(0.5, 1.5)), 3), "gamma": round(float(u(0.75, 1.35)), 3),
                "hue": round(float(u(-25, 25)), 1)}
    if name == "noise":
        return {"sigma": round(float(u(3, 20)), 2), "seed": int(rng.integers(1 << 30))}
    if name == "watermark":
        return {"size": round(float(u(0.1, 0.25)), 3), "corner": str(rng.choice(["tl", "tr", "bl", "br"])),
                "opacity": round(float(u(0.35, 0.85)), 3), "seed": int(rng.integers(1 << 30))}
    if name == "speed":
        return {"factor": round(float(u(0.9, 1.1)), 4), "pitch": bool(rng.random() < 0.3)}
    if name == "fps":
        return {"fps": int(rng.choice([12, 15, 24, 30, 50]))}
    if name == "embed":
        return {"length": round(float(u(6, 15)), 2), "at": round(float(u(2, 8)), 2), "start_frac": round(float(u(0, 1)), 3),
                "mode": str(rng.choice(["insert", "replace"])), "host_seed": int(rng.integers(1 << 30)),
                "host_kind": str(rng.choice(VIDEO_KINDS))}
    if name == "pip":
        p = {"scale": round(float(u(0.3, 0.55)), 3), "position": str(rng.choice(["tl", "tr", "bl", "br", "center"])),
             "audio": str(rng.choice(["src", "src", "host", "mix"])), "host_seed": int(rng.integers(1 << 30)),
             "host_kind": str(rng.choice(VIDEO_KINDS))}
        # the inset's frame comes from a generator of its own, so that every other draw stays as it was
        fr = np.random.default_rng(p["host_seed"])
        p["frame"] = int(fr.choice([0, 2, 2, 4, 6]))
        grey = int(fr.choice([0, 240, 255]))
        p["frame_color"] = [grey] * 3 if fr.random() < 0.7 else [int(c) for c in fr.integers(0, 256, 3)]
        return p
    if name == "soundswap":
        return {"seed": int(rng.integers(1 << 30)), "kind": str(rng.choice(["music", "speech", "noise"]))}
    if name == "audio_only":
        return {"length": round(float(u(5, 15)), 2), "start_frac": round(float(u(0, 1)), 3),
                "snr_db": round(float(u(5, 25)), 1) if rng.random() < 0.5 else None,
                "bitrate": str(rng.choice(["32k", "64k", "128k"]))}
    if name == "combo":
        names = list(rng.choice(_PER_FRAME, size=int(rng.integers(2, 4)), replace=False))
        geo = {"letterbox", "pillarbox", "blurfill916"}
        if geo & set(names):  # at most one canvas change, first, while the picture is still 16:9
            names = [sorted(geo & set(names))[0]] + [n for n in names if n not in geo]
        steps = [(n, random_params(n, rng)) for n in names]
        if rng.random() < 0.5:
            steps.append(("reencode", random_params("reencode", rng)))
        return {"steps": steps}
    if name in ("hflip", "grayscale"):
        return {}
    raise ValueError(f"unknown transform {name!r}")
