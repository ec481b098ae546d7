"""The DynamoDB library store in use: concurrency, the engine, the CLI, request counts."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from mediadna import cli
from mediadna.errors import FILE_NOT_FOUND, LIBRARY_BUSY, LibraryError
from mediadna.index import fingerprint2postings
from mediadna.pipeline import Engine
from mediadna.store import FileRecord, open_store

NEAR_COPY = ("reencode", {"crf": 36})


@pytest.fixture(scope="module")
def reference_fp(ref_a, fingerprint_of):
    return fingerprint_of(ref_a)


@pytest.fixture(scope="module")
def copy_fp(make_copy, fingerprint_of):
    name, params = NEAR_COPY
    return fingerprint_of(make_copy(name, **params))


def test_save_if_unique_under_concurrency(open_dynamodb, reference_fp, copy_fp):
    """Two near-identical uploads with save type ``save`` at the same moment: exactly one is stored.

    Each upload runs in its own thread with its own store (like two Lambda
    invocations); a barrier releases them together.  Repeated 20 times.
    """
    setup = open_dynamodb()
    for round_ in range(20):
        library = f"race{round_}"
        setup.create_library(library)
        barrier = threading.Barrier(2)
        results: dict[str, dict] = {}

        def upload(key: str, fp) -> None:
            engine = Engine(open_dynamodb())
            barrier.wait()
            results[key] = engine.process(fp, library, save_type="save", primary_key=key)

        threads = [
            threading.Thread(target=upload, args=("original", reference_fp)),
            threading.Thread(target=upload, args=("reupload", copy_fp)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(r["status"] == "succeeded" for r in results.values()), results
        stored = [k for k, r in results.items() if r["stored"]]
        assert len(stored) == 1, (round_, {k: (r["stored"], r["duplicate"]) for k, r in results.items()})
        other = "reupload" if stored == ["original"] else "original"
        assert results[other]["duplicate"] is True
        assert results[other]["matches"][0]["primary_key"] == stored[0]
        assert setup.get_library(library).file_count == 1
        assert [f.primary_key for f in setup.list_files(library).items] == stored


def test_engine_on_dynamodb_finds_the_copy_with_time_codes(open_dynamodb, reference_fp, copy_fp):
    engine = Engine(open_dynamodb())
    engine.store.create_library("ads")
    first = engine.process(reference_fp, "ads", save_type="save", primary_key="ref")
    assert first["stored"] is True and first["duplicate"] is False
    result = engine.process(copy_fp, "ads", save_type="nosave")
    assert result["duplicate"] is True and result["stored"] is False
    best = result["matches"][0]
    assert best["primary_key"] == "ref" and best["similarity"] > 0.8
    seg = max(best["segments"], key=lambda s: s["query_end"] - s["query_start"])
    assert seg["query_start"] < 1.0 and seg["reference_start"] < 1.0
    assert seg["query_end"] > reference_fp.duration - 2.0


def test_lookups_are_batched_100_keys_a_request(open_dynamodb, reference_fp, copy_fp):
    """A query's requests are its distinct lookup keys / 100, plus a few: never one per key."""
    store = open_dynamodb()
    store.create_library("lib")
    Engine(store).process(reference_fp, "lib", save_type="onlysave", primary_key="ref")
    calls: list[int] = []
    for kind in ("visual", "audio"):
        real = getattr(store, f"lookup_{kind}")

        def counting(library, keys, max_postings=None, real=real):
            calls.append(len(np.unique(np.asarray(keys))))
            return real(library, keys, max_postings)

        setattr(store, f"lookup_{kind}", counting)
    store.stats.reset()
    result = Engine(store).process(copy_fp, "lib", save_type="nosave")
    assert result["matches"] and result["matches"][0]["primary_key"] == "ref"
    batches = sum(-(-n // 100) for n in calls)
    requests = store.stats.requests
    assert batches <= requests["BatchGetItem"] <= batches + len(calls)  # + directory reads
    assert store.stats.total - requests["BatchGetItem"] <= 3 * len(calls) + 10, store.stats.to_dict()
    assert store.stats.read_units > 0


def test_the_lease_of_a_dead_writer_expires(open_dynamodb):
    a, b = open_dynamodb(), open_dynamodb()
    a.create_library("lib")
    a.lease_seconds = 0.3
    b.lock_wait_seconds = 0.1
    lease = a.library_lock("lib")
    lease.__enter__()  # a takes the lock and "dies" (never releases it)
    with pytest.raises(LibraryError) as e:
        with b.library_lock("lib"):
            pass
    assert e.value.code == LIBRARY_BUSY
    b.lock_wait_seconds = 5.0
    with b.library_lock("lib"):  # after expiry b gets it
        pass


def _record(fp, key):
    return FileRecord(primary_key=key, duration=fp.duration, sha256=fp.sha256, media_type=fp.media_type,
                      has_video=fp.has_visual, has_audio=fp.has_audio, fingerprint_version=fp.version)


def test_a_crashed_writer_is_cleaned_up_by_the_next(open_dynamodb, monkeypatch, reference_fp, copy_fp):
    """A writer dies after its postings but before its record: the next writer removes every trace."""
    a = open_dynamodb()
    a.create_library("lib")
    a.add_file("lib", _record(reference_fp, "kept"), reference_fp, fingerprint2postings(reference_fp))
    items_before = {kind: {i.t: i.p for i in model.scan()} for kind, model in a.Terms.items()}

    def die(*args, **kwargs):
        raise SystemExit("killed")

    monkeypatch.setattr(a, "_put_record", die)
    monkeypatch.setattr(a, "_purge_file", die)  # no in-process clean-up either: as if the process died
    postings = fingerprint2postings(copy_fp)
    with pytest.raises(SystemExit):
        a.add_file("lib", _record(copy_fp, "lost"), copy_fp, postings)
    b = open_dynamodb()
    # its postings were written, but never visible
    assert set(b.lookup_visual("lib", postings.visual_keys).files.tolist()) == {"kept"}
    assert set(b.lookup_audio("lib", postings.audio_keys).files.tolist()) == {"kept"}
    assert b.Libraries.get("lib", consistent_read=True).pending
    with b.library_lock("lib"):  # the next writer finishes the clean-up
        pass
    lib = b.Libraries.get("lib", consistent_read=True)
    assert not lib.pending and not lib.dead
    items_after = {kind: {i.t: i.p for i in model.scan()} for kind, model in b.Terms.items()}
    assert items_after == items_before  # byte for byte what "kept" alone had
    kept_no = b.Files.get(lib.uid, "f#kept").no
    chunks = {int(i.k.split("#")[1]) for i in b.Files.query(lib.uid) if i.k.startswith("b#")}
    assert chunks == {kept_no}


def test_a_delete_that_died_before_removing_the_record_is_finished_by_the_next_writer(
        open_dynamodb, monkeypatch, reference_fp, copy_fp):
    """delete_file marks the file dead, then removes its record: a crash in between must not leave
    a record that get_file and list_files show forever, after file_count already dropped."""
    a = open_dynamodb()
    a.create_library("lib")
    a.add_file("lib", _record(reference_fp, "kept"), reference_fp, fingerprint2postings(reference_fp))
    items_before = {kind: {i.t: i.p for i in model.scan()} for kind, model in a.Terms.items()}
    a.add_file("lib", _record(copy_fp, "gone"), copy_fp, fingerprint2postings(copy_fp))
    real_write = a._batch_write

    def die_on_files(model, **kwargs):
        if model is a.Files:
            raise SystemExit("killed")
        return real_write(model, **kwargs)

    monkeypatch.setattr(a, "_batch_write", die_on_files)
    with pytest.raises(SystemExit):
        a.delete_file("lib", "gone")
    b = open_dynamodb()
    assert set(b.lookup_audio("lib", fingerprint2postings(copy_fp).audio_keys).files.tolist()) <= {"kept"}
    with b.library_lock("lib"):  # the next writer finishes the delete
        pass
    with pytest.raises(LibraryError) as e:
        b.get_file("lib", "gone")
    assert e.value.code == FILE_NOT_FOUND
    assert [f.primary_key for f in b.list_files("lib").items] == ["kept"]
    assert b.files_by_sha256("lib", copy_fp.sha256) == [] or copy_fp.sha256 == reference_fp.sha256
    lib = b.Libraries.get("lib", consistent_read=True)
    assert not lib.pending and not lib.dead and b.get_library("lib").file_count == 1
    items_after = {kind: {i.t: i.p for i in model.scan()} for kind, model in b.Terms.items()}
    assert items_after == items_before
    b.add_file("lib", _record(copy_fp, "gone"), copy_fp, fingerprint2postings(copy_fp))  # the key is free again
    assert b.get_file("lib", "gone").primary_key == "gone"


def test_cli_runs_against_a_dynamodb_library(dynamodb_prefix, ref_a, capsys, monkeypatch, tmp_path):
    spec = f"dynamodb:{dynamodb_prefix}"
    assert cli.main(["--home", str(tmp_path), "--store", spec, "library", "create", "ads"]) == 0
    assert cli.main(["--home", str(tmp_path), "--store", spec, "ingest", "--library", "ads", "--json", str(ref_a)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(line)["stored"] is True
    assert cli.main(["--home", str(tmp_path), "--store", spec, "query", "--library", "ads", "--json", str(ref_a)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["duplicate"] is True and result["matches"][0]["primary_key"] == ref_a.name
    store = open_store(spec, tmp_path)
    assert [f.primary_key for f in store.list_files("ads").items] == [ref_a.name]


def test_open_store_dynamodb_spec_and_table_overrides(dynamodb_prefix, monkeypatch, tmp_path):
    from mediadna.store.dynamodb import DynamoDBStore

    store = open_store(f"dynamodb:{dynamodb_prefix}", tmp_path)
    assert isinstance(store, DynamoDBStore)
    assert store.config.files_table == f"{dynamodb_prefix}-files"
    store.create_library("x")
    # exact names (what the CDK stack passes) win over the prefix
    monkeypatch.setenv("MEDIADNA_TABLE_LIBRARIES", "other-libraries")
    other = open_store(f"dynamodb:{dynamodb_prefix}", tmp_path)
    assert other.config.libraries_table == "other-libraries"
    assert other.config.audio_table == f"{dynamodb_prefix}-audio"
    # development servers: tables made on open when asked
    monkeypatch.setenv("MEDIADNA_DYNAMODB_CREATE_TABLES", "1")
    fresh = open_store("dynamodb:fresh", tmp_path)
    fresh.create_library("y")
    assert [lib.name for lib in fresh.list_libraries()] == ["y"]
    assert list(tmp_path.iterdir()) == []  # nothing local
