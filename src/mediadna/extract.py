"""media2fingerprint: one pass over an input gives its whole fingerprint."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

from . import audio as A
from . import decode as D
from . import visual as V
from .errors import NO_CONTENT, MediaError
from .fingerprint import FLAG_FLAT, AudioTrack, Fingerprint, VisualTrack

PARAMS = {
    "sample_fps": D.SAMPLE_FPS,
    "frame_size": D.FRAME_SIZE,
    "frame_hash": "dct64",
    "hash_input": V.HASH_INPUT,
    "flat_std": V.FLAT_STD,
    "dim_std": V.DIM_STD,
    "zoom_views": list(V.ZOOM_VIEWS),
    "box_chunk": V.BOX_CHUNK,
    "audio_rate": D.AUDIO_RATE,
    "n_fft": A.N_FFT,
    "hop": A.HOP,
    "peak_picker": "masking",
    "mask_decay_db": A.MASK_DECAY_DB,
    "mask_width": A.MASK_WIDTH,
    "mask_margin_db": A.MASK_MARGIN_DB,
    "peaks_per_frame": A.PEAKS_PER_FRAME,
    "fan_out": A.FAN_OUT,
    "audio_shifts": A.SHIFTS,
    "contour": {"n_fft": A.CONTOUR_NFFT, "bands": A.CONTOUR_BANDS, "hz": [A.CONTOUR_LO_HZ, A.CONTOUR_HI_HZ]},
}


#: BLAS threads while fingerprinting.  The only BLAS call (the frame DCT in
#: visual.rasters2hashes) is a small matrix product; with the default one thread
#: per core, OpenBLAS's threads spin between calls and take the cores the decoder
#: needs (38 dev-corpus files on 2 cores: 0.59x the speed of decoding with two
#: BLAS threads, 0.77x with one; a third less CPU time).
BLAS_THREADS = 1
_threadpools: ThreadpoolController | None = None


def _blas_limit():
    """Context: BLAS limited to BLAS_THREADS threads, restored on exit (the
    setting is process-wide while it lasts)."""
    global _threadpools
    if _threadpools is None:  # scanning the loaded libraries costs a few ms: once per process
        _threadpools = ThreadpoolController()
    return _threadpools.limit(limits=BLAS_THREADS, user_api="blas")


def media2fingerprint(
    source: str | os.PathLike,
    *,
    start: float = 0.0,
    end: float | None = None,
    sha256: str | None = None,
    want_video: bool = True,
    want_audio: bool = True,
) -> Fingerprint:
    """Fingerprint ``[start, end)`` of a local file or http(s) URL.

    Times in the result are media times (seconds from the file's start), so
    fingerprints of adjacent windows concatenate (see :func:`merge_fingerprints`).
    """
    with _blas_limit(), D.open_media(source) as media:  # opened once: probed, then decoded
        return _media2fingerprint(media, start=start, end=end, sha256=sha256, want_video=want_video, want_audio=want_audio)


def _media2fingerprint(media: D.Media, *, start, end, sha256, want_video, want_audio) -> Fingerprint:
    source, info = media.source, media.info
    digest = sha256 if sha256 is not None else (D.sha256_file(source) if start == 0 and end is None else "")
    fps = D.SAMPLE_FPS if info.media_type != "image" else 1.0
    vx = (
        V.VisualExtractor(aspect=info.display_aspect, chunk_seconds=V.BOX_CHUNK / fps)
        if info.has_video and want_video
        else None
    )
    ax: A.AudioExtractor | None = None
    length = (min(info.duration, end) if end is not None else info.duration) - start
    shifts = A.SHIFTS if 0 < length <= A.SHIFT_MAX_SECONDS else 1
    for item in media.decode(start=start, end=end, fps=fps, want_video=vx is not None, want_audio=want_audio):
        if item.kind == "video":
            vx.feed(item.time, item.data)  # type: ignore[union-attr]
            if info.media_type == "image":
                break
        else:
            if ax is None:
                ax = A.AudioExtractor(D.AUDIO_RATE, first_time=item.time, shifts=shifts)
            ax.feed(item.data)
    visual = vx.finish() if vx is not None else None
    inset = vx.inset if vx is not None and len(vx.inset) else None
    audio = ax.finish() if ax is not None else (AudioTrack.empty() if info.has_audio and want_audio else None)
    name = str(source) if D.is_url(source) else Path(source).name
    fp = Fingerprint(
        duration=float(info.duration if end is None else min(info.duration or end, end) - start),
        sha256=digest,
        media_type=info.media_type,
        params=dict(PARAMS),
        visual=visual,
        audio=audio,
        inset=inset,
        source=name,
        meta={k: v for k, v in info.to_dict().items() if k not in ("duration",)},
        shifted=ax.shifted if ax is not None else {},
    )
    if end is None and start == 0:
        fp.duration = _observed_duration(fp, info.duration)
        _require_content(fp, name)
    return fp


def _observed_duration(fp: Fingerprint, declared: float) -> float:
    """The container's duration, or what decoded when it declares none."""
    seen = 0.0
    if fp.visual is not None and len(fp.visual):
        seen = max(seen, float(fp.visual.times[-1]) + 1.0 / D.SAMPLE_FPS)
    if fp.audio is not None and len(fp.audio):
        seen = max(seen, float(A.frames2seconds(fp.audio.frames[-1:])[0]))
    return float(declared) if declared > 0 else seen


def _require_content(fp: Fingerprint, name: str) -> None:
    if fp.media_type == "image":
        return
    v_ok = fp.visual is not None and bool(np.any((fp.visual.flags & FLAG_FLAT) == 0))
    a_ok = fp.has_audio
    if not v_ok and not a_ok:
        raise MediaError(NO_CONTENT, f"{name} has nothing to fingerprint (only silence and flat or black frames)")


def merge_fingerprints(parts: list[Fingerprint], *, sha256: str = "", duration: float | None = None) -> Fingerprint:
    """Join window fingerprints (media times) into one; overlaps de-duplicated.

    Each part owns the times from its own start up to the next part's start,
    so frames and peaks in an overlap are kept once.
    """
    if not parts:
        raise MediaError(NO_CONTENT, "nothing to merge")
    parts = sorted(parts, key=lambda p: float(p.meta.get("window_start", 0.0)))
    starts = [float(p.meta.get("window_start", 0.0)) for p in parts] + [float("inf")]
    spans = list(zip(starts[:-1], starts[1:]))
    vt: list[VisualTrack] = []
    it: list[VisualTrack] = []
    for p, (lo, hi) in zip(parts, spans):
        if p.visual is not None:
            vt.append(p.visual.select((p.visual.times >= lo) & (p.visual.times < hi)))
        if p.inset is not None:
            it.append(p.inset.select((p.inset.times >= lo) & (p.inset.times < hi)))
    heard = [(p.audio, span) for p, span in zip(parts, spans) if p.audio is not None]
    shifted: dict[int, AudioTrack] = {}
    if all(set(p.shifted) == set(parts[0].shifted) for p in parts):  # sub-hop grids, owned alike
        for offset in parts[0].shifted:
            shifted[offset] = _join_audio([(p.shifted[offset], span) for p, span in zip(parts, spans)], offset)
    first = parts[0]
    meta = {k: v for k, v in first.meta.items() if k not in ("window_start", "window_end")}
    return Fingerprint(
        duration=float(duration if duration is not None else max(float(p.meta.get("window_end", p.duration)) for p in parts)),
        sha256=sha256,
        media_type=first.media_type,
        params=first.params,
        visual=V.concat_tracks(vt) if any(p.visual is not None for p in parts) else None,
        audio=_join_audio(heard) if heard else None,
        inset=V.concat_tracks(it) if any(len(t) for t in it) else None,
        source=first.source,
        meta=meta,
        shifted=shifted,
    )


def _join_audio(tracks: list[tuple[AudioTrack, tuple[float, float]]], offset: int = 0) -> AudioTrack:
    """Concatenate window tracks, each keeping its peaks and contour frames in its own [lo, hi) (media s).

    ``offset``: the tracks' grid starts this many samples after media time 0.
    """
    def owned(frames: np.ndarray, span: tuple[float, float]) -> np.ndarray:
        t = (frames.astype(np.float64) * A.HOP + offset) / D.AUDIO_RATE
        return (t >= span[0]) & (t < span[1])

    peaks = [(t, owned(t.frames, span)) for t, span in tracks]
    contour = [(t, owned(t.contour_frames, span)) for t, span in tracks]
    return AudioTrack(
        np.concatenate([t.frames[m] for t, m in peaks]),
        np.concatenate([t.bins[m] for t, m in peaks]),
        np.concatenate([t.contour_frames[m] for t, m in contour]),
        np.concatenate([t.contour[m] for t, m in contour]),
    )
