"""Contract tests of ``LibraryStore.load_fingerprints`` (several fingerprints at once).

Every adapter (see conftest.py) must answer like ``load_fingerprint`` of each
key, leaving out keys that are not in the library.  The DynamoDB adapter must
do it in a constant number of requests, whatever the number of keys.
"""

from __future__ import annotations

import numpy as np
import pytest

from mediadna.errors import LIBRARY_NOT_FOUND, LibraryError
from mediadna.fingerprint import AudioTrack, Fingerprint, VisualTrack
from mediadna.store import FileRecord, LibraryStore, Postings

STORES = [
    "sqlite",
    "memory",
    "moto",
    "dynalite",
]
DYNAMODB = ["moto", "dynalite"]


# -- helpers (own copies: the main contract module is not imported from here) ------------------
def make_fingerprint(seed: int = 0, n: int = 12) -> Fingerprint:
    rng = np.random.default_rng(seed)
    visual = VisualTrack(
        np.sort(rng.random(n) * 10),
        rng.integers(0, 2**64, n, dtype=np.uint64),
        rng.integers(0, 2**64, n, dtype=np.uint64),
        rng.integers(0, 2, n),
    )
    audio = AudioTrack(rng.integers(0, 5000, 3 * n), rng.integers(0, 1024, 3 * n))
    return Fingerprint(duration=10.0 + seed, sha256=f"{seed:064x}", media_type="video", params={"fps": 2, "hop": 512},
                       visual=visual, audio=audio, source=f"clip{seed}.mp4", meta={"width": 640})


def make_record(pk: str, seed: int = 0) -> FileRecord:
    return FileRecord(primary_key=pk, duration=10.0 + seed, sha256=f"{seed:064x}", media_type="video", has_video=True,
                      has_audio=True, fingerprint_version=1, metadata={"title": pk})


def add(store: LibraryStore, pk: str, seed: int, n: int = 12, replace: bool = False, lib: str = "lib") -> Fingerprint:
    fp = make_fingerprint(seed, n)
    store.add_file(lib, make_record(pk, seed), fp, Postings([seed], [1.0], [seed], [2.0]), replace=replace)
    return fp


@pytest.fixture(params=STORES)
def store(request, store_factory) -> LibraryStore:
    return store_factory(request.param, on_disk=True)


# -- every adapter ---------------------------------------------------------------------------
def test_loads_exactly_the_files_in_the_library(store):
    store.create_library("lib")
    fps = {f"k{i}": add(store, f"k{i}", i) for i in range(6)}
    store.delete_file("lib", "k2")
    del fps["k2"]
    asked = ["k4", "missing", "k0", "k2", "k5", "k4", "k1", "other/missing"]
    got = store.load_fingerprints("lib", asked)
    assert set(got) == {"k0", "k1", "k4", "k5"}
    assert got == {pk: store.load_fingerprint("lib", pk) for pk in got}
    assert got == {pk: fps[pk] for pk in got}
    assert all(got[pk].to_bytes() == fps[pk].to_bytes() for pk in got)
    assert store.load_fingerprints("lib", ["k2"]) == {}  # the deleted file is gone


def test_empty_and_all_missing(store):
    store.create_library("lib")
    assert store.load_fingerprints("lib", []) == {}
    add(store, "k", 1)
    assert store.load_fingerprints("lib", []) == {}
    assert store.load_fingerprints("lib", ["nope", "nada"]) == {}
    assert store.load_fingerprints("lib", iter(["k"])) == {"k": make_fingerprint(1)}  # any iterable of keys


def test_missing_library_is_not_found(store):
    with pytest.raises(LibraryError) as e:
        store.load_fingerprints("nolib", ["k"])
    assert e.value.code == LIBRARY_NOT_FOUND


def test_libraries_are_isolated(store):
    store.create_library("a")
    store.create_library("b")
    add(store, "same", 1, lib="a")
    add(store, "same", 2, lib="b")
    add(store, "only-b", 3, lib="b")
    assert store.load_fingerprints("a", ["same", "only-b"]) == {"same": make_fingerprint(1)}
    assert store.load_fingerprints("b", ["same", "only-b"]) == {"same": make_fingerprint(2), "only-b": make_fingerprint(3)}


def test_a_replaced_file_loads_its_new_version(store):
    store.create_library("lib")
    add(store, "k", 1)
    add(store, "other", 2)
    add(store, "k", 7, replace=True)
    assert store.load_fingerprints("lib", ["k", "other"]) == {"k": make_fingerprint(7), "other": make_fingerprint(2)}


def test_fingerprints_larger_than_a_chunk_load_in_a_batch(store):
    from mediadna.store.dynamodb import BLOB_CHUNK

    store.create_library("lib")
    big = add(store, "big", 1, n=20_000)
    huge = add(store, "huge", 2, n=60_000)
    assert BLOB_CHUNK < len(big.to_bytes()) < 2 * BLOB_CHUNK < 4 * BLOB_CHUNK < len(huge.to_bytes())
    small = add(store, "small", 3)
    got = store.load_fingerprints("lib", ["huge", "small", "big"])
    assert got == {"big": big, "huge": huge, "small": small}
    assert got["huge"].to_bytes() == huge.to_bytes()
    assert store.load_fingerprint("lib", "big") == big


def test_long_primary_keys(store):
    store.create_library("lib")
    keys = ["x" * 1024, "ü" * 1000, "😀/a b.mp4"]  # the first two exceed a sort key's bytes (digested there)
    fps = {pk: add(store, pk, i) for i, pk in enumerate(keys)}
    assert store.load_fingerprints("lib", keys + ["x" * 1023]) == fps


# -- DynamoDB: requests and visibility ---------------------------------------------------------
@pytest.mark.parametrize("kind", DYNAMODB)
def test_dynamodb_loads_in_a_constant_number_of_requests(kind, store_factory):
    store = store_factory(kind)
    store.create_library("lib")
    fps = {f"k{i}": add(store, f"k{i}", i) for i in range(5)}
    store.stats.reset()
    assert store.load_fingerprints("lib", list(fps)) == fps
    five = dict(store.stats.requests)
    assert store.stats.total <= 3, store.stats.to_dict()
    assert five == {"GetItem": 1, "BatchGetItem": 2}, five  # library, records, chunks

    for i in range(5, 40):
        fps[f"k{i}"] = add(store, f"k{i}", i)
    store.stats.reset()
    assert store.load_fingerprints("lib", list(fps) + [f"gone{i}" for i in range(20)]) == fps
    assert dict(store.stats.requests) == five, store.stats.to_dict()  # 40 files cost what 5 did

    store.stats.reset()
    store.load_fingerprint("lib", "k3")
    assert store.stats.total <= 3, store.stats.to_dict()


@pytest.mark.parametrize("kind", DYNAMODB)
def test_dynamodb_batches_100_keys_a_request(kind, store_factory):
    from mediadna.store.dynamodb import BATCH_GET_MAX, BLOB_CHUNK

    store = store_factory(kind)
    store.create_library("lib")
    fps = {"big": add(store, "big", 1, n=20_000)}  # 2 chunks
    fps.update({f"k{i}": add(store, f"k{i}", i) for i in range(2, 4)})
    asked = list(fps) + [f"missing{i}" for i in range(BATCH_GET_MAX)]  # 103 records: 2 requests
    store.stats.reset()
    assert store.load_fingerprints("lib", asked) == fps
    assert len(fps["big"].to_bytes()) > BLOB_CHUNK
    assert dict(store.stats.requests) == {"GetItem": 1, "BatchGetItem": 3}, store.stats.to_dict()


@pytest.mark.parametrize("kind", DYNAMODB)
def test_dynamodb_records_without_a_chunk_count_still_load(kind, store_factory):
    """Records written before ``fp_chunks`` existed: their chunks are found by a Query."""
    store = store_factory(kind)
    store.create_library("lib")
    fps = {"old": add(store, "old", 1, n=20_000), "new": add(store, "new", 2), "old2": add(store, "old2", 3)}
    uid = store.Libraries.get("lib", consistent_read=True).uid
    F = store.Files
    for pk in ("old", "old2"):
        F(uid, f"f#{pk}").update(actions=[F.fp_chunks.remove()])
        assert F.get(uid, f"f#{pk}", consistent_read=True).fp_chunks is None
    assert F.get(uid, "f#new", consistent_read=True).fp_chunks == 1
    store.stats.reset()
    assert store.load_fingerprints("lib", ["old", "new", "old2"]) == fps
    assert dict(store.stats.requests) == {"GetItem": 1, "BatchGetItem": 2, "Query": 2}, store.stats.to_dict()
    assert store.load_fingerprint("lib", "old") == fps["old"]


@pytest.mark.parametrize("kind", DYNAMODB)
def test_dynamodb_only_committed_live_files_count(kind, store_factory, monkeypatch):
    """As for lookups: a number above the watermark or in ``dead`` is not visible."""
    store = store_factory(kind)
    store.create_library("lib")
    fps = {pk: add(store, pk, i) for i, pk in enumerate(["kept", "replaced", "dying"])}
    L = store.Libraries
    # a deletion that has marked the file dead but not yet removed its record
    dying_no = int(store.Files.get(L.get("lib", consistent_read=True).uid, "f#dying", consistent_read=True).no)
    L("lib").update(actions=[L.dead.add({dying_no})])

    def die(*args, **kwargs):
        raise SystemExit("killed")

    # writers that die after the record is written, before the commit (the next writer would finish them)
    monkeypatch.setattr(store, "_publish", die)
    monkeypatch.setattr(store, "_purge_file", die)
    monkeypatch.setattr(store, "_on_lease", lambda library, token: None)  # no recovery of the first by the second
    for pk, seed, replace in (("replaced", 8, True), ("brand-new", 9, False)):
        with pytest.raises(SystemExit):
            add(store, pk, seed, replace=replace)
    monkeypatch.undo()
    assert store.get_file("lib", "brand-new").primary_key == "brand-new"  # the record landed
    got = store.load_fingerprints("lib", ["kept", "replaced", "dying", "brand-new"])
    # the replacement is not committed: the old version is what lookups see, and what loads
    assert got == {"kept": fps["kept"], "replaced": fps["replaced"]}
    assert [h for h in store.lookup_visual("lib", [1]).files.tolist()] == ["replaced"]
    with pytest.raises(LibraryError):
        store.load_fingerprint("lib", "brand-new")
    with store.library_lock("lib"):  # the next writer commits both; then the new versions load
        pass
    got = store.load_fingerprints("lib", ["replaced", "brand-new"])
    assert got == {"replaced": make_fingerprint(8), "brand-new": make_fingerprint(9)}


@pytest.mark.parametrize("kind", DYNAMODB)
def test_dynamodb_file_replaced_while_loading_is_read_again(kind, store_factory, monkeypatch):
    """Another writer replaces a file between the record read and the chunk read: its chunks are gone,
    so that file is read again (library, record, chunks) and its new version returned."""
    from mediadna.store.dynamodb import DynamoDBStore

    store = store_factory(kind)
    store.create_library("lib")
    add(store, "k", 1)
    other = add(store, "other", 2)
    writer = DynamoDBStore(store.config)
    real = store._batch_get
    raced = []

    def racing(model, keys, **kw):
        out = real(model, keys, **kw)
        if kw.get("attributes") and not raced:  # the records were read: now the other writer strikes
            raced.append(True)
            add(writer, "k", 7, replace=True)
        return out

    monkeypatch.setattr(store, "_batch_get", racing)
    store.stats.reset()
    assert store.load_fingerprints("lib", ["k", "other"]) == {"k": make_fingerprint(7), "other": other}
    assert raced
    assert dict(store.stats.requests) == {"GetItem": 2, "BatchGetItem": 4}, store.stats.to_dict()


def test_the_cohort_is_read_through_the_port(store):
    """A short query's cohort (mediadna.match.Matcher.cohort)
    needs only list_files and load_fingerprints: every adapter gives the same
    files, in key order, the candidates and the files without sound left out."""
    from dataclasses import replace

    from mediadna.match import COHORT_FILES, COHORT_MIN_FILES, Matcher

    store.create_library("lib")
    n = COHORT_FILES + 3
    fps = {}
    for i in range(n):
        fp = make_fingerprint(i, n=4)
        fp = replace(fp, audio=AudioTrack(fp.audio.frames, fp.audio.bins, np.arange(40) + i, np.full(40, i, np.uint32)))
        silent = i % 5 == 0
        record = replace(make_record(f"k{i:02d}", i), has_audio=not silent)
        store.add_file("lib", record, replace(fp, audio=None) if silent else fp, Postings([i], [1.0], [i], [2.0]))
        fps[f"k{i:02d}"] = fp
    cohort = Matcher(store).cohort("lib", skip={"k01", "k03"})
    heard = [k for k in sorted(fps) if int(k[1:]) % 5]
    want = [k for k in heard if k not in ("k01", "k03")][:COHORT_FILES]
    assert len(want) >= COHORT_MIN_FILES
    assert [int(c.audio.contour[0]) for c in cohort] == [int(k[1:]) for k in want]
    assert Matcher(store).cohort("lib", skip=set(heard[: len(heard) - COHORT_MIN_FILES + 1])) == []
