"""Synthetic media generator and transformation library (mediadna.synth).

Small clips (4 s, 320x180) keep the whole file to a few seconds per core.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mediadna import synth

SIZE = (320, 180)
DUR = 4.0


def _frames(path: Path | str, times: list[float] | None = None) -> list[np.ndarray]:
    """Decoded RGB frames (all, or the ones nearest the given times)."""
    if times is None:
        return [im for _, im in synth.iter_frames(path)]
    out, want = [], sorted(times)
    for t, im in synth.iter_frames(path):
        while want and t >= want[0] - 0.021:
            out.append(im)
            want.pop(0)
        if not want:
            break
    return out


def _sig(img: np.ndarray) -> np.ndarray:
    g = cv2.resize(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), (32, 18), interpolation=cv2.INTER_AREA).astype(float).ravel()
    g -= g.mean()
    return g / (np.linalg.norm(g) + 1e-9)


def _truth_ok(dst: Path) -> dict:
    tr = synth.read_truth(dst)
    for k in ("query_start", "query_end", "reference_start", "reference_end"):
        assert isinstance(tr[k], (int, float)), k
    assert tr["query_end"] > tr["query_start"] >= 0
    assert tr["reference_end"] > tr["reference_start"] >= 0
    return tr


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("synth")


@pytest.fixture(scope="module")
def clips(work: Path) -> dict[str, Path]:
    return {k: synth.make_video(work / f"{k}.mp4", kind=k, duration=DUR, seed=1, size=SIZE)
            for k in synth.VIDEO_KINDS}


@pytest.fixture(scope="module")
def src(clips: dict[str, Path]) -> Path:
    return clips["shapes"]


@pytest.fixture(scope="module")
def src_frames(src: Path) -> list[np.ndarray]:
    return _frames(src)


# --------------------------------------------------------------------------- generation


@pytest.mark.parametrize("kind", synth.VIDEO_KINDS)
def test_kind_decodes_with_requested_geometry(clips: dict[str, Path], kind: str) -> None:
    info = synth.probe(clips[kind], count_frames=True)
    assert (info.width, info.height) == SIZE
    assert info.fps == pytest.approx(25.0)
    assert info.duration == pytest.approx(DUR, abs=0.2)
    assert info.frames == int(DUR * 25)
    assert info.has_audio and info.audio_codec == "aac"
    assert info.sample_rate in (44100, 48000) and info.channels in (1, 2)
    audio = synth.read_audio(clips[kind])
    assert audio is not None and audio[0].shape[1] / audio[1] == pytest.approx(DUR, abs=0.2)
    frames = _frames(clips[kind], [0.2, 1.5, 3.5])
    assert len(frames) == 3 and frames[0].shape == (SIZE[1], SIZE[0], 3)
    assert any(np.abs(frames[0].astype(int) - f).mean() > 0.5 for f in frames[1:]), "no motion"


def test_audio_options_and_containers(work: Path) -> None:
    p = synth.make_video(work / "noaudio.mp4", kind="talk", duration=2, seed=3, size=SIZE, audio=None)
    assert not synth.probe(p).has_audio
    p = synth.make_video(work / "speech.mkv", kind="shapes", duration=2, seed=3, size=SIZE, audio="speech", fps=30)
    info = synth.probe(p)
    assert info.has_audio and info.channels == 1 and info.sample_rate == 48000 and info.fps == pytest.approx(30)
    p = synth.make_video(work / "vp9.webm", kind="scenes", duration=2, seed=3, size=SIZE)
    info = synth.probe(p)
    assert info.video_codec == "vp9" and info.audio_codec == "opus"
    assert info.duration == pytest.approx(2.0, abs=0.2)
    with pytest.raises(ValueError):
        synth.make_video(work / "bad.mp4", kind="nope", duration=1, seed=1, size=SIZE)
    with pytest.raises(ValueError):
        synth.make_video(work / "odd.mp4", kind="shapes", duration=1, seed=1, size=(321, 180))


@pytest.mark.parametrize("kind", ["texture", "dark"])
def test_same_seed_is_deterministic(work: Path, clips: dict[str, Path], kind: str) -> None:
    again = synth.make_video(work / f"{kind}_again.mp4", kind=kind, duration=DUR, seed=1, size=SIZE)
    a, b = _frames(clips[kind]), _frames(again)
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
    xa, xb = synth.read_audio(clips[kind]), synth.read_audio(again)
    assert xa is not None and xb is not None and np.array_equal(xa[0], xb[0])


@pytest.mark.parametrize("kind", synth.VIDEO_KINDS)
def test_different_seeds_are_unrelated(kind: str) -> None:
    for t in (0.5, 2.0, 3.5):
        a, b = synth.render_frame(kind, 1, t, SIZE), synth.render_frame(kind, 2, t, SIZE)
        assert np.array_equal(a, synth.render_frame(kind, 1, t, SIZE))
        assert float(_sig(a) @ _sig(b)) < 0.9
        if kind != "dark":  # near-black footage differs little in absolute terms
            assert np.abs(a.astype(int) - b).mean() > 8
    x1, _ = synth.synth_audio(synth.AUTO_AUDIO[kind], 3, 1)
    x2, _ = synth.synth_audio(synth.AUTO_AUDIO[kind], 3, 2)
    n = min(x1.shape[1], x2.shape[1])
    assert abs(np.corrcoef(x1.mean(0)[:n], x2.mean(0)[:n])[0, 1]) < 0.3


def test_video_kinds_never_share_a_soundtrack(clips: dict[str, Path]) -> None:
    a, b = synth.read_audio(clips["shapes"]), synth.read_audio(clips["scenes"])  # both music, seed 1
    assert a is not None and b is not None
    n = min(a[0].shape[1], b[0].shape[1])
    assert abs(np.corrcoef(a[0].mean(0)[:n], b[0].mean(0)[:n])[0, 1]) < 0.3


@pytest.mark.parametrize("kind", synth.AUDIO_KINDS)
def test_audio_kinds(kind: str) -> None:
    x, sr = synth.synth_audio(kind, 2.5, 7)
    assert x.dtype == np.float32 and x.ndim == 2 and x.shape[0] in (1, 2)
    assert x.shape[1] == round(2.5 * sr) and np.abs(x).max() <= 1.0
    if kind == "silence":
        assert not x.any()
    else:
        assert x.std() > 0.01
        assert np.array_equal(x, synth.synth_audio(kind, 2.5, 7)[0])


@pytest.mark.parametrize("ext", [".wav", ".mp3", ".m4a", ".flac"])
def test_make_audio_formats(work: Path, ext: str) -> None:
    p = synth.make_audio(work / f"a{ext}", kind="music", duration=2.0, seed=4)
    info = synth.probe(p)
    assert info.has_audio and not info.has_video
    a = synth.read_audio(p)
    assert a is not None and a[0].shape[1] / a[1] == pytest.approx(2.0, abs=0.1)


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_make_image(work: Path, ext: str) -> None:
    p = synth.make_image(work / f"still{ext}", kind="texture", seed=5, size=(240, 160))
    img = cv2.imread(str(p))
    assert img is not None and img.shape == (160, 240, 3) and img.std() > 5


# --------------------------------------------------------------------------- transforms


def _run(src: Path, work: Path, name: str, dst_name: str | None = None, **params) -> tuple[Path, synth.MediaInfo, dict]:
    dst = work / (dst_name or f"t_{name}.mp4")
    out = synth.transform(src, dst, name, **params)
    assert out == dst and dst.exists()
    return dst, synth.probe(dst, count_frames=True), _truth_ok(dst)


@pytest.mark.parametrize("codec,params,expect", [
    ("libx264", {"bitrate": "120k"}, "h264"),
    ("mpeg4", {}, "mpeg4"),
    ("libx265", {"crf": 36}, "hevc"),
    ("libvpx-vp9", {"crf": 40}, "vp9"),
])
def test_reencode_codecs(src: Path, work: Path, codec: str, params: dict, expect: str) -> None:
    dst, info, tr = _run(src, work, "reencode", f"re_{codec}.mp4", codec=codec, **params)
    assert info.video_codec == expect and (info.width, info.height) == SIZE
    assert info.duration == pytest.approx(DUR, abs=0.2) and info.has_audio
    assert (tr["query_start"], tr["query_end"]) == (0.0, pytest.approx(DUR, abs=0.05))


@pytest.mark.parametrize("scale,expect", [(0.5, (160, 90)), (0.37, (118, 66)), (1.5, (480, 270))])
def test_resize(src: Path, work: Path, scale: float, expect: tuple[int, int]) -> None:
    _, info, _ = _run(src, work, "resize", f"rs_{scale}.mp4", scale=scale)
    assert (info.width, info.height) == expect


def test_crop_asymmetric(src: Path, work: Path, src_frames: list[np.ndarray]) -> None:
    dst, info, tr = _run(src, work, "crop", left=0.15, right=0.05, top=0.1, bottom=0.0)
    assert (info.width, info.height) == (256, 162)
    out = _frames(dst, [1.0])[0]
    ref = src_frames[25][18:18 + 162, 48:48 + 256]
    assert np.abs(out.astype(int) - ref).mean() < 6


def test_letterbox_and_pillarbox_bars(src: Path, work: Path) -> None:
    dst, info, tr = _run(src, work, "letterbox", aspect="4:3")
    assert (info.width, info.height) == (320, 240)
    f = _frames(dst, [1.0])[0].astype(float)
    assert f[:25].mean() < 12 and f[-25:].mean() < 12 and f[40:200].mean() > 30
    assert tr["region"] == pytest.approx([0, 0.125, 1, 0.875], abs=0.01)
    dst, info, _ = _run(src, work, "pillarbox", aspect="21:9")
    assert info.width > info.height * 2.2 and info.height == 180
    f = _frames(dst, [1.0])[0].astype(float)
    assert f[:, :50].mean() < 12 and f[:, -50:].mean() < 12
    # an aspect that is not taller still gets bars (4:3 canvas height)
    _, info, tr = _run(src, work, "letterbox", "lb_wide.mp4", aspect="21:9")
    assert (info.width, info.height) == (320, 240) and tr["region"][1] > 0.1


def test_border_colour(src: Path, work: Path) -> None:
    dst, info, _ = _run(src, work, "border", thickness=0.08, color=(255, 0, 0))
    assert (info.width, info.height) == SIZE
    f = _frames(dst, [1.0])[0].astype(float)
    edge = f[:, :20].reshape(-1, 3).mean(0)
    assert edge[0] > 200 and edge[1] < 60 and edge[2] < 60


def test_blurfill916_is_portrait(src: Path, work: Path) -> None:
    dst, info, tr = _run(src, work, "blurfill916", caption="WOW")
    assert info.height > info.width and info.height / info.width == pytest.approx(16 / 9, abs=0.03)
    assert (info.width, info.height) == (180, 320)
    f = _frames(dst, [1.0])[0].astype(float)
    assert f[:60].std() > 3  # blurred fill, not black bars
    x0, y0, x1, y1 = tr["region"]
    assert x0 == 0 and x1 == 1 and 0.3 < y0 < y1 < 0.7


def test_hflip_mirrors(src: Path, work: Path, src_frames: list[np.ndarray]) -> None:
    dst, info, tr = _run(src, work, "hflip")
    out = _frames(dst)
    assert len(out) == len(src_frames) and tr["mirrored"] is True
    for i in (5, 50, 95):
        flipped = np.abs(out[i].astype(int) - np.fliplr(src_frames[i])).mean()
        straight = np.abs(out[i].astype(int) - src_frames[i]).mean()
        assert flipped < 4 and straight > 3 * flipped


def test_colour_transforms(src: Path, work: Path, src_frames: list[np.ndarray]) -> None:
    dst, _, _ = _run(src, work, "grayscale")
    g = _frames(dst, [2.0])[0].astype(int)
    assert np.abs(g[..., 0] - g[..., 1]).mean() < 3 and np.abs(g[..., 1] - g[..., 2]).mean() < 3
    dst, _, _ = _run(src, work, "colorgrade", brightness=0.15, contrast=1.2, saturation=0.6, gamma=1.0, hue=20)
    c = _frames(dst, [2.0])[0].astype(float)
    assert c.mean() > src_frames[50].mean() + 10
    dst, _, _ = _run(src, work, "noise", sigma=12.0)
    n = _frames(dst, [2.0])[0].astype(float)
    d = n - src_frames[50]
    assert 5 < d.std() < 20 and abs(d.mean()) < 3


def test_watermark_corner(src: Path, work: Path, src_frames: list[np.ndarray]) -> None:
    dst, _, _ = _run(src, work, "watermark", size=0.25, corner="tl", opacity=0.8)
    w = _frames(dst, [2.0])[0].astype(int)
    ref = src_frames[50]
    assert np.abs(w[10:30, 10:80] - ref[10:30, 10:80]).mean() > 20
    assert np.abs(w[100:, 150:] - ref[100:, 150:]).mean() < 6


@pytest.mark.parametrize("factor,pitch", [(1.1, False), (0.9, True)])
def test_speed_changes_duration(src: Path, work: Path, factor: float, pitch: bool) -> None:
    dst, info, tr = _run(src, work, "speed", f"speed_{factor}.mp4", factor=factor, pitch=pitch)
    assert info.duration == pytest.approx(DUR / factor, abs=0.1)
    assert tr["query_end"] == pytest.approx(DUR / factor, abs=0.06)
    assert tr["reference_end"] == pytest.approx(DUR, abs=0.06)
    a = synth.read_audio(dst)
    assert a is not None and a[0].shape[1] / a[1] == pytest.approx(DUR / factor, abs=0.1)


def test_wsola_keeps_pitch() -> None:
    sr = 44100
    t = np.arange(sr * 2) / sr
    x = (0.5 * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32)
    for f in (0.9, 1.1):
        y = synth._wsola(x, f, sr)
        assert y.shape[1] == round(x.shape[1] / f)
        spec = np.abs(np.fft.rfft(y[0, 4000:-4000]))
        peak = np.fft.rfftfreq(y.shape[1] - 8000, 1 / sr)[spec.argmax()]
        assert peak == pytest.approx(440, abs=3)
        assert np.sqrt((y[0, 2000:-2000] ** 2).mean()) == pytest.approx(0.3536, rel=0.05)


def test_fps(src: Path, work: Path) -> None:
    _, info, tr = _run(src, work, "fps", fps=15)
    assert info.fps == pytest.approx(15) and info.duration == pytest.approx(DUR, abs=0.1)
    assert tr["reference_end"] == pytest.approx(DUR, abs=0.1)


def test_embed_splices_with_truth(work: Path, clips: dict[str, Path]) -> None:
    src, host = clips["texture"], clips["scenes"]
    dst, info, tr = _run(src, work, "embed", host=host, start=1.0, length=2.0, at=1.5)
    # times are quantised to the host's frames (1.5 s * 25 fps = frame 37.5 -> 38)
    assert (tr["query_start"], tr["query_end"]) == (pytest.approx(1.5, abs=0.041), pytest.approx(3.5, abs=0.041))
    assert tr["query_end"] - tr["query_start"] == pytest.approx(2.0, abs=1e-6)
    assert (tr["reference_start"], tr["reference_end"]) == (pytest.approx(1.0), pytest.approx(3.0))
    assert info.duration == pytest.approx(DUR + 2.0, abs=0.1)  # insert mode
    q = _frames(dst, [tr["query_start"] + 1.0, 0.5, 4.5])
    r = _frames(src, [tr["reference_start"] + 1.0])[0]
    h = _frames(host, [0.5, 2.5])
    assert np.abs(q[1].astype(int) - r).mean() < 6  # inside the window: the clip
    assert np.abs(q[0].astype(int) - h[0]).mean() < 6  # before: the host
    assert np.abs(q[2].astype(int) - h[1]).mean() < 6  # after: the host resumes
    # clip audio during the window
    qa, ra = synth.read_audio(dst), synth.read_audio(src)
    assert qa is not None and ra is not None
    sr = qa[1]
    q0, r0 = tr["query_start"] + 0.5, tr["reference_start"] + 0.5
    seg = qa[0].mean(0)[int(q0 * sr):int((q0 + 1) * sr)]
    ref = ra[0].mean(0)[int(r0 * ra[1]):int((r0 + 1) * ra[1])]
    if ra[1] != sr:
        from scipy import signal
        ref = signal.resample_poly(ref, sr, ra[1])[:len(seg)]
    assert np.corrcoef(seg[:len(ref)], ref[:len(seg)])[0, 1] > 0.9


def test_embed_generated_host_replace(src: Path, work: Path) -> None:
    _, info, tr = _run(src, work, "embed", "embed_gen.mp4", length=2.0, at=1.0, mode="replace",
                         host_duration=4.0)
    assert tr["query_end"] - tr["query_start"] == pytest.approx(2.0, abs=0.05)
    assert info.duration == pytest.approx(4.0, abs=0.1)  # replace mode keeps the host length
    assert (info.width, info.height) == SIZE


def test_pip(src: Path, work: Path, clips: dict[str, Path]) -> None:
    dst, info, tr = _run(src, work, "pip", host=clips["talk"], scale=0.45, position="br")
    assert (info.width, info.height) == SIZE and info.duration == pytest.approx(DUR, abs=0.1)
    x0, y0, x1, y1 = tr["region"]
    assert x1 - x0 == pytest.approx(0.45, abs=0.02) and x0 > 0.4 and y0 > 0.4
    assert tr["audio"] is True


@pytest.mark.parametrize("frame, color", [(0, None), (6, (0, 0, 0)), (4, (30, 200, 60))])
def test_pip_frame(src: Path, work: Path, clips: dict[str, Path], frame: int, color) -> None:
    """The inset sits in a ``frame`` px border of ``frame_color`` (none at 0), just outside its region."""
    kw = {"frame_color": color} if color else {}
    dst, info, tr = _run(src, work, "pip", f"pip_frame{frame}.mp4", host=clips["talk"], scale=0.45, position="tl",
                         frame=frame, **kw)
    x0, y0, x1, y1 = tr["region"]
    _, img = next(synth.iter_frames(dst))
    h, w = img.shape[:2]
    row = int(round((y0 + y1) / 2 * h))
    outside = img[row, int(round(x0 * w)) - frame : int(round(x0 * w)) - 1].astype(int)  # left of the inset
    if frame:
        assert np.abs(outside - np.array(color)).max() < 30  # the frame colour (RGB), after lossy encoding
    else:
        assert len(outside) == 0 and tr["params"]["frame"] == 0


def test_soundswap(src: Path, work: Path) -> None:
    dst, info, tr = _run(src, work, "soundswap", seed=11, kind="speech")
    assert tr["audio"] is False and tr["video"] is True
    a, b = synth.read_audio(dst), synth.read_audio(src)
    assert a is not None and b is not None and a[1] == 48000 and b[1] == 44100


@pytest.mark.parametrize("ext,params", [(".m4a", {}), (".mp3", {"start": 1.0, "length": 2.0, "snr_db": 10, "bitrate": "64k"}),
                                        (".wav", {"length": 1.5, "start_frac": 1.0})])
def test_audio_only(src: Path, work: Path, ext: str, params: dict) -> None:
    dst, info, tr = _run(src, work, "audio_only", f"ao{ext}", **params)
    assert not info.has_video and info.has_audio and tr["video"] is False
    length = params.get("length", DUR)
    assert tr["query_end"] == pytest.approx(length, abs=0.02)
    a = synth.read_audio(dst)
    assert a is not None and a[0].shape[1] / a[1] == pytest.approx(length, abs=0.1)
    if "start" in params:
        assert tr["reference_start"] == pytest.approx(params["start"])
    if "start_frac" in params:
        assert tr["reference_end"] == pytest.approx(DUR, abs=0.05)
    with pytest.raises(ValueError):
        synth.transform(src, work / "ao_bad.mp4", "audio_only")


def test_combo_composes_truth(src: Path, work: Path) -> None:
    steps = [("hflip", {}), ("crop", {"fraction": 0.1}), ("speed", {"factor": 1.25})]
    dst, info, tr = _run(src, work, "combo", steps=steps, crf=30)
    assert tr["mirrored"] is True and tr["speed_factor"] == pytest.approx(1.25)
    assert tr["query_end"] == pytest.approx(DUR / 1.25, abs=0.06)
    assert tr["reference_end"] == pytest.approx(DUR, abs=0.06)
    assert info.duration == pytest.approx(DUR / 1.25, abs=0.1)
    assert (info.width, info.height) == (288, 162)


def test_registry_presets_and_random_params(src: Path, work: Path) -> None:
    expected = {"reencode", "resize", "crop", "letterbox", "pillarbox", "border", "blurfill916", "hflip", "colorgrade",
                "grayscale", "noise", "watermark", "speed", "fps", "embed", "pip", "soundswap", "audio_only", "combo"}
    assert expected <= set(synth.TRANSFORMS)
    for name, params in synth.STANDARD_TRANSFORMS + synth.HARD_TRANSFORMS + synth.AUDIO_TRANSFORMS:
        assert name in synth.TRANSFORMS and isinstance(params, dict)
    rng = np.random.default_rng(0)
    for name in sorted(expected):
        p = synth.random_params(name, rng)
        assert isinstance(p, dict)
    # copies in picture-in-picture come with and without frames of several widths
    frames = set()
    for seed in range(12):
        p = synth.random_params("pip", np.random.default_rng(seed))
        assert p["frame"] in (0, 2, 4, 6) and len(p["frame_color"]) == 3
        frames.add(p["frame"])
    assert len(frames) >= 3
    with pytest.raises(ValueError):
        synth.transform(src, work / "x.mp4", "no_such_transform")
    # one randomly drawn combo runs end to end
    p = synth.random_params("combo", np.random.default_rng(3))
    _, info, tr = _run(src, work, "combo", "random_combo.mp4", **p)
    assert info.duration > 3.0 and tr["transform"] == "combo"


def test_a_source_with_an_undecodable_packet_is_still_transformed(work: Path) -> None:
    """Real files carry the odd corrupt packet (OpenCV's Megamind.avi: one AC-3
    frame): the generator skips it, keeps its time as silence, and goes on."""
    import av

    src = work / "clean.mp4"
    synth.make_video(src, kind="talk", duration=3.0, seed=1, size=(160, 96), fps=10.0)
    bad = work / "one_bad_packet.mp4"
    with av.open(str(src)) as inp, av.open(str(bad), "w") as out:
        vs = out.add_stream_from_template(inp.streams.video[0])
        aus = out.add_stream_from_template(inp.streams.audio[0])
        n = 0
        for pkt in inp.demux():
            if pkt.dts is None:
                continue
            stream = aus if pkt.stream.type == "audio" else vs
            if stream is aus:
                n += 1
                if n == 20:  # the same size, its bytes garbage
                    junk = av.Packet(bytes(np.random.default_rng(0).integers(0, 256, pkt.size, dtype=np.uint8)))
                    junk.pts, junk.dts, junk.time_base = pkt.pts, pkt.dts, pkt.time_base
                    pkt = junk
            pkt.stream = stream
            out.mux(pkt)
    with av.open(str(bad)) as c:
        rejected = 0
        for pkt in c.demux(audio=0):
            try:
                pkt.decode()
            except av.error.InvalidDataError:
                rejected += 1
    assert rejected == 1  # the fixture really holds an undecodable packet
    clean_audio, bad_audio = synth.read_audio(src), synth.read_audio(bad)
    assert bad_audio[0].shape == clean_audio[0].shape  # the lost packet's time is kept
    out = work / "copy.mp4"
    synth.transform(bad, out, "reencode", codec="libx264", crf=30)
    assert abs(synth.probe(out).duration - synth.probe(src).duration) < 0.2
