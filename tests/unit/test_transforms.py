"""Acceptance invariants on encoded media, one test per transformation family.

Every copy of ref_a (made by ``mediadna.synth.transform``, which writes the
ground truth next to it) is queried against a library holding ref_a, ref_b and
an unrelated clip.  It must be a duplicate of ref_a and of nothing else, its
segment time codes must agree with the truth within 1 s on both axes, every
segment must lie on the true time line, the speed must be the truth's within
0.03, and the evidence (modality, mirroring) must be what the edit left.
Unrelated clips of the same kinds must not be duplicates.

Failure messages print the matches with their numbers (similarity, segments,
scores), so a weakness of the matcher shows what it saw.
"""

from __future__ import annotations

import pytest

from mediadna import synth
from mediadna.pipeline import SHORT_QUERY_FRACTION, Engine
from mediadna.schemas import validate
from mediadna.store import SQLiteStore

LIB = "lib"
TOL = 1.0  # seconds, on both time axes
SPEED_TOL = 0.03
_GRADE = {"brightness": 0.05, "contrast": 1.1, "saturation": 1.2, "gamma": 0.95, "hue": 0.0}

#: (id, transform, params, extension).  Parameters are fixed (the synth is
#: deterministic), so a failure is reproducible; the audio excerpts are ~5 s
#: of ref_a's soundtrack with white noise at 10 dB SNR, lossy at 64 kb/s.
CASES = [
    ("reencode-x264-crf36", "reencode", {"crf": 36}, ".mp4"),
    ("reencode-mpeg4-200k", "reencode", {"codec": "mpeg4", "bitrate": 200_000}, ".mp4"),
    ("resize-0.5", "resize", {"scale": 0.5}, ".mp4"),
    ("crop-10pct", "crop", {"fraction": 0.1}, ".mp4"),
    ("letterbox-4x3", "letterbox", {"aspect": "4:3"}, ".mp4"),
    ("pillarbox-21x9", "pillarbox", {"aspect": "21:9"}, ".mp4"),
    ("border-5pct", "border", {"thickness": 0.05, "color": (255, 255, 255)}, ".mp4"),
    ("blurfill916", "blurfill916", {"caption": "WAIT FOR IT"}, ".mp4"),
    ("hflip", "hflip", {}, ".mp4"),
    ("colorgrade", "colorgrade", dict(_GRADE), ".mp4"),
    ("grayscale", "grayscale", {}, ".mp4"),
    ("noise-8", "noise", {"sigma": 8.0}, ".mp4"),
    ("watermark", "watermark", {"size": 0.18, "corner": "br", "opacity": 0.6}, ".mp4"),
    ("speed-0.9", "speed", {"factor": 0.9}, ".mp4"),
    ("speed-1.1", "speed", {"factor": 1.1}, ".mp4"),
    ("fps-15", "fps", {"fps": 15}, ".mp4"),
    ("soundswap", "soundswap", {"seed": 99, "kind": "music"}, ".mp4"),
    ("embed-10s", "embed", {"length": 10.0, "at": 4.0, "start": 6.0, "host_kind": "texture", "host_seed": 4242}, ".mp4"),
    ("embed-7s-replace", "embed", {"length": 7.0, "at": 6.0, "start": 11.0, "mode": "replace", "host_kind": "talk", "host_seed": 515}, ".mp4"),
    ("audio-mp3-5s", "audio_only", {"start": 7.0, "length": 5.0, "snr_db": 10.0, "bitrate": "64k"}, ".mp3"),
    ("audio-m4a-5s", "audio_only", {"start": 12.5, "length": 5.0, "snr_db": 10.0, "bitrate": "64k"}, ".m4a"),
    # picture-in-picture over unrelated footage with the host's sound: picture-only evidence
    ("pip-host-audio", "pip", {"scale": 0.45, "position": "br", "audio": "host"}, ".mp4"),
    # ... in a frame: its outer edge is the box found; the frame's strips are not the picture
    ("pip-white-frame", "pip", {"scale": 0.45, "position": "br", "audio": "host", "frame": 6, "frame_color": (255, 255, 255)}, ".mp4"),
    ("pip-black-frame", "pip", {"scale": 0.35, "position": "tr", "audio": "host", "frame": 8, "frame_color": (0, 0, 0)}, ".mp4"),
]


# --- fixtures and helpers ------------------------------------------------------------------
@pytest.fixture(scope="module")
def engine(tmp_path_factory, fingerprint_of, ref_a, ref_b, unrelated):
    store = SQLiteStore(tmp_path_factory.mktemp("transforms") / "library.sqlite3")
    store.create_library(LIB)
    eng = Engine(store)
    for ref in (ref_a, ref_b, unrelated):
        r = eng.process(fingerprint_of(ref), LIB, save_type="save")
        assert r["stored"], r
    yield eng
    store.close()


def describe(r: dict) -> str:
    """The matches with their numbers, for assertion messages."""
    lines = [f"{r['input']['key']}: status={r['status']} duplicate={r['duplicate']} error={r['error']}"]
    for m in r["matches"]:
        lines.append(f"  {m['primary_key']}: similarity={m['similarity']:.3f} qcov={m['query_coverage']:.2f} rcov={m['reference_coverage']:.2f} {m['modality']}")
        for s in m["segments"]:
            lines.append(
                f"    q {s['query_start']:.2f}-{s['query_end']:.2f}  r {s['reference_start']:.2f}-{s['reference_end']:.2f}"
                f"  score={s['score']:.3f} {s['modality']} speed={s['speed']:.3f} flipped={s['flipped']}"
            )
    return "\n".join(lines)


def duplicates(r: dict, engine: Engine) -> set[str]:
    """Keys whose match is a duplicate by the library's policy (threshold, minimum segment)."""
    lib = engine.store.get_library(LIB)
    need = min(lib.min_segment_seconds, SHORT_QUERY_FRACTION * r["input"]["duration"])
    return {
        m["primary_key"]
        for m in r["matches"]
        if m["exact"] or (m["similarity"] >= lib.threshold and max(s["query_end"] - s["query_start"] for s in m["segments"]) >= need)
    }


def query(engine: Engine, path) -> dict:
    r = engine.process(path, LIB, save_type="nosave")
    validate(r, "result")
    assert r["status"] == "succeeded", describe(r)
    return r


def expected_modality(truth: dict) -> str:
    if truth["video"] and truth["audio"]:
        return "audiovisual"
    return "video" if truth["video"] else "audio"


def check_copy(engine: Engine, path, truth: dict) -> None:
    r = query(engine, path)
    info = describe(r) + f"\n  truth: q {truth['query_start']}-{truth['query_end']}  r {truth['reference_start']}-{truth['reference_end']}"

    # a duplicate of ref_a, and of nothing else
    assert r["duplicate"], info
    assert duplicates(r, engine) == {"ref_a.mp4"}, info
    best = r["matches"][0]
    assert best["primary_key"] == "ref_a.mp4", info
    assert not best["exact"], info

    # time codes: the longest segment is the copied window, on both axes
    q0, q1 = truth["query_start"], truth["query_end"]
    r0, r1 = truth["reference_start"], truth["reference_end"]
    seg = max(best["segments"], key=lambda s: s["query_end"] - s["query_start"])
    got = (seg["query_start"], seg["query_end"], seg["reference_start"], seg["reference_end"])
    assert all(abs(g - t) <= TOL for g, t in zip(got, (q0, q1, r0, r1))), f"segment {got} vs truth {(q0, q1, r0, r1)}\n{info}"
    # every segment reported for ref_a lies inside the copied window, on the true line
    speed = (r1 - r0) / (q1 - q0)
    for s in best["segments"]:
        assert q0 - TOL <= s["query_start"] and s["query_end"] <= q1 + TOL, info
        for q, ref in ((s["query_start"], s["reference_start"]), (s["query_end"], s["reference_end"])):
            assert abs(ref - (r0 + speed * (q - q0))) <= TOL, info

    # speed, mirroring, evidence
    assert abs(seg["speed"] - truth.get("speed_factor", 1.0)) <= SPEED_TOL, info
    assert seg["flipped"] == bool(truth.get("mirrored", False)), info
    assert best["modality"] == expected_modality(truth), info
    assert seg["modality"] == expected_modality(truth), info


# --- copies -------------------------------------------------------------------------------------
def _params(cases):
    return [pytest.param(name, params, ext, id=cid) for cid, name, params, ext in cases]


@pytest.mark.parametrize("name, params, ext", _params(CASES))
def test_copy_is_found_with_its_time_codes(engine, make_copy, name, params, ext):
    path = make_copy(name, ext=ext, **params)
    truth = synth.read_truth(path)
    assert truth["transform"] == name  # the ground truth belongs to this copy
    check_copy(engine, path, truth)


def test_truth_of_the_cases_is_what_the_tests_assume(make_copy):
    """The invariants above lean on these ground-truth facts; check them once."""
    def truth(case_id: str) -> dict:
        _, name, params, ext = next(c for c in CASES if c[0] == case_id)
        return synth.read_truth(make_copy(name, ext=ext, **params))

    t = truth("soundswap")
    assert t["video"] and not t["audio"]
    t = truth("pip-host-audio")
    assert t["video"] and not t["audio"]
    t = truth("audio-mp3-5s")
    assert not t["video"] and t["audio"] and t["query_end"] - t["query_start"] == pytest.approx(5.0, abs=0.05)
    t = truth("embed-10s")
    assert t["query_end"] - t["query_start"] == pytest.approx(10.0, abs=0.05) and t["query_start"] >= 3.9
    assert truth("speed-1.1")["speed_factor"] == 1.1
    assert truth("hflip")["mirrored"] is True


# --- negatives ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, seed, audio", [("scenes", 11, "music"), ("talk", 12, "speech"), ("shapes", 13, "music")])
def test_unrelated_clip_of_the_same_kind_is_not_a_duplicate(engine, media_dir, kind, seed, audio):
    path = synth.make_video(media_dir / f"other-{kind}-{seed}.mp4", kind=kind, duration=12.0, seed=seed, size=(320, 180), audio=audio)
    r = query(engine, path)
    assert not r["duplicate"], describe(r)
    assert duplicates(r, engine) == set(), describe(r)


def test_unrelated_music_excerpt_is_not_a_duplicate(engine, media_dir):
    """A 5 s noisy mp3 of music from the same generator as ref_a's soundtrack, but another piece."""
    src = synth.make_video(media_dir / "other-music-src.mp4", kind="scenes", duration=12.0, seed=21, size=(320, 180), audio="music")
    path = media_dir / "other-music.mp3"
    synth.transform(src, path, "audio_only", start=4.0, length=5.0, snr_db=10.0, bitrate="64k")
    r = query(engine, path)
    assert not r["duplicate"], describe(r)


# --- night footage ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def night(tmp_path_factory, media_dir):
    """A library of two night clips (dark sky, dim lights: dim frames) and the clips."""
    clips = {k: synth.make_video(media_dir / f"night-{k}.mp4", kind="dark", duration=20.0, seed=seed, size=(320, 180),
                                 audio="music") for k, seed in (("a", 31), ("b", 32), ("other", 33))}
    store = SQLiteStore(tmp_path_factory.mktemp("night") / "library.sqlite3")
    store.create_library(LIB)
    eng = Engine(store)
    for k in ("a", "b"):
        assert eng.process(clips[k], LIB, save_type="onlysave")["stored"]
    yield eng, clips
    store.close()


def test_night_footage_with_its_sound_swapped_is_found_by_its_picture(night, make_copy):
    """Dim frames are evidence: with the sound replaced, only the picture can match."""
    eng, clips = night
    path = make_copy("soundswap", source=clips["a"], seed=7, kind="music")
    r = query(eng, path)
    assert duplicates(r, eng) == {clips["a"].name}, describe(r)
    best = r["matches"][0]
    assert best["modality"] == "video", describe(r)
    truth = synth.read_truth(path)
    seg = max(best["segments"], key=lambda s: s["query_end"] - s["query_start"])
    assert abs(seg["reference_start"] - seg["query_start"] - (truth["reference_start"] - truth["query_start"])) <= TOL, describe(r)


def test_unrelated_night_footage_is_not_a_duplicate(night):
    eng, clips = night
    r = query(eng, clips["other"])
    assert duplicates(r, eng) == set(), describe(r)
