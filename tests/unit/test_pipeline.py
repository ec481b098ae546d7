"""The embedded engine end to end: save types, keys, exact matches, bad inputs,
compare() and .mdna fingerprints, on real (synthetic, encoded) media.

Every result document is checked against the published JSON Schema.
Fingerprints of the shared clips are computed once per session
(``fingerprint_of``); tests where the file itself matters (hashing, bad
inputs, .mdna) go through paths.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import jsonschema
import pytest

from mediadna import synth
from mediadna.fingerprint import FINGERPRINT_NAME, FINGERPRINT_VERSION, Fingerprint
from mediadna.pipeline import SAVE_TYPES, DirectoryPublisher, Engine, compare, load_input
from mediadna.schemas import validate
from mediadna.store import SQLiteStore

LIB = "lib"
#: The near-identical copy of ref_a: a low-quality re-encode, and a 10 s
#: excerpt of ref_a spliced into unrelated footage (same params as the cases
#: of test_transforms, so the cached copies are shared).
NEAR_COPY = ("reencode", {"crf": 36})
EMBED_COPY = ("embed", {"length": 10.0, "at": 4.0, "start": 6.0, "host_kind": "texture", "host_seed": 4242})


# --- fixtures and helpers ------------------------------------------------------------
@pytest.fixture
def store(tmp_path: Path):
    s = SQLiteStore(tmp_path / "library.sqlite3")
    s.create_library(LIB)
    yield s
    s.close()


@pytest.fixture
def engine(store) -> Engine:
    return Engine(store)


@pytest.fixture(scope="module")
def near_copy(make_copy) -> Path:
    name, params = NEAR_COPY
    return make_copy(name, **params)


@pytest.fixture(scope="module")
def embed_copy(make_copy) -> Path:
    name, params = EMBED_COPY
    return make_copy(name, **params)


def run(engine: Engine, source, library: str = LIB, **kw) -> dict:
    """engine.process + the invariants every result document must keep."""
    r = engine.process(source, library, **kw)
    validate(r, "result")
    json.dumps(r, allow_nan=False)  # plain JSON, no NaN/inf
    assert r["library"] == library
    assert r["save_type"] == kw.get("save_type", "nosave")
    assert r["fingerprint"] == {"name": FINGERPRINT_NAME, "version": FINGERPRINT_VERSION}
    if r["status"] == "succeeded":
        assert r["error"] is None
        assert r["stored"] == (r["primary_key"] is not None)
        assert r["duplicate"] <= bool(r["matches"])  # a duplicate names what it duplicates
    else:
        assert r["error"]["code"] and r["error"]["message"]
        assert "\n" not in r["error"]["message"]
        assert not r["stored"] and r["primary_key"] is None and r["matches"] == [] and not r["duplicate"]
    return r


def keys(store, library: str = LIB) -> list[str]:
    return [f.primary_key for f in store.list_files(library, limit=1000).items]


def match_keys(r: dict) -> list[str]:
    return [m["primary_key"] for m in r["matches"]]


# --- save types ---------------------------------------------------------------------
def test_nosave_stores_nothing_even_for_a_new_file(engine, store, fingerprint_of, ref_a):
    r = run(engine, fingerprint_of(ref_a), save_type="nosave")
    assert r["status"] == "succeeded"
    assert not r["stored"] and r["primary_key"] is None
    assert r["matches"] == [] and not r["duplicate"]
    assert r["input"]["key"] == "ref_a.mp4" and r["input"]["media_type"] == "video"
    assert r["input"]["duration"] == pytest.approx(20.0, abs=0.1)
    assert r["threshold"] == store.get_library(LIB).threshold
    assert keys(store) == [] and store.get_library(LIB).file_count == 0


def test_save_stores_a_new_file_then_refuses_its_near_duplicate(engine, store, ref_a, near_copy, ref_b, fingerprint_of):
    first = run(engine, ref_a, save_type="save")
    assert first["status"] == "succeeded"
    assert first["stored"] and first["primary_key"] == "ref_a.mp4"
    assert not first["duplicate"] and first["matches"] == []
    assert len(first["input"]["sha256"]) == 64
    assert keys(store) == ["ref_a.mp4"]

    second = run(engine, near_copy, save_type="save")
    assert second["status"] == "succeeded"
    assert second["duplicate"], second["matches"]
    assert not second["stored"] and second["primary_key"] is None
    assert match_keys(second)[0] == "ref_a.mp4"
    best = second["matches"][0]
    assert not best["exact"]  # different bytes: found by fingerprint
    assert best["similarity"] >= store.get_library(LIB).threshold
    assert best["query_coverage"] >= 0.9 and best["reference_coverage"] >= 0.9
    assert keys(store) == ["ref_a.mp4"]  # not stored

    # a different clip is not a duplicate: save stores it
    third = run(engine, fingerprint_of(ref_b), save_type="save")
    assert third["stored"] and not third["duplicate"] and "ref_a.mp4" not in match_keys(third)
    assert sorted(keys(store)) == ["ref_a.mp4", "ref_b.mp4"]


def test_forcesave_stores_duplicates_and_replaces_the_same_key(engine, store, fingerprint_of, ref_a, near_copy):
    orig, copy = fingerprint_of(ref_a), fingerprint_of(near_copy)
    assert orig.sha256 != copy.sha256
    assert run(engine, orig, save_type="forcesave", primary_key="clip")["stored"]

    # a duplicate under a new key: matched, reported as duplicate, still stored
    r = run(engine, copy, save_type="forcesave", primary_key="clip-copy")
    assert r["duplicate"] and match_keys(r)[0] == "clip"
    assert r["stored"] and r["primary_key"] == "clip-copy"
    assert sorted(keys(store)) == ["clip", "clip-copy"]

    # the same key again, other bytes: replaced, not added
    r = run(engine, copy, save_type="forcesave", primary_key="clip")
    assert r["stored"] and r["primary_key"] == "clip"
    assert sorted(keys(store)) == ["clip", "clip-copy"]
    assert store.get_file(LIB, "clip").sha256 == copy.sha256
    # the replacement is what the index now holds: the original's bytes no
    # longer match "clip" exactly (its record and fingerprint are the copy's)
    q = run(engine, fingerprint_of(ref_a))
    by_key = {m["primary_key"]: m for m in q["matches"]}
    assert set(by_key) == {"clip", "clip-copy"}
    assert not by_key["clip"]["exact"] and by_key["clip"]["similarity"] >= 0.5


def test_onlysave_stores_without_matching(engine, store, fingerprint_of, ref_a, near_copy):
    run(engine, fingerprint_of(ref_a), save_type="save")
    r = run(engine, fingerprint_of(near_copy), save_type="onlysave", primary_key="copy")
    assert r["status"] == "succeeded"
    assert r["matches"] == [] and not r["duplicate"]  # no matching at all
    assert r["stored"] and r["primary_key"] == "copy"
    assert "match_ms" in r["timings"]
    assert sorted(keys(store)) == ["copy", "ref_a.mp4"]
    # it really is in the index: the next query finds both
    q = run(engine, fingerprint_of(near_copy))
    assert set(match_keys(q)) == {"copy", "ref_a.mp4"}
    assert q["matches"][0]["primary_key"] == "copy" and q["matches"][0]["exact"]


def test_key_sets_the_primary_key(engine, store, fingerprint_of, ref_a):
    r = run(engine, fingerprint_of(ref_a), save_type="save", primary_key="movies/2024/a b ü.mp4")
    assert r["stored"] and r["primary_key"] == "movies/2024/a b ü.mp4"
    assert r["input"]["key"] == "ref_a.mp4"  # the input keeps its own name
    rec = store.get_file(LIB, "movies/2024/a b ü.mp4")
    assert rec.sha256 == r["input"]["sha256"] and rec.media_type == "video" and rec.has_video and rec.has_audio
    assert keys(store) == ["movies/2024/a b ü.mp4"]


def test_invalid_key_fails_cleanly(engine, store, fingerprint_of, ref_a):
    r = run(engine, fingerprint_of(ref_a), save_type="save", primary_key="bad\nkey")
    assert r["status"] == "failed" and r["error"]["code"] == "invalid_argument"
    assert keys(store) == []


def test_reingesting_the_same_file_under_the_same_key_is_idempotent(engine, store, ref_a, fingerprint_of):
    first = run(engine, ref_a, save_type="onlysave", primary_key="k")
    created = store.get_file(LIB, "k")
    for save_type in ("onlysave", "save", "forcesave"):
        # the same file again (its cached fingerprint: same bytes, same hash)
        r = run(engine, fingerprint_of(ref_a), save_type=save_type, primary_key="k")
        assert r["status"] == "succeeded", (save_type, r["error"])
        if save_type == "save":  # an exact duplicate of "k": nothing to store
            assert r["duplicate"] and not r["stored"] and r["matches"][0]["primary_key"] == "k"
        else:
            assert r["stored"] and r["primary_key"] == "k"
        assert keys(store) == ["k"]
        rec = store.get_file(LIB, "k")
        assert rec.sha256 == first["input"]["sha256"] == created.sha256
    assert store.get_library(LIB).file_count == 1


def test_same_key_other_file_is_refused_without_forcesave(engine, store, fingerprint_of, ref_a, ref_b):
    run(engine, fingerprint_of(ref_a), save_type="save", primary_key="k")
    for save_type in ("save", "onlysave"):
        r = run(engine, fingerprint_of(ref_b), save_type=save_type, primary_key="k")
        assert r["status"] == "failed" and r["error"]["code"] == "file_exists", save_type
        assert "forcesave" in r["error"]["message"]
    assert store.get_file(LIB, "k").sha256 == fingerprint_of(ref_a).sha256


# --- exact (SHA-256) matches ------------------------------------------------------------
def test_identical_bytes_match_exactly(engine, store, ref_a, tmp_path):
    run(engine, ref_a, save_type="save")
    renamed = tmp_path / "renamed upload.mov.mp4"
    shutil.copyfile(ref_a, renamed)
    for source in (ref_a, renamed):
        r = run(engine, source)
        assert r["duplicate"]
        best = r["matches"][0]
        assert best["primary_key"] == "ref_a.mp4"
        assert best["exact"] is True
        assert best["similarity"] == 1.0 and best["query_coverage"] == 1.0 and best["reference_coverage"] == 1.0
        (seg,) = best["segments"]
        assert seg["query_start"] == 0.0 and seg["reference_start"] == 0.0
        assert seg["query_end"] == pytest.approx(r["input"]["duration"], abs=1e-3)
        assert seg["modality"] == "audiovisual"
        assert match_keys(r).count("ref_a.mp4") == 1  # not reported again by the fingerprint matcher
    assert r["input"]["key"] == "renamed upload.mov.mp4"


def test_near_copy_is_not_exact(engine, store, fingerprint_of, ref_a, near_copy):
    run(engine, fingerprint_of(ref_a), save_type="save")
    r = run(engine, fingerprint_of(near_copy))
    assert r["matches"] and not any(m["exact"] for m in r["matches"])


# --- schema -----------------------------------------------------------------------------
def test_schema_rejects_inconsistent_documents(engine, store, bad_inputs, fingerprint_of, ref_a):
    """The checks in run() can fail: the schema really constrains documents."""
    ok = run(engine, fingerprint_of(ref_a), save_type="save")
    failed = run(engine, bad_inputs["empty"], save_type="save")
    for doc, tamper in (
        (ok, lambda d: d.update(status="failed")),  # failed needs an error
        (failed, lambda d: d.update(stored=True)),  # a failed input is never stored
        (ok, lambda d: d.update(extra=1)),
        (ok, lambda d: d["input"].update(sha256="XYZ")),
        (ok, lambda d: d.update(schema_version="2.0")),
    ):
        bad = json.loads(json.dumps(doc))
        tamper(bad)
        with pytest.raises(jsonschema.ValidationError):
            validate(bad, "result")


# --- bad inputs ---------------------------------------------------------------------------
BAD_CODES = {"missing": "input_not_found", "empty": "input_empty", "not_media": "not_media", "silent": "no_content"}


@pytest.mark.parametrize("kind", sorted(BAD_CODES))
def test_bad_input_fails_cleanly_and_the_next_input_still_processes(engine, store, bad_inputs, silent_audio, fingerprint_of, ref_a, kind):
    path = silent_audio if kind == "silent" else bad_inputs[kind]
    r = run(engine, path, save_type="save")
    assert r["status"] == "failed"
    assert r["error"]["code"] == BAD_CODES[kind]
    assert path.name in r["error"]["message"]
    assert r["input"]["key"] == path.name
    assert keys(store) == []
    # the engine is not left in a bad state
    nxt = run(engine, fingerprint_of(ref_a), save_type="save")
    assert nxt["status"] == "succeeded" and nxt["stored"]
    again = run(engine, path, save_type="forcesave")
    assert again["status"] == "failed" and again["error"]["code"] == BAD_CODES[kind]
    assert keys(store) == ["ref_a.mp4"]


def test_unknown_library_is_library_not_found(engine, store, fingerprint_of, ref_a):
    for save_type in ("nosave", "save"):
        r = run(engine, fingerprint_of(ref_a), library="no-such-lib", save_type=save_type)
        assert r["status"] == "failed" and r["error"]["code"] == "library_not_found"
        assert "no-such-lib" in r["error"]["message"]
    assert [lib.name for lib in store.list_libraries()] == [LIB]  # not created on the fly


def test_unknown_save_type_is_invalid_argument(engine, store, fingerprint_of, ref_a):
    r = engine.process(fingerprint_of(ref_a), LIB, save_type="keep")
    validate(r, "result")
    assert r["status"] == "failed" and r["error"]["code"] == "invalid_argument"
    for name in SAVE_TYPES:
        assert name in r["error"]["message"]
    assert keys(store) == []


def test_results_are_published(store, fingerprint_of, ref_a, tmp_path):
    out = tmp_path / "results"
    engine = Engine(store, DirectoryPublisher(out))
    r = engine.process(fingerprint_of(ref_a), LIB, save_type="save", job_id="job-1")
    f = out / LIB / "job-1.json"
    assert json.loads(f.read_text()) == r
    failed = engine.process(Path(tmp_path / "nope.mp4"), LIB, save_type="save", job_id="job-2")
    assert json.loads((out / LIB / "job-2.json").read_text())["status"] == failed["status"] == "failed"


# --- duplicate rule and library settings -----------------------------------------------------
def test_library_min_segment_decides_duplicate(store, fingerprint_of, ref_a, embed_copy):
    """A 10 s excerpt in a 20 s upload: a duplicate for a 3 s minimum segment, not for 12 s."""
    engine = Engine(store)
    store.create_library("long", threshold=0.5, min_segment_seconds=12.0)
    truth = synth.read_truth(embed_copy)
    copied = truth["query_end"] - truth["query_start"]
    assert copied == pytest.approx(10.0, abs=0.1)
    verdict = {}
    for lib in (LIB, "long"):
        run(engine, fingerprint_of(ref_a), library=lib, save_type="onlysave")
        r = run(engine, fingerprint_of(embed_copy), library=lib)
        assert match_keys(r)[:1] == ["ref_a.mp4"], r["matches"]
        best = r["matches"][0]
        longest = max(sg["query_end"] - sg["query_start"] for sg in best["segments"])
        assert abs(longest - copied) <= 1.0
        assert best["similarity"] >= 0.5
        verdict[lib] = r["duplicate"]
        # each match carries the rule's verdict; the document's is "any match"
        assert best["duplicate"] == r["duplicate"]
        assert r["duplicate"] == any(m["duplicate"] for m in r["matches"])
    assert verdict == {LIB: True, "long": False}


# --- compare -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def images(media_dir) -> dict[str, Path]:
    d = media_dir / "images"
    d.mkdir(exist_ok=True)
    a = synth.make_image(d / "still.png", kind="scenes", seed=5, size=(320, 180), t=3.0)
    small = d / "still_small.jpg"
    img = cv2.imread(str(a))
    assert cv2.imwrite(str(small), cv2.resize(img, (200, 112), interpolation=cv2.INTER_AREA), [cv2.IMWRITE_JPEG_QUALITY, 70])
    boxed = d / "still_letterboxed.jpg"
    canvas = cv2.copyMakeBorder(img, 30, 30, 0, 0, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    assert cv2.imwrite(str(boxed), canvas, [cv2.IMWRITE_JPEG_QUALITY, 80])
    other = synth.make_image(d / "other.png", kind="scenes", seed=6, size=(320, 180), t=3.0)
    return {"still": a, "small": small, "boxed": boxed, "other": other}


def envelope(src, tgt) -> dict:
    env = compare(src, tgt)
    validate(env, "compare")
    assert env["processing_time_ms"] >= 0
    return env


def test_compare_copy_matches_with_segments(ref_a, near_copy):
    env = envelope(ref_a, near_copy)
    assert env["status"] == "succeeded" and env["error"] is None
    assert env["match"] is True and env["media_type"] == "video"
    assert env["similarity_score"] >= 0.8 and env["confidence"] == "high"
    truth = synth.read_truth(near_copy)
    assert env["matched_segments"]
    longest = max(env["matched_segments"], key=lambda s: s["target_end"] - s["target_start"])
    assert abs(longest["target_start"] - truth["query_start"]) <= 1.0
    assert abs(longest["target_end"] - truth["query_end"]) <= 1.0
    assert abs(longest["source_start"] - truth["reference_start"]) <= 1.0
    assert abs(longest["source_end"] - truth["reference_end"]) <= 1.0
    assert abs(longest["speed"] - 1.0) <= 0.03


def test_compare_unrelated_does_not_match(ref_a, unrelated):
    env = envelope(ref_a, unrelated)
    assert env["status"] == "succeeded"
    assert env["match"] is False


def test_compare_image_with_its_resized_copy(images):
    env = envelope(images["still"], images["small"])
    assert env["status"] == "succeeded"
    assert env["media_type"] == "image"
    assert env["match"] is True and env["similarity_score"] >= 0.8
    boxed = envelope(images["still"], images["boxed"])  # black bars added: cut off again
    assert boxed["media_type"] == "image" and boxed["match"] is True and boxed["similarity_score"] >= 0.8
    other = envelope(images["still"], images["other"])
    assert other["media_type"] == "image" and other["match"] is False
    assert other["similarity_score"] < env["similarity_score"]


@pytest.mark.parametrize("which", ["source", "target"])
def test_compare_bad_input_fails(images, bad_inputs, which):
    good = images["still"]
    for kind, code in (("missing", "input_not_found"), ("empty", "input_empty"), ("not_media", "not_media")):
        args = (bad_inputs[kind], good) if which == "source" else (good, bad_inputs[kind])
        env = envelope(*args)
        assert env["status"] == "failed" and env["match"] is False
        assert env["error"]["code"] == code
        assert env["matched_segments"] == []


def test_compare_schema_rejects_bad_envelopes(images):
    env = envelope(images["still"], images["small"])
    for tamper in (lambda d: d.update(match="yes"), lambda d: d.update(media_type="text"), lambda d: d.pop("error")):
        bad = dict(env)
        tamper(bad)
        with pytest.raises(jsonschema.ValidationError):
            validate(bad, "compare")


# --- .mdna fingerprints -----------------------------------------------------------------------
def test_mdna_round_trip_gives_the_same_matches(engine, store, ref_a, ref_b, unrelated, near_copy, fingerprint_of, tmp_path):
    for ref in (ref_a, ref_b, unrelated):
        run(engine, fingerprint_of(ref), save_type="save")
    # fingerprint once, query later
    mdna = tmp_path / "upload.mdna"
    load_input(near_copy).save(mdna)
    assert Fingerprint.load(mdna) == fingerprint_of(near_copy)
    from_media = run(engine, near_copy)
    from_mdna = run(engine, mdna)
    assert from_media["status"] == from_mdna["status"] == "succeeded"
    assert match_keys(from_media)[0] == "ref_a.mp4"
    assert from_mdna["matches"] == from_media["matches"]
    assert from_mdna["duplicate"] == from_media["duplicate"] is True
    assert from_mdna["input"]["sha256"] == from_media["input"]["sha256"]
    assert from_mdna["input"]["duration"] == from_media["input"]["duration"]
    assert from_mdna["input"]["key"] == "upload.mdna"

    # and the other way: ingest from the .mdna, then the original bytes match it exactly
    run(engine, mdna, save_type="save", primary_key="from-mdna")  # a duplicate of ref_a: not stored
    r = run(engine, mdna, save_type="forcesave", primary_key="from-mdna")
    assert r["stored"]
    q = run(engine, near_copy)
    assert q["matches"][0]["primary_key"] == "from-mdna" and q["matches"][0]["exact"]


def test_mdna_of_another_version_is_refused(engine, store, fingerprint_of, ref_a, tmp_path):
    fp = fingerprint_of(ref_a)
    fp.version = FINGERPRINT_VERSION + 1
    path = tmp_path / "future.mdna"
    fp.save(path)
    r = run(engine, path, save_type="save")
    assert r["status"] == "failed" and r["error"]["code"] == "fingerprint_version_mismatch"
    corrupt = tmp_path / "corrupt.mdna"
    corrupt.write_bytes(b"MDNA\x01garbage")
    r = run(engine, corrupt, save_type="save")
    assert r["status"] == "failed" and r["error"]["code"] == "bad_fingerprint"
    missing = run(engine, tmp_path / "gone.mdna", save_type="save")
    assert missing["error"]["code"] == "input_not_found"
    assert keys(store) == []
