"""Decoding real (synthetic, encoded) media: probe, sampled frames and audio,
windows, rotation, bad inputs, and the split/extract/merge contract.

Media are made with :mod:`mediadna.synth` once per module (320x180, a few
seconds; about 5 s of encoding in all).
"""

from __future__ import annotations

import os
import shutil
import threading
from itertools import islice
from pathlib import Path

import av
import numpy as np
import pytest

from mediadna import audio as A
from mediadna import decode as D
from mediadna import synth
from mediadna import visual as V
from mediadna.errors import CORRUPT, EMPTY, NO_CONTENT, NOT_FOUND, NOT_MEDIA, MediaError
from mediadna.extract import media2fingerprint, merge_fingerprints
from mediadna.pipeline import extract_window, plan_segments

SIZE = (320, 180)
SECONDS = 5.0
FPS = 25.0
HOP_S = A.HOP / D.AUDIO_RATE


# --- media (generated once per module) ------------------------------------------------
@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("decode")


@pytest.fixture(scope="module")
def clip(work) -> Path:
    """5 s video with a music soundtrack (h264 + aac in MP4)."""
    return synth.make_video(work / "clip.mp4", kind="scenes", duration=SECONDS, seed=1, size=SIZE, fps=FPS, audio="music")


@pytest.fixture(scope="module")
def mute_clip(work) -> Path:
    """4 s video without an audio stream."""
    return synth.make_video(work / "mute.mp4", kind="shapes", duration=4.0, seed=2, size=SIZE, fps=FPS, audio=None)


@pytest.fixture(scope="module")
def long_clip(work) -> Path:
    """12 s video with music: long enough for three 4 s pipeline windows."""
    return synth.make_video(work / "long.mp4", kind="scenes", duration=12.0, seed=3, size=SIZE, fps=FPS, audio="music")


@pytest.fixture(scope="module")
def songs(work) -> dict[str, Path]:
    """The same 5 s of music as WAV, MP3 and M4A (AAC)."""
    return {ext: synth.make_audio(work / f"song.{ext}", kind="music", duration=SECONDS, seed=4) for ext in ("wav", "mp3", "m4a")}


@pytest.fixture(scope="module")
def images(work) -> dict[str, Path]:
    return {ext: synth.make_image(work / f"still.{ext}", kind="scenes", seed=1, size=SIZE) for ext in ("png", "jpg")}


def _decode(path, **kw):
    items = list(D.decode_media(path, **kw))
    return [i for i in items if i.kind == "video"], [i for i in items if i.kind == "audio"]


# --- probe ------------------------------------------------------------------------------
def test_probe_video_with_audio(clip):
    info = D.probe(clip)
    assert info.media_type == "video" and info.has_video and info.has_audio
    assert info.duration == pytest.approx(SECONDS, abs=0.05)
    assert (info.width, info.height) == SIZE
    assert info.fps == pytest.approx(FPS)
    assert info.video_codec == "h264" and info.audio_codec == "aac"
    assert "mp4" in info.format_name
    assert info.size_bytes == clip.stat().st_size


def test_probe_video_without_audio(mute_clip):
    info = D.probe(mute_clip)
    assert info.media_type == "video" and info.has_video and not info.has_audio
    assert info.duration == pytest.approx(4.0, abs=0.05)
    assert info.audio_codec == ""


@pytest.mark.parametrize("ext, codecs", [("wav", {"pcm_s16le"}), ("mp3", {"mp3", "mp3float"}), ("m4a", {"aac"})])
def test_probe_audio_only(songs, ext, codecs):
    info = D.probe(songs[ext])
    assert info.media_type == "audio" and info.has_audio and not info.has_video
    assert info.duration == pytest.approx(SECONDS, abs=0.05)
    assert info.audio_codec in codecs
    assert (info.width, info.height, info.fps, info.video_codec) == (0, 0, 0.0, "")


@pytest.mark.parametrize("ext, codec", [("png", "png"), ("jpg", "mjpeg")])
def test_probe_image(images, ext, codec):
    info = D.probe(images[ext])
    assert info.media_type == "image" and info.has_video and not info.has_audio
    assert info.duration == 0.0
    assert (info.width, info.height) == SIZE
    assert info.video_codec == codec


# --- decode_media -----------------------------------------------------------------------
def test_decode_samples_frames_and_audio(clip):
    video, audio = _decode(clip)
    # frames: ~SAMPLE_FPS per second, increasing, FRAME_SIZE^2 uint8 grey
    times = np.array([v.time for v in video])
    assert len(video) == pytest.approx(SECONDS * D.SAMPLE_FPS, abs=1)
    assert np.all(np.diff(times) > 0)
    # each sample is the first frame at/after its instant: steps of 1/SAMPLE_FPS within one source frame
    assert np.allclose(np.diff(times), 1 / D.SAMPLE_FPS, atol=1 / FPS + 1e-6)
    assert times[0] < 1 / D.SAMPLE_FPS and times[-1] >= SECONDS - 2 / D.SAMPLE_FPS
    for v in video:
        assert v.data.shape == (D.FRAME_SIZE, D.FRAME_SIZE) and v.data.dtype == np.uint8
    assert np.std(np.stack([v.data for v in video]).astype(np.float32)) > 10  # real pictures, not blank
    # audio: float32 mono at AUDIO_RATE, contiguous, as long as the media
    assert all(a.data.dtype == np.float32 and a.data.ndim == 1 for a in audio)
    assert audio[0].time == pytest.approx(0.0, abs=0.01)
    pos = audio[0].time
    for a in audio:  # each chunk starts where the previous one ended
        assert a.time == pytest.approx(pos, abs=1.0 / D.AUDIO_RATE)
        pos = a.time + len(a.data) / D.AUDIO_RATE
    total = sum(len(a.data) for a in audio) / D.AUDIO_RATE
    assert total == pytest.approx(SECONDS, abs=0.05)  # AAC padding adds ~16 ms
    samples = np.concatenate([a.data for a in audio])
    assert 0.05 < np.abs(samples).max() <= 1.0


@pytest.mark.parametrize("start, end", [(2.0, 4.0), (1.5, 3.5), (0.6, 2.2)])
def test_decode_window_yields_only_its_span_in_absolute_times(clip, start, end):
    full_video, full_audio = _decode(clip)
    video, audio = _decode(clip, start=start, end=end)
    times = np.array([v.time for v in video])
    assert len(times) == pytest.approx((end - start) * D.SAMPLE_FPS, abs=1)
    assert times.min() >= start - 1e-3 and times.max() < end
    assert times[0] < start + 1 / D.SAMPLE_FPS
    # frames on the full decode's sampling grid are the very same pictures (seek is exact)
    full = {round(v.time, 3): v.data for v in full_video}
    on_grid = [(round(v.time, 3), v.data) for v in video if round(v.time, 3) in full]
    if start * D.SAMPLE_FPS == int(start * D.SAMPLE_FPS):
        assert len(on_grid) == len(video)
    assert all(np.array_equal(full[t], d) for t, d in on_grid)
    # audio covers exactly [start, end) and equals the full decode's samples there
    assert audio[0].time == pytest.approx(start, abs=1.0 / D.AUDIO_RATE)
    window = np.concatenate([a.data for a in audio])
    assert len(window) == pytest.approx((end - start) * D.AUDIO_RATE, abs=2)
    whole = np.concatenate([a.data for a in full_audio])
    i0 = int(round(audio[0].time * D.AUDIO_RATE))
    assert np.allclose(window, whole[i0 : i0 + len(window)], atol=1e-4)


@pytest.mark.parametrize("window", [{}, {"start": 1.3, "end": 3.7}])
def test_audio_comes_in_batches_holding_the_same_samples(clip, songs, monkeypatch, window):
    for path in (clip, songs["mp3"]):
        _, batched = _decode(path, **window)
        assert all(len(a.data) >= D.AUDIO_BATCH_SECONDS * D.AUDIO_RATE for a in batched[1:-1])
        assert len(batched) <= SECONDS / D.AUDIO_BATCH_SECONDS + 2
        monkeypatch.setattr(D, "AUDIO_BATCH_SECONDS", 0.0)  # one piece per compressed frame
        _, framed = _decode(path, **window)
        monkeypatch.undo()
        assert len(framed) > 3 * len(batched)
        assert batched[0].time == pytest.approx(framed[0].time, abs=1e-9)
        a, b = np.concatenate([x.data for x in batched]), np.concatenate([x.data for x in framed])
        assert len(a) == pytest.approx(len(b), abs=1) and np.array_equal(a[: min(len(a), len(b))], b[: min(len(a), len(b))])


def test_decode_media_is_a_lazy_stream(clip, tmp_path):
    gen = D.decode_media(clip)
    assert iter(gen) is gen  # a generator, not a list
    first = list(islice(gen, 3))
    assert len(first) == 3
    gen.close()  # stops the decoder early; its worker thread ends
    for t in threading.enumerate():
        if t.name == "mediadna-decode":
            t.join(timeout=5)
            assert not t.is_alive()
    # errors surface when the stream is read, as MediaError
    lazy = D.decode_media(tmp_path / "missing.mp4")
    with pytest.raises(MediaError) as exc:
        next(lazy)
    assert exc.value.code == NOT_FOUND
    # with and without the prefetching worker thread the stream is the same
    a = [(i.kind, i.time, len(i.data)) for i in D.decode_media(clip, end=2.0)]
    b = [(i.kind, i.time, len(i.data)) for i in D.decode_media(clip, end=2.0, prefetch=0)]
    assert a == b


@pytest.fixture
def opens(monkeypatch) -> list:
    """(source, container) of every input decode opens, in order."""
    seen = []
    real_open = D._open_input

    def recording(source):
        container, reader = real_open(source)
        seen.append((source, container))
        return container, reader

    monkeypatch.setattr(D, "_open_input", recording)
    return seen


def test_open_media_opens_the_input_once_for_info_and_decoding(clip, opens):
    with D.open_media(clip) as media:
        assert media.info == D.probe(clip)
        opens.clear()
        items = [(i.kind, i.time, i.data.tobytes()) for i in media.decode(end=2.0)]
        assert opens == []  # decoded from the container already open
        again = [(i.kind, i.time, i.data.tobytes()) for i in media.decode(end=2.0)]
        assert [src for src, _ in opens] == [clip]  # that container is closed now: a second decode opens the input again
    assert items and items == again
    assert items == [(i.kind, i.time, i.data.tobytes()) for i in D.decode_media(clip, end=2.0)]
    # fingerprinting opens it once (it used to probe, then open it again to decode)
    opens.clear()
    media2fingerprint(clip)
    assert [src for src, _ in opens] == [clip]


def _is_open(container) -> bool:
    try:
        container.duration  # PyAV asserts on a closed container
        return True
    except AssertionError:
        return False


def test_open_media_closes_what_it_opened(clip, opens):
    with D.open_media(clip) as media:  # never decoded
        assert media.info.has_video and _is_open(opens[-1][1])
    assert len(opens) == 1 and not _is_open(opens[0][1])
    with D.open_media(clip) as media:  # decoded part-way: the decode closes it
        gen = media.decode()
        next(gen)
        assert _is_open(opens[-1][1])
        gen.close()
        assert not _is_open(opens[-1][1])
    assert len(opens) == 2


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_image_decodes_to_one_frame_and_fingerprints(images, ext):
    video, audio = _decode(images[ext], fps=1.0)
    assert len(video) == 1 and not audio
    assert video[0].data.shape == (D.FRAME_SIZE, D.FRAME_SIZE)
    fp = media2fingerprint(images[ext])
    assert fp.media_type == "image" and len(fp.visual) == 1 and fp.audio is None


# --- rotation ---------------------------------------------------------------------------
def _encode_rotated(src: Path, dst: Path, display_rotation: float | None, k: int) -> bool:
    """Re-encode ``src`` with its pixels turned by ``np.rot90(k)`` and, if given,
    a display matrix telling players to turn them back.  Returns whether the
    display rotation reads back from the decoded frames."""
    with av.open(str(src)) as ic, av.open(str(dst), "w") as oc:
        out = None
        for i, frame in enumerate(ic.decode(video=0)):
            img = np.ascontiguousarray(np.rot90(frame.to_ndarray(format="rgb24"), k=k))
            if out is None:
                out = oc.add_stream("libx264", rate=int(FPS))
                out.height, out.width = img.shape[:2]
                out.pix_fmt = "yuv420p"
                out.options = {"preset": "ultrafast", "crf": "18"}
                if display_rotation is not None:
                    if not hasattr(out, "set_display_rotation"):
                        return False
                    out.set_display_rotation(display_rotation)
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts = i
            oc.mux(out.encode(vf))
        oc.mux(out.encode())
    with av.open(str(dst)) as c:
        got = next(c.decode(video=0)).rotation
    return display_rotation is None or got == display_rotation


@pytest.fixture(scope="module")
def portrait(work) -> tuple[Path, Path]:
    """Upright portrait footage (what a phone shows), 4 s, no audio, and a
    plain re-encode of it by the same encoder the rotated copies go through."""
    upright = synth.make_video(work / "portrait.mp4", kind="scenes", duration=4.0, seed=1, size=(180, 320), fps=FPS, audio=None)
    plain = work / "portrait_plain.mp4"
    _encode_rotated(upright, plain, None, 0)
    return upright, plain


@pytest.mark.parametrize("degrees, k", [(90, -1), (-90, 1)])
def test_rotated_file_is_decoded_upright(work, portrait, degrees, k):
    """A phone stores landscape pixels plus a display matrix; the fingerprint
    must be the upright picture's, and without the matrix it is not."""
    upright, plain = portrait
    rotated = work / f"rot{degrees}.mp4"
    if not _encode_rotated(upright, rotated, degrees, k):
        pytest.skip("this PyAV cannot write a display-matrix rotation that decodes back via frame.rotation")
    bare = work / f"bare{degrees}.mp4"  # the same stored pixels, no display matrix
    _encode_rotated(upright, bare, None, k)
    assert D.probe(rotated).width == 320  # stored landscape
    up = media2fingerprint(upright).visual
    same_encoder = media2fingerprint(plain).visual
    rot = media2fingerprint(rotated).visual
    wrong = media2fingerprint(bare).visual
    assert len(rot) == len(up) == len(same_encoder)
    # measured: median 0, max 2 against both
    d = V.hamming(same_encoder.hashes, rot.hashes)
    assert np.median(d) <= 2 and d.max() <= 6, d
    d = V.hamming(up.hashes, rot.hashes)
    assert np.median(d) <= 4 and d.max() <= 10, d
    assert np.median(V.hamming(up.hashes, wrong.hashes)) >= 20  # measured ~36


# --- bad inputs -------------------------------------------------------------------------
def _code(fn, *args) -> str:
    with pytest.raises(MediaError) as exc:
        fn(*args)
    assert exc.value.message and "\n" not in str(exc.value)
    return exc.value.code


@pytest.fixture
def bad(tmp_path, clip) -> dict[str, Path]:
    d = tmp_path / "bad"
    d.mkdir()
    (d / "empty.mp4").write_bytes(b"")
    (d / "notes.mp4").write_text("these are meeting notes, not a video\n" * 50)
    (d / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(50_000))
    (d / "folder.mp4").mkdir()
    data = clip.read_bytes()
    (d / "truncated.mp4").write_bytes(data[: int(0.3 * len(data))])
    return {p.stem: p for p in d.iterdir()} | {"missing": d / "missing.mp4"}


@pytest.mark.parametrize(
    "name, code",
    [
        ("missing", NOT_FOUND),
        ("empty", EMPTY),
        ("notes", NOT_MEDIA),
        ("noise", NOT_MEDIA),
        ("folder", NOT_MEDIA),
        # synth (like most muxers) writes the MP4 index (moov) at the end: the
        # first 30 % is a recognisable MP4 without an index, nothing decodes.
        ("truncated", CORRUPT),
    ],
)
def test_bad_inputs_raise_media_error_with_stable_code(bad, name, code):
    path = bad[name]
    assert _code(D.probe, path) == code
    assert _code(lambda p: list(D.decode_media(p)), path) == code
    assert _code(lambda p: D.open_media(p).__enter__(), path) == code
    assert _code(media2fingerprint, path) == code


def test_truncated_streamable_file_keeps_what_decoded(work, clip):
    """An MP4 with its index in front (faststart), cut to its first 30 %:
    opening works and decoding keeps the head (no error), all within it."""
    faststart = work / "faststart.mp4"
    with av.open(str(clip)) as ic, av.open(str(faststart), "w", options={"movflags": "faststart"}) as oc:
        streams = {s.index: oc.add_stream_from_template(s) for s in ic.streams}
        for pkt in ic.demux():
            if pkt.dts is not None:
                pkt.stream = streams[pkt.stream.index]
                oc.mux(pkt)
    data = faststart.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")
    cut = work / "faststart_cut.mp4"
    cut.write_bytes(data[: int(0.3 * len(data))])
    assert D.probe(cut).duration == pytest.approx(SECONDS, abs=0.05)  # the index still says 5 s
    video, audio = _decode(cut)
    assert 2 <= len(video) < 0.6 * SECONDS * D.SAMPLE_FPS
    assert max(v.time for v in video) < 0.6 * SECONDS
    assert 0.5 < sum(len(a.data) for a in audio) / D.AUDIO_RATE < 0.6 * SECONDS
    fp = media2fingerprint(cut)
    assert fp.has_visual and fp.has_audio
    assert fp.visual.times.max() < 0.6 * SECONDS


@pytest.mark.parametrize(
    "name",
    [
        "my clip (final).mp4",
        "ünïcødé 日本語 клип.mp4",
        "-rf --help.mp4",
        "it's \"quoted\".mp4",
        "$(touch pwned) `touch pwned2`.mp4",
        "semi;colon|pipe&amp.mp4",
        "a:b.mp4",  # a relative "name:..." must not be taken for an FFmpeg protocol
        "concat:decoy.mp4",
    ],
)
def test_hostile_file_names(tmp_path, monkeypatch, clip, mute_clip, name):
    shutil.copy(clip, tmp_path / name)
    shutil.copy(mute_clip, tmp_path / "decoy.mp4")  # what "concat:decoy.mp4" would read instead
    monkeypatch.chdir(tmp_path)
    for path in (tmp_path / name, name):  # absolute and relative
        info = D.probe(path)
        assert info.has_audio and info.duration == pytest.approx(SECONDS, abs=0.05), path
        fp = media2fingerprint(path, want_audio=False)
        assert fp.source == name and fp.has_visual
    assert not any(tmp_path.glob("pwned*"))
    assert _code(D.probe, "missing " + name) == NOT_FOUND


# --- fingerprints of edge inputs ----------------------------------------------------------
def test_silent_audio_file_has_no_content(work):
    silent = synth.make_audio(work / "silence.wav", kind="silence", duration=3.0, seed=0)
    assert D.probe(silent).has_audio
    assert _code(media2fingerprint, silent) == NO_CONTENT


def test_video_without_audio_fingerprints_with_audio_none(mute_clip):
    fp = media2fingerprint(mute_clip)
    assert fp.media_type == "video" and fp.audio is None and not fp.has_audio
    assert len(fp.visual) == pytest.approx(4.0 * D.SAMPLE_FPS, abs=1)
    assert fp.duration == pytest.approx(4.0, abs=0.05)


def test_audio_only_files_fingerprint_alike(songs):
    fps = {ext: media2fingerprint(p) for ext, p in songs.items()}
    for ext, fp in fps.items():
        assert fp.media_type == "audio" and fp.visual is None, ext
        assert fp.duration == pytest.approx(SECONDS, abs=0.05), ext
        assert len(fp.audio) >= 20 * SECONDS, ext  # measured ~70 peaks/s
    # lossy copies keep nearly every peak of the lossless one (measured 93-97 %)
    ref = set(zip(fps["wav"].audio.frames.tolist(), fps["wav"].audio.bins.tolist()))
    for ext in ("mp3", "m4a"):
        got = set(zip(fps[ext].audio.frames.tolist(), fps[ext].audio.bins.tolist()))
        assert len(ref & got) >= 0.85 * len(ref), ext
        assert len(ref & got) >= 0.85 * len(got), ext


# --- split / extract / merge (the cloud pipeline's contract) ------------------------------
def test_merged_windows_match_the_one_piece_fingerprint(long_clip):
    whole = media2fingerprint(long_clip)
    plan = plan_segments(whole.duration, segment_seconds=4, overlap=1)
    assert plan == [(0.0, 5.0), (4.0, 9.0), (8.0, 12.0)]
    parts = [extract_window(long_clip, s, e) for s, e in plan]
    merged = merge_fingerprints(parts, duration=whole.duration)
    assert merged.duration == whole.duration and merged.media_type == "video"
    # visual: the same sampled frames, hashes and flags, once each
    wv, mv = whole.visual, merged.visual
    assert np.all(np.diff(mv.times) > 0)
    assert len(mv) == len(wv)
    assert np.allclose(mv.times, wv.times, atol=0.5 / FPS)
    d = V.hamming(wv.hashes, mv.hashes)
    assert np.mean(d == 0) >= 0.95 and d.max() <= 8, d  # measured: all identical
    assert np.array_equal(mv.flags, wv.flags)
    # audio: sorted, no duplicates, and nearly the same peaks (measured 98.5 %)
    key = merged.audio.frames.astype(np.int64) * 1000 + merged.audio.bins
    assert np.all(np.diff(key) > 0)
    w = set(zip(whole.audio.frames.tolist(), whole.audio.bins.tolist()))
    m = set(zip(merged.audio.frames.tolist(), merged.audio.bins.tolist()))
    assert len(w & m) >= 0.95 * len(w) and len(w & m) >= 0.95 * len(m)
    # The differences sit just after a window's start: a window's peak picker
    # has no masking history before its own start, and merge keeps the later
    # window's peaks from there on.
    starts = np.array([s for s, _ in plan])
    for frame, _ in w ^ m:
        t = frame * HOP_S
        assert np.any((t >= starts - HOP_S) & (t < starts + 1.0)), t
    # contour: ascending frames, once each; where both have a frame its bits
    # agree (a window's spectrum does not depend on its neighbours); a
    # window's first frame has no predecessor, so a frame may be missing there
    mc, wc = merged.audio, whole.audio
    assert len(wc.contour) > 0 and np.all(np.diff(mc.contour_frames.astype(np.int64)) > 0)
    common, iw, im = np.intersect1d(wc.contour_frames, mc.contour_frames, return_indices=True)
    assert len(common) >= len(wc.contour) - len(plan)
    assert np.mean(wc.contour[iw] == mc.contour[im]) >= 0.95


# --- sharing the cores ------------------------------------------------------------------
def test_small_pictures_are_decoded_on_one_thread(clip, work, monkeypatch):
    """Up to ONE_THREAD_PIXELS one decoder thread (frame threads cost more than
    they save on small frames); larger pictures keep FFmpeg's choice (0)."""
    assert D.decoder_threads(480, 270) == 1 and D.decoder_threads(160, 120) == 1
    assert D.decoder_threads(640, 360) == 0 and D.decoder_threads(1920, 1080) == 0
    big = synth.make_video(work / "big.mp4", kind="shapes", duration=1.0, seed=5, size=(640, 360), fps=FPS, audio=None)
    seen = {}
    pick = D._pick_streams

    def spy(container):
        video, audio = pick(container)
        seen[container.name] = video
        return video, audio

    monkeypatch.setattr(D, "_pick_streams", spy)
    for path in (clip, big):
        frames, _ = _decode(path, prefetch=0)
        assert frames
    counts = {Path(name).name: v.codec_context.thread_count for name, v in seen.items()}
    assert counts["clip.mp4"] == 1
    if (os.cpu_count() or 1) > 1:  # FFmpeg's choice once open: a thread per core (and one more)
        assert counts["big.mp4"] > 1


def test_blas_is_held_to_one_thread_while_fingerprinting(clip, monkeypatch):
    """OpenBLAS's idle threads spin between calls and take the decoder's core:
    the frame DCT (the one BLAS call) runs on BLAS_THREADS, and the caller's
    setting is back afterwards."""
    from threadpoolctl import threadpool_info

    def blas_threads() -> set[int]:
        return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}

    before = blas_threads()
    if not before:
        pytest.skip("no BLAS library loaded")
    seen: list[set[int]] = []
    hashes = V.rasters2hashes

    def spy(rasters):
        seen.append(blas_threads())
        return hashes(rasters)

    monkeypatch.setattr(V, "rasters2hashes", spy)
    media2fingerprint(clip)
    assert seen and all(s == {1} for s in seen)
    assert blas_threads() == before


def test_small_pictures_are_scaled_and_audio_resampled_in_the_callers_thread(clip, work, monkeypatch):
    """The decoder thread only decodes small pictures; scaling them and all
    resampling happen in the caller's thread, so the two share the cores
    (large pictures are scaled by the decoder thread: a queue of them would
    hold megabytes each)."""
    big = synth.make_video(work / "big_audio.mp4", kind="shapes", duration=1.0, seed=6, size=(640, 360), fps=FPS, audio="music")
    threads: dict[str, set[str]] = {"scale": set(), "resample": set()}
    scale, resample = D.frame2gray, D._Finish._resample

    def spy_scale(frame, size):
        threads["scale"].add(threading.current_thread().name)
        return scale(frame, size)

    def spy_resample(self, frame):
        threads["resample"].add(threading.current_thread().name)
        return resample(self, frame)

    monkeypatch.setattr(D, "frame2gray", spy_scale)
    monkeypatch.setattr(D._Finish, "_resample", spy_resample)
    me = threading.current_thread().name
    frames, audio = _decode(clip)
    assert frames and audio
    assert threads == {"scale": {me}, "resample": {me}}
    threads["scale"].clear()
    frames, audio = _decode(big)
    assert frames and audio and threads["scale"] == {"mediadna-decode"} and threads["resample"] == {me}


def test_resampling_failing_part_way_keeps_what_came_before(clip, monkeypatch):
    """Like a truncated tail: the audio before the failure is kept, nothing after."""
    whole = np.concatenate([a.data for a in _decode(clip)[1]])
    real = av.AudioResampler

    class Failing:
        def __init__(self, *args, **kwargs):
            self.inner, self.calls = real(*args, **kwargs), 0

        def resample(self, frame):
            self.calls += 1
            if self.calls == 60:
                raise av.error.FFmpegError(-1, "resampler broke")
            return self.inner.resample(frame)

    monkeypatch.setattr(D.av, "AudioResampler", Failing)
    items = list(D.decode_media(clip))
    audio = np.concatenate([i.data for i in items if i.kind == "audio"])
    assert 0 < len(audio) < len(whole) and np.array_equal(audio, whole[: len(audio)])
