"""Backfill imports (mediadna.imports), the `mediadna import` command and re-scan, embedded."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import pytest

from mediadna import synth
from mediadna.cli import main
from mediadna.errors import IMPORT_NOT_FOUND, INVALID_ARGUMENT, MediaDnaError
from mediadna.imports import (
    ImportItem,
    get_import,
    import_item,
    items_from_folder,
    items_from_listing,
    local_file,
    read_manifest,
    run_import,
    start_import,
)
from mediadna.rescan import rescan
from mediadna.store import MemoryStore, SQLiteStore


def tiny(path: Path, seed: int, kind: str = "scenes") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return synth.make_video(path, kind=kind, duration=2.0, seed=seed, size=(64, 36), fps=10, audio=None)


@pytest.fixture
def archive(tmp_path) -> Path:
    """6 clips in two folders, a text file, a truncated clip and an empty file."""
    root = tmp_path / "archive"
    for i in range(6):
        tiny(root / ("a" if i < 3 else "b/c") / f"clip{i}.mp4", seed=100 + i, kind=("scenes", "shapes", "texture")[i % 3])
    (root / "notes.txt").write_text("not a video")
    data = (root / "a" / "clip0.mp4").read_bytes()
    (root / "b" / "broken.mp4").write_bytes(data[: len(data) // 3])
    (root / "b" / "empty.mp4").write_bytes(b"")
    (root / ".DS_Store").write_bytes(b"junk")  # hidden: not an item
    return root


def test_manifests_in_three_formats():
    jsonl = '{"key": "x/1.mp4", "primary_key": "one"}\n"x/2.mp4"\n\n{"key": "x/3.mp4"}\n'
    assert read_manifest(jsonl) == [ImportItem("x/1.mp4", "one"), ImportItem("x/2.mp4", "x/2.mp4"),
                                    ImportItem("x/3.mp4", "x/3.mp4")]
    csv_text = "key,primary_key\nx/1.mp4,one\nx/2.mp4,\n"
    assert read_manifest(csv_text.encode()) == [ImportItem("x/1.mp4", "one"), ImportItem("x/2.mp4", "x/2.mp4")]
    assert read_manifest("x/1.mp4\nx/2.mp4\n") == [ImportItem("x/1.mp4", "x/1.mp4"), ImportItem("x/2.mp4", "x/2.mp4")]
    assert read_manifest(json.dumps(["a", {"key": "b", "primary_key": "B"}])) == [ImportItem("a", "a"), ImportItem("b", "B")]
    for bad in ("", "[]", '{"nokey": 1}\n', '{"key": "a"}\n{broken\n', "a,k\nb,k\n", '{"key": "a", "primary_key": 3}'):
        with pytest.raises(MediaDnaError) as err:
            read_manifest(bad)
        assert err.value.code == INVALID_ARGUMENT
    assert read_manifest("a,k\na,k\n") == [ImportItem("a", "k")]  # listed twice: imported once


def test_listing_items_are_keyed_after_the_prefix():
    keys = ["archive/", "archive/a.mp4", "archive/sub/b.mp4", "archive/sub/"]
    assert items_from_listing(keys, "archive/") == [ImportItem("archive/a.mp4", "a.mp4"),
                                                    ImportItem("archive/sub/b.mp4", "sub/b.mp4")]


def test_a_folder_import_counts_exactly_and_a_rerun_imports_nothing(tmp_path, archive):
    store = SQLiteStore(tmp_path / "lib.sqlite3")
    store.create_library("refs")
    items = items_from_folder(archive)
    assert len(items) == 9 and all(not Path(i.primary_key).name.startswith(".") for i in items)
    seen = []
    rec = run_import(store, "refs", items, source=str(archive), import_id="first", on_item=seen.append)
    assert (rec["state"], rec["total"], rec["done"], rec["skipped"], rec["failed"]) == ("finished", 9, 6, 0, 3)
    assert len(seen) == 9 and store.get_library("refs").file_count == 6
    assert store.get_file("refs", "b/c/clip4.mp4").metadata == {"import": "first"}
    view = get_import(store, "first")
    assert {f["item"].rsplit("/", 1)[-1]: f["code"] for f in view["failures"]} == {
        "notes.txt": "not_media", "broken.mp4": "corrupt_media", "empty.mp4": "input_empty"}
    assert all(f["message"] for f in view["failures"]) and view["processed"] == 9

    again = run_import(store, "refs", items_from_folder(archive), import_id="second")
    assert (again["done"], again["skipped"], again["failed"]) == (0, 6, 3)
    assert store.get_library("refs").file_count == 6
    with pytest.raises(MediaDnaError):
        run_import(store, "refs", items, import_id="second")  # an id is used once
    store.close()


def test_same_bytes_are_skipped_and_fingerprint_files_are_imported(tmp_path, archive):
    store = MemoryStore()
    store.create_library("refs")
    clip = archive / "a" / "clip1.mp4"
    first = import_item(store, "refs", ImportItem(str(clip), "orig"), local_file)
    assert (first.outcome, first.code) == ("done", "stored")
    copy = import_item(store, "refs", ImportItem(str(clip), "renamed"), local_file)
    assert (copy.outcome, copy.code) == ("skipped", "same_bytes") and "orig" in copy.message
    # a .mdna (binary or JSON, any name) is imported without decoding
    from mediadna.pipeline import load_input

    fp = load_input(archive / "b" / "c" / "clip5.mp4")
    (tmp_path / "fp.bin").write_bytes(fp.to_bytes())
    (tmp_path / "fp.json").write_text(fp.to_json())
    done = import_item(store, "refs", ImportItem(str(tmp_path / "fp.bin"), "from-mdna"), local_file)
    assert (done.outcome, done.code) == ("done", "stored")
    assert store.load_fingerprint("refs", "from-mdna") == fp
    again = import_item(store, "refs", ImportItem(str(tmp_path / "fp.json"), "from-json"), local_file)
    assert (again.outcome, again.code) == ("skipped", "same_bytes")  # the media's hash, carried by the fingerprint
    bad = tmp_path / "bad.mdna"
    bad.write_bytes(fp.to_bytes()[:40])
    failed = import_item(store, "refs", ImportItem(str(bad), "bad"), local_file)
    assert (failed.outcome, failed.code) == ("failed", "bad_fingerprint")
    missing = import_item(store, "nope", ImportItem(str(clip), "x"), local_file)
    assert (missing.outcome, missing.code) == ("failed", "library_not_found")


class FakeLauncher:
    def __init__(self, keys=(), manifest=b""):
        self.keys, self.manifest, self.plans, self.started = list(keys), manifest, {}, {}

    def list_keys(self, bucket, prefix):
        return [k for k in self.keys if k.startswith(prefix)]

    def read_object(self, bucket, key):
        return self.manifest

    def write_plan(self, import_id, items):
        self.plans[import_id] = items
        return {"Bucket": "work", "Key": f"imports/{import_id}/plan.json"}

    def start(self, import_id, payload):
        if import_id in self.started:
            return False
        self.started[import_id] = payload
        return True


def test_start_import_plans_records_the_total_and_caps_concurrency():
    store = MemoryStore()
    store.create_library("refs")
    launcher = FakeLauncher(keys=["in/archive/a.mp4", "in/archive/b.mp4", "in/archive/", "in/other/c.mp4"])
    rec = start_import(store, launcher, "refs", prefix="s3://src/in/archive/", import_id="imp-1", max_concurrency=500,
                       concurrency_cap=40)
    assert (rec["state"], rec["total"], rec["source"], rec["save_type"]) == ("running", 2, "s3://src/in/archive/", "onlysave")
    assert launcher.plans["imp-1"] == [{"key": "in/archive/a.mp4", "primary_key": "a.mp4"},
                                       {"key": "in/archive/b.mp4", "primary_key": "b.mp4"}]
    payload = launcher.started["imp-1"]
    assert payload["max_concurrency"] == 40 and payload["import"]["bucket"] == "src"
    assert payload["plan"] == {"Bucket": "work", "Key": "imports/imp-1/plan.json"}
    with pytest.raises(MediaDnaError):
        start_import(store, launcher, "refs", prefix="s3://src/in/archive/", import_id="imp-1")
    launcher.manifest = b"key,primary_key\nx/1.mp4,one\n"
    rec = start_import(store, launcher, "refs", manifest="s3://src/list.csv", save_type="save", max_concurrency=3)
    assert rec["total"] == 1 and launcher.started[rec["import_id"]]["max_concurrency"] == 3
    empty = start_import(store, launcher, "refs", prefix="s3://src/nothing/")
    assert (empty["state"], empty["total"]) == ("finished", 0) and empty["import_id"] not in launcher.started
    for kw in ({}, {"prefix": "s3://a/", "manifest": "s3://a/m"}, {"prefix": "https://x/"},
               {"prefix": "s3://src/in/", "save_type": "nosave"}, {"prefix": "s3://elsewhere/", "allowed_buckets": ["src"]}):
        with pytest.raises(MediaDnaError) as err:
            start_import(store, launcher, "refs", **kw)
        assert err.value.code == INVALID_ARGUMENT, kw
    with pytest.raises(MediaDnaError) as err:
        get_import(store, "never")
    assert err.value.code == IMPORT_NOT_FOUND


def test_import_command_progress_json_and_status(tmp_path, archive, capsys):
    home = ["--home", str(tmp_path / "home")]
    assert main(home + ["library", "create", "refs"]) == 0
    capsys.readouterr()
    assert main(home + ["import", "--library", "refs", str(archive), "--id", "cli-1", "--json"]) == 1  # 3 failed
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 10 and sorted(x["outcome"] for x in lines[:9]).count("done") == 6
    assert lines[-1]["import_id"] == "cli-1" and (lines[-1]["done"], lines[-1]["failed"]) == (6, 3)
    assert main(home + ["import", "status", "cli-1"]) == 0
    out = capsys.readouterr().out
    assert "6 done, 0 skipped, 3 failed of 9" in out and "not_media" in out and "corrupt_media" in out
    # a manifest next to the files (relative keys), re-run: everything in already
    (archive / "list.jsonl").write_text('{"key": "a/clip0.mp4"}\n{"key": "b/c/clip4.mp4", "primary_key": "b/c/clip4.mp4"}\n')
    assert main(home + ["import", "--library", "refs", str(archive / "list.jsonl")]) == 0
    assert "0 done, 2 skipped, 0 failed of 2" in capsys.readouterr().out
    assert main(home + ["import", "--library", "refs", str(tmp_path / "missing")]) == 1
    assert main(home + ["import", "status", "nope"]) == 1
    assert "import_not_found" in capsys.readouterr().err


def test_rescan_catches_a_copy_kept_before_its_original_was_registered(tmp_path, ref_a, make_copy, capsys):
    store = SQLiteStore(tmp_path / "lib.sqlite3")
    store.create_library("uploads")
    store.create_library("refs")
    from mediadna.pipeline import Engine

    engine = Engine(store)
    copy = make_copy("reencode", crf=34)
    early = engine.process(copy, "refs")  # queried while refs is empty: nothing found
    assert early["matches"] == []
    assert engine.process(copy, "uploads", save_type="onlysave", primary_key="upload-1")["stored"]
    assert engine.process(tiny(tmp_path / "other.mp4", 5), "uploads", save_type="onlysave", primary_key="upload-2")["stored"]
    assert list(rescan(store, "uploads", "refs")) == []
    assert engine.process(ref_a, "refs", save_type="save", primary_key="original")["stored"]
    (result,) = rescan(store, "uploads", "refs")
    assert result["input"]["key"] == "upload-1" and result["duplicate"] and result["stored"] is False
    best = result["matches"][0]
    assert best["primary_key"] == "original"
    seg = max(best["segments"], key=lambda s: s["query_end"] - s["query_start"])
    assert abs(seg["query_start"] - seg["reference_start"]) < 1.0 and seg["query_end"] - seg["query_start"] > 15
    assert len(list(rescan(store, "uploads", "refs", include_unmatched=True))) == 2
    assert list(rescan(store, "uploads", "refs", since="2999-01-01T00:00:00Z")) == []  # no reference that new
    store.close()
    home = ["--store", f"sqlite:{tmp_path / 'lib.sqlite3'}"]
    assert main(home + ["rescan", "--library", "refs", "--queries", "uploads"]) == 0
    out = capsys.readouterr().out
    assert "upload-1: DUPLICATE" in out and "original" in out
    assert main(home + ["rescan", "--library", "refs", "--queries", "uploads", "--since", "2999-01-01T00:00:00Z"]) == 0
    assert "upload-1" not in capsys.readouterr().out
