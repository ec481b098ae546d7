"""Contract tests for every LibraryStore adapter: SQLite, in-memory, DynamoDB
in moto and DynamoDB over HTTP in dynalite (see conftest.py).

Each test in the first part runs once per adapter through the ``store``
fixture; the adapters must behave identically, errors and paging included.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mediadna.errors import (
    FILE_EXISTS,
    FILE_NOT_FOUND,
    INTERNAL,
    INVALID_ARGUMENT,
    LIBRARY_EXISTS,
    LIBRARY_NOT_FOUND,
    LibraryError,
    MediaDnaError,
)
from mediadna.fingerprint import AudioTrack, Fingerprint, VisualTrack
from mediadna.store import (
    FileRecord,
    Hits,
    LibraryStore,
    MemoryStore,
    Postings,
    SQLiteStore,
    open_store,
)
from mediadna.store.base import MAX_PAGE_SIZE, build_hits
from mediadna.store.sqlite import SCHEMA_VERSION

from store_backends import ADAPTERS, kind_of  # tests/contract/store_backends.py

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


# -- helpers -------------------------------------------------------------------
def make_fingerprint(seed: int = 0, visual: bool = True, audio: bool = True, n: int = 12) -> Fingerprint:
    rng = np.random.default_rng(seed)
    v = a = None
    if visual:
        v = VisualTrack(
            np.sort(rng.random(n) * 10),
            rng.integers(0, 2**64, n, dtype=np.uint64),
            rng.integers(0, 2**64, n, dtype=np.uint64),
            rng.integers(0, 2, n),
        )
    if audio:
        a = AudioTrack(rng.integers(0, 5000, 3 * n), rng.integers(0, 1024, 3 * n))
    return Fingerprint(
        duration=10.0 + seed,
        sha256=f"{seed:064x}",
        media_type="video" if visual else "audio",
        params={"fps": 2, "hop": 512},
        visual=v,
        audio=a,
        source=f"clip{seed}.mp4",
        meta={"width": 640, "codec": "h264"},
    )


def make_record(pk: str, sha: str = "a" * 64, **kw) -> FileRecord:
    fields = dict(
        duration=12.5,
        sha256=sha,
        media_type="video",
        has_video=True,
        has_audio=True,
        fingerprint_version=1,
        metadata={"title": pk, "tags": ["x", "y"], "n": 3},
    )
    fields.update(kw)
    return FileRecord(primary_key=pk, **fields)


def make_postings(visual: dict[int, list[float]] | None = None, audio: dict[int, list[float]] | None = None) -> Postings:
    """Postings from {key: [times]}."""

    def flat(d):
        pairs = [(k, t) for k, ts in (d or {}).items() for t in ts]
        return [k for k, _ in pairs], [t for _, t in pairs]

    vk, vt = flat(visual)
    ak, at = flat(audio)
    return Postings(vk, vt, ak, at)


def add(store: LibraryStore, lib: str, pk: str, seed: int = 0, postings: Postings | None = None, **kw) -> None:
    store.add_file(lib, make_record(pk, **kw), make_fingerprint(seed), postings or make_postings(), replace=False)


def triples(hits: Hits) -> list[tuple[int, str, float]]:
    """The hits as sorted (key, primary key, time) triples (a lookup's order is not part of the contract)."""
    return sorted(zip(hits.keys.tolist(), hits.files.tolist(), hits.times.tolist()))


def all_keys(store: LibraryStore, lib: str) -> list[str]:
    keys, cursor = [], None
    while True:
        page = store.list_files(lib, limit=7, cursor=cursor)
        keys += [r.primary_key for r in page.items]
        cursor = page.next_cursor
        if cursor is None:
            return keys


def code_of(excinfo) -> str:
    return excinfo.value.code


def assert_no_orphans(store: LibraryStore) -> None:
    """No row or item may outlive its file or library (lookups would not show it)."""
    if kind_of(store) == "dynamodb":
        return assert_no_dynamodb_orphans(store)
    if not isinstance(store, SQLiteStore):
        return
    conn = store._conn
    for kind in ("visual", "audio"):
        # every posting in a packed term row is of a current file of that library, which lists
        # the term (delete finds postings through the file's terms); no row is empty
        indexed = set()
        for lib_id, key, blob in conn.execute(f"SELECT lib_id, key, postings FROM {kind}_index"):
            assert blob and len(blob) % 8 == 0, (kind, lib_id, key)
            postings = np.frombuffer(blob, dtype=[("no", "<u4"), ("t", "<f4")])
            assert len(set(postings.tolist())) == len(postings), f"duplicate {kind} postings of key {key}"
            indexed |= {(lib_id, key, no) for no in postings["no"].tolist()}
        listed = {
            (lib_id, key, file_id)
            for file_id, lib_id, terms in conn.execute(f"SELECT id, lib_id, {kind}_terms FROM files")
            for key in np.frombuffer(terms, dtype="<u4").tolist()
        }
        assert indexed == listed, kind
    assert conn.execute("SELECT COUNT(*) FROM files WHERE lib_id NOT IN (SELECT id FROM libraries)").fetchone()[0] == 0


def assert_no_dynamodb_orphans(store) -> None:
    """Scan every table: each posting, chunk and record belongs to a current file of a live library."""
    libs = {item.uid: item for item in store.Libraries.scan(consistent_read=True)}
    current: dict[str, set[int]] = {uid: set() for uid in libs}
    files = list(store.Files.scan(consistent_read=True))
    for item in files:
        assert item.lib in libs, f"files item of a deleted library: {item.k}"
        if item.k.startswith("f#"):
            current[item.lib].add(int(item.no))
    for uid, lib in libs.items():
        assert not lib.pending and not lib.dead, (lib.pending, lib.dead)
        assert not lib.deleting
        assert int(lib.file_count) == len(current[uid])
    for item in files:
        if item.k.startswith("b#"):
            assert int(item.k.split("#")[1]) in current[item.lib], f"chunk of a gone file: {item.k}"
    for kind, model in store.Terms.items():
        for item in model.scan(consistent_read=True):
            uid = item.t.split("#")[0]
            assert uid in libs, f"{kind} term item of a deleted library: {item.t}"
            nos = set(np.frombuffer(item.p or b"", dtype=[("no", "<u4"), ("t", "<f4")])["no"].tolist())
            assert nos <= current[uid], f"{kind} postings of gone files {nos - current[uid]} in {item.t}"
            assert item.p or item.stop, f"empty {kind} term item {item.t}"


# -- libraries -------------------------------------------------------------------
def test_store_satisfies_the_port(store):
    assert isinstance(store, LibraryStore)


def test_create_get_list_delete_library(store):
    created = store.create_library("films", threshold=0.7, min_segment_seconds=5.0)
    assert (created.name, created.threshold, created.min_segment_seconds, created.file_count) == ("films", 0.7, 5.0, 0)
    assert ISO_UTC.match(created.created_at)
    when = datetime.fromisoformat(created.created_at.replace("Z", "+00:00"))
    assert abs((datetime.now(timezone.utc) - when).total_seconds()) < 60
    assert store.get_library("films") == created

    store.create_library("ads")  # defaults
    ads = store.get_library("ads")
    assert (ads.threshold, ads.min_segment_seconds) == (0.5, 3.0)
    assert [lib.name for lib in store.list_libraries()] == ["ads", "films"]

    add(store, "films", "a")
    add(store, "films", "b")
    assert store.get_library("films").file_count == 2
    assert {lib.name: lib.file_count for lib in store.list_libraries()} == {"ads": 0, "films": 2}

    store.delete_library("films")
    with pytest.raises(LibraryError) as e:
        store.get_library("films")
    assert code_of(e) == LIBRARY_NOT_FOUND
    assert [lib.name for lib in store.list_libraries()] == ["ads"]


def test_duplicate_library_keeps_the_original(store):
    store.create_library("lib", threshold=0.8)
    with pytest.raises(LibraryError) as e:
        store.create_library("lib", threshold=0.1)
    assert code_of(e) == LIBRARY_EXISTS
    assert store.get_library("lib").threshold == 0.8


@pytest.mark.parametrize("threshold, min_seg", [(-0.1, 3.0), (1.5, 3.0), (float("nan"), 3.0), (0.5, -1.0), ("0.5", 3.0)])
def test_invalid_library_settings(store, threshold, min_seg):
    with pytest.raises(LibraryError) as e:
        store.create_library("lib", threshold=threshold, min_segment_seconds=min_seg)
    assert code_of(e) == INVALID_ARGUMENT
    assert store.list_libraries() == []


def _library_ops(name):
    fp, rec, post = make_fingerprint(), make_record("k"), make_postings()
    return {
        "get_library": lambda s: s.get_library(name),
        "delete_library": lambda s: s.delete_library(name),
        "add_file": lambda s: s.add_file(name, rec, fp, post),
        "get_file": lambda s: s.get_file(name, "k"),
        "list_files": lambda s: s.list_files(name),
        "delete_file": lambda s: s.delete_file(name, "k"),
        "files_by_sha256": lambda s: s.files_by_sha256(name, "a" * 64),
        "load_fingerprint": lambda s: s.load_fingerprint(name, "k"),
        "lookup_visual": lambda s: s.lookup_visual(name, np.array([1], np.uint32)),
        "lookup_audio": lambda s: s.lookup_audio(name, np.zeros(0, np.uint32)),
    }


def test_missing_library_is_not_found_everywhere(store):
    store.create_library("other")
    for op_name, op in _library_ops("missing").items():
        with pytest.raises(LibraryError) as e:
            op(store)
        assert code_of(e) == LIBRARY_NOT_FOUND, op_name


HOSTILE_NAMES = ["", "../x", "a/b", "a\\b", "x" * 65, "-lead", ".hidden", "a b", "lib\n", "li\x00b", "ü", None, 42]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=repr)
def test_invalid_library_names_are_rejected_everywhere(store, name):
    with pytest.raises(LibraryError) as e:
        store.create_library(name)
    assert code_of(e) == INVALID_ARGUMENT
    for op_name, op in _library_ops(name).items():
        with pytest.raises(LibraryError) as e:
            op(store)
        assert code_of(e) == INVALID_ARGUMENT, op_name
    assert store.list_libraries() == []


def test_longest_and_punctuated_library_names_are_fine(store):
    for name in ["x" * 64, "a", "A1_b.c-d", "9lives"]:
        store.create_library(name)
        assert store.get_library(name).name == name


# -- files -----------------------------------------------------------------------
HOSTILE_KEYS = ["", "a\x00b", "line\nbreak", "tab\there", "del\x7f", "esc\x1b[0m", "x" * 1025, "\ud800", None, 7]


@pytest.mark.parametrize("key", HOSTILE_KEYS, ids=repr)
def test_invalid_primary_keys_are_rejected(store, key):
    store.create_library("lib")
    with pytest.raises(LibraryError) as e:
        store.add_file("lib", make_record(key), make_fingerprint(), make_postings())
    assert code_of(e) == INVALID_ARGUMENT
    for op in (store.get_file, store.delete_file, store.load_fingerprint):
        with pytest.raises(LibraryError) as e:
            op("lib", key)
        assert code_of(e) == INVALID_ARGUMENT
    assert store.list_files("lib").items == []


def test_unusual_but_valid_primary_keys(store):
    store.create_library("lib")
    keys = ["../etc/passwd", "s3://bucket/a b.mp4", "ünïcødé/ファイル.mkv", "x" * 1024, "😀", "'; DROP TABLE files; --"]
    for i, key in enumerate(keys):
        add(store, "lib", key, seed=i)
    for key in keys:
        assert store.get_file("lib", key).primary_key == key
    assert all_keys(store, "lib") == sorted(keys)


def test_add_get_file_round_trip(store):
    store.create_library("lib")
    record = make_record("clip.mp4", duration=33.25, has_audio=False, metadata={"a": {"b": [1, 2.5, None, "ü"]}})
    store.add_file("lib", record, make_fingerprint(), make_postings({1: [0.5]}))
    got = store.get_file("lib", "clip.mp4")
    assert ISO_UTC.match(got.created_at)
    assert got == FileRecord(**{**record.to_dict(), "created_at": got.created_at})
    assert type(got.has_video) is bool and type(got.has_audio) is bool
    got.metadata["a"]["b"].append("mutated")  # callers must not be able to change stored data
    assert store.get_file("lib", "clip.mp4").metadata == {"a": {"b": [1, 2.5, None, "ü"]}}
    assert store.get_library("lib").file_count == 1


def test_given_created_at_is_kept(store):
    store.create_library("lib")
    store.add_file("lib", make_record("k", created_at="2020-01-02T03:04:05.000Z"), make_fingerprint(), make_postings())
    assert store.get_file("lib", "k").created_at == "2020-01-02T03:04:05.000Z"


@pytest.mark.parametrize(
    "bad",
    [
        {"metadata": {"x": object()}},
        {"metadata": {"x": float("nan")}},
        {"metadata": ["not", "a", "dict"]},
        {"duration": float("inf")},
        {"duration": -1.0},
        {"sha256": None},
    ],
    ids=repr,
)
def test_invalid_records_are_rejected(store, bad):
    store.create_library("lib")
    with pytest.raises(LibraryError) as e:
        store.add_file("lib", make_record("k", **bad), make_fingerprint(), make_postings())
    assert code_of(e) == INVALID_ARGUMENT
    assert store.get_library("lib").file_count == 0


def test_get_missing_file(store):
    store.create_library("lib")
    add(store, "lib", "present")
    for op in (store.get_file, store.delete_file, store.load_fingerprint):
        with pytest.raises(LibraryError) as e:
            op("lib", "absent")
        assert code_of(e) == FILE_NOT_FOUND


@pytest.mark.parametrize("count, limit", [(23, 5), (20, 5), (5, 5), (1, 100), (0, 3)])
def test_list_files_pages_in_key_order(store, count, limit):
    store.create_library("lib")
    rng = np.random.default_rng(count)
    keys = [f"{c}{i}" for i, c in zip(rng.permutation(count), "aZé😀b9_-" * 10)]
    for key in keys:
        add(store, "lib", key)
    pages, cursor = [], None
    while True:
        page = store.list_files("lib", limit=limit, cursor=cursor)
        assert 0 < len(page.items) <= limit or (count == 0 and page.items == [])
        pages.append([r.primary_key for r in page.items])
        if page.next_cursor is None:
            break
        assert isinstance(page.next_cursor, str)
        cursor = page.next_cursor
    assert [k for p in pages for k in p] == sorted(keys)
    assert len(pages) == max(1, -(-count // limit))  # no trailing empty page


def test_cursor_survives_deleting_its_key(store):
    store.create_library("lib")
    for key in "abcdef":
        add(store, "lib", key)
    first = store.list_files("lib", limit=2)
    store.delete_file("lib", "b")
    assert [r.primary_key for r in store.list_files("lib", limit=10, cursor=first.next_cursor).items] == ["c", "d", "e", "f"]


@pytest.mark.parametrize("limit", [0, -1, MAX_PAGE_SIZE + 1, 2.5, True, "10"])
def test_invalid_limit(store, limit):
    store.create_library("lib")
    with pytest.raises(LibraryError) as e:
        store.list_files("lib", limit=limit)
    assert code_of(e) == INVALID_ARGUMENT


@pytest.mark.parametrize("cursor", ["", "garbage", "c1.!!!", "c1.wA", 5])
def test_invalid_cursor(store, cursor):
    store.create_library("lib")
    add(store, "lib", "k")
    with pytest.raises(LibraryError) as e:
        store.list_files("lib", cursor=cursor)
    assert code_of(e) == INVALID_ARGUMENT


def test_file_exists_unless_replace(store):
    store.create_library("lib")
    store.add_file("lib", make_record("k", duration=1.0), make_fingerprint(1), make_postings({10: [1.0]}, {20: [2.0]}))
    with pytest.raises(LibraryError) as e:
        store.add_file("lib", make_record("k", duration=2.0), make_fingerprint(2), make_postings({11: [1.0]}, {21: [2.0]}))
    assert code_of(e) == FILE_EXISTS
    assert store.get_file("lib", "k").duration == 1.0  # untouched
    assert triples(store.lookup_visual("lib", [10, 11])) == [(10, "k", 1.0)]
    assert store.load_fingerprint("lib", "k") == make_fingerprint(1)

    store.add_file(
        "lib", make_record("k", duration=2.0), make_fingerprint(2), make_postings({11: [3.0]}, {21: [4.0]}), replace=True
    )
    assert store.get_file("lib", "k").duration == 2.0
    assert store.load_fingerprint("lib", "k") == make_fingerprint(2)
    assert triples(store.lookup_visual("lib", [10, 11])) == [(11, "k", 3.0)]
    assert triples(store.lookup_audio("lib", [20, 21])) == [(21, "k", 4.0)]
    assert store.get_library("lib").file_count == 1
    assert_no_orphans(store)


def test_replace_of_a_new_key_just_adds(store):
    store.create_library("lib")
    store.add_file("lib", make_record("k"), make_fingerprint(), make_postings({1: [1.0]}), replace=True)
    assert triples(store.lookup_visual("lib", [1])) == [(1, "k", 1.0)]


def break_audio_writes(store: LibraryStore, monkeypatch) -> type[BaseException]:
    """Make the next add_file fail after its record and visual postings are staged."""
    if kind_of(store) == "dynamodb":
        real = store._append_postings

        def fail_on_audio(kind, *args, **kwargs):
            if kind == "audio":
                raise RuntimeError("injected")
            return real(kind, *args, **kwargs)

        monkeypatch.setattr(store, "_append_postings", fail_on_audio)
        return RuntimeError
    if isinstance(store, SQLiteStore):
        store._conn.execute(
            "CREATE TEMP TRIGGER fail_audio BEFORE INSERT ON main.audio_index BEGIN SELECT RAISE(ABORT, 'injected'); END"
        )
        return LibraryError

    def boom(*args, **kwargs):
        raise RuntimeError("injected")

    monkeypatch.setattr(store, "_build_entry", boom)
    return RuntimeError


def assert_nothing_of(store: LibraryStore, lib: str, pk: str, sha: str, vkeys, akeys) -> None:
    with pytest.raises(LibraryError):
        store.get_file(lib, pk)
    with pytest.raises(LibraryError):
        store.load_fingerprint(lib, pk)
    assert pk not in all_keys(store, lib)
    assert store.files_by_sha256(lib, sha) == []
    assert pk not in set(store.lookup_visual(lib, vkeys).files.tolist())
    assert pk not in set(store.lookup_audio(lib, akeys).files.tolist())


def test_failed_add_leaves_nothing_behind(store, monkeypatch):
    store.create_library("lib")
    add(store, "lib", "other", postings=make_postings({1: [0.0]}, {2: [0.0]}))
    expected_error = break_audio_writes(store, monkeypatch)
    with pytest.raises(expected_error):
        store.add_file("lib", make_record("new", sha="f" * 64), make_fingerprint(), make_postings({1: [5.0]}, {2: [5.0]}))
    assert_nothing_of(store, "lib", "new", "f" * 64, [1], [2])
    assert store.get_library("lib").file_count == 1
    assert triples(store.lookup_visual("lib", [1])) == [(1, "other", 0.0)]
    assert_no_orphans(store)


def test_failed_replace_keeps_the_old_file(store, monkeypatch):
    store.create_library("lib")
    old = make_postings({1: [1.0], 2: [2.0]}, {3: [3.0]})
    store.add_file("lib", make_record("k", duration=1.0), make_fingerprint(1), old)
    expected_error = break_audio_writes(store, monkeypatch)
    with pytest.raises(expected_error):
        store.add_file(
            "lib", make_record("k", duration=9.0), make_fingerprint(9), make_postings({7: [7.0]}, {8: [8.0]}), replace=True
        )
    assert store.get_file("lib", "k").duration == 1.0
    assert store.load_fingerprint("lib", "k") == make_fingerprint(1)
    assert triples(store.lookup_visual("lib", [1, 2, 7])) == [(1, "k", 1.0), (2, "k", 2.0)]
    assert triples(store.lookup_audio("lib", [3, 8])) == [(3, "k", 3.0)]
    assert_no_orphans(store)


@pytest.mark.parametrize(
    "postings",
    [
        Postings([1, 2, 3], [0.0, 1.0], [], []),  # visual length mismatch
        Postings([1], [0.0], [4, 5], [1.0]),  # audio length mismatch, found after a valid visual track
        Postings([1], [float("nan")], [], []),
        Postings([[1]], [[0.0]], [], []),
    ],
)
def test_invalid_postings_are_rejected_and_nothing_is_stored(store, postings):
    store.create_library("lib")
    with pytest.raises(LibraryError) as e:
        store.add_file("lib", make_record("k"), make_fingerprint(), postings)
    assert code_of(e) == INVALID_ARGUMENT
    assert_nothing_of(store, "lib", "k", "a" * 64, [1, 4, 5], [1, 4, 5])
    assert store.get_library("lib").file_count == 0


def test_files_by_sha256(store):
    store.create_library("lib")
    store.create_library("other")
    add(store, "lib", "b-copy", sha="1" * 64)
    add(store, "lib", "a-orig", sha="1" * 64)
    add(store, "lib", "unrelated", sha="2" * 64)
    add(store, "other", "elsewhere", sha="1" * 64)
    assert [r.primary_key for r in store.files_by_sha256("lib", "1" * 64)] == ["a-orig", "b-copy"]
    assert [r.primary_key for r in store.files_by_sha256("lib", "2" * 64)] == ["unrelated"]
    assert store.files_by_sha256("lib", "3" * 64) == []
    store.delete_file("lib", "a-orig")
    assert [r.primary_key for r in store.files_by_sha256("lib", "1" * 64)] == ["b-copy"]


@pytest.mark.parametrize("visual, audio", [(True, True), (True, False), (False, True), (False, False)])
def test_load_fingerprint_round_trips_exactly(store, visual, audio):
    store.create_library("lib")
    fp = make_fingerprint(seed=3, visual=visual, audio=audio)
    store.add_file("lib", make_record("k"), fp, make_postings())
    got = store.load_fingerprint("lib", "k")
    assert got == fp
    assert got.to_bytes() == fp.to_bytes()
    if visual:
        assert got.visual.hashes.dtype == np.uint64 and np.array_equal(got.visual.hashes, fp.visual.hashes)
    else:
        assert got.visual is None


def test_empty_tracks_round_trip(store):
    store.create_library("lib")
    fp = Fingerprint(0.0, "0" * 64, "image", {}, VisualTrack.empty(), AudioTrack.empty())
    store.add_file("lib", make_record("k"), fp, make_postings())
    got = store.load_fingerprint("lib", "k")
    assert got == fp and got.visual is not None and len(got.visual) == 0


# -- inverted index ---------------------------------------------------------------------
def _check_hits_shape(hits: Hits) -> None:
    assert hits.keys.dtype == np.uint32 and hits.times.dtype == np.float32 and hits.files.dtype == object
    assert len(hits.keys) == len(hits.files) == len(hits.codes) == len(hits.times) == len(hits)
    assert len(hits) == 0 or (hits.codes.min() >= 0 and hits.codes.max() < len(hits.names))


posting_lists = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 30), st.integers(0, 8).map(lambda x: x / 4)),  # (file, key, time)
    max_size=60,
)


def budgeted(expected: list[tuple[int, str, float]], budget: int) -> list[tuple[int, str, float]]:
    """The brute-force answer of a lookup with a posting budget: rarest keys first (ties: smaller key), whole."""
    counts: dict[int, int] = {}
    for k, _, _ in expected:
        counts[k] = counts.get(k, 0) + 1
    kept, total = set(), 0
    for k in sorted(counts, key=lambda k: (counts[k], k)):
        if total + counts[k] > budget:
            break
        kept.add(k)
        total += counts[k]
    return [e for e in expected if e[0] in kept]


def check_lookup_equals_brute_force(store: LibraryStore, visual, audio, query, budget: int = 0) -> None:
    store.create_library("lib")
    names = ["f0", "F1", "ä2", "f10", "f3", "_5"]
    for i, name in enumerate(names):
        v = [(k, t) for f, k, t in visual if f == i]
        a = [(k, t) for f, k, t in audio if f == i]
        postings = Postings([k for k, _ in v], [t for _, t in v], [k for k, _ in a], [t for _, t in a])
        store.add_file("lib", make_record(name), make_fingerprint(i), postings)
    q = set(query)
    answers = [(store.lookup_visual("lib", np.array(query, np.uint32)), visual), (store.lookup_audio("lib", query), audio)]
    for found, source in answers:
        _check_hits_shape(found)
        # duplicates collapse; any order
        expected = sorted({(k, names[f], t) for f, k, t in source if k in q})
        assert triples(found) == expected
    for lookup, source in ((store.lookup_visual, visual), (store.lookup_audio, audio)):
        expected = sorted({(k, names[f], t) for f, k, t in source if k in q})
        found = lookup("lib", query, max_postings=budget)
        _check_hits_shape(found)
        assert triples(found) == budgeted(expected, budget)
        assert len(found) <= budget


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(visual=posting_lists, audio=posting_lists, query=st.lists(st.integers(0, 40), max_size=25),
       budget=st.integers(0, 40))
def test_lookup_equals_brute_force(kind, store_factory, visual, audio, query, budget):
    check_lookup_equals_brute_force(store_factory(kind), visual, audio, query, budget)


@pytest.mark.parametrize("kind", ["moto", "dynalite"])
@settings(max_examples=8, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(visual=posting_lists, audio=posting_lists, query=st.lists(st.integers(0, 40), max_size=25),
       budget=st.integers(0, 40))
def test_lookup_equals_brute_force_on_dynamodb(kind, store_factory, visual, audio, query, budget):
    # tiny shards, so that spilling into shards and reading them back is exercised too
    check_lookup_equals_brute_force(store_factory(kind, shard_postings=3), visual, audio, query, budget)


def test_lookup_with_thousands_of_keys(store):
    rng = np.random.default_rng(11)
    store.create_library("lib")
    expected = set()
    # DynamoDB: still many batches of 100 reads / 25 writes, at a fraction of the emulators' time
    n = 700 if kind_of(store) == "dynamodb" else 3000
    for i in range(4):
        keys = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
        keys[:500] = rng.integers(0, 1000, 500)  # shared, colliding keys
        times = rng.integers(0, 600, n).astype(np.float32) / 2
        store.add_file("lib", make_record(f"f{i}"), make_fingerprint(i), Postings(keys, times, keys, times))
        expected |= {(int(k), f"f{i}", float(t)) for k, t in zip(keys, times)}
    stored_keys = np.array(sorted({k for k, _, _ in expected}), dtype=np.uint32)
    query = np.concatenate([stored_keys[::2], rng.integers(0, 2**32, 2500, dtype=np.uint64).astype(np.uint32)])
    query = rng.permutation(np.concatenate([query, query[:100]]))  # over SQLite's variable limits, unsorted, duplicated
    wanted = set(query.tolist())
    hits = store.lookup_visual("lib", query)
    _check_hits_shape(hits)
    assert triples(hits) == sorted(e for e in expected if e[0] in wanted)
    assert len(hits) > n


@pytest.mark.parametrize("keys", [np.array([-1]), np.array([2**32]), np.array([1.5]), np.array([[1, 2]]), ["a"]], ids=repr)
def test_invalid_lookup_keys(store, keys):
    store.create_library("lib")
    with pytest.raises(LibraryError) as e:
        store.lookup_visual("lib", keys)
    assert code_of(e) == INVALID_ARGUMENT


def test_budgeted_lookup_drops_the_most_frequent_keys_first(store):
    store.create_library("lib")
    # key 7 is everywhere (a tone, a logo), key 3 in two places, key 9 once
    add(store, "lib", "a", postings=make_postings({7: [0.0, 1.0, 2.0], 3: [5.0], 9: [6.0]}, {7: [0.0, 1.0, 2.0], 3: [5.0]}))
    add(store, "lib", "b", postings=make_postings({7: [0.0, 4.0], 3: [8.0]}, {7: [3.0], 9: [1.0]}))
    assert triples(store.lookup_visual("lib", [3, 7, 9], max_postings=3)) == [(3, "a", 5.0), (3, "b", 8.0), (9, "a", 6.0)]
    assert triples(store.lookup_visual("lib", [3, 7, 9], max_postings=2)) == [(9, "a", 6.0)]  # whole keys only
    assert len(store.lookup_visual("lib", [3, 7, 9], max_postings=8)) == 8
    # audio: 3 and 9 tie at one posting each; the budget takes the smaller key first
    assert triples(store.lookup_audio("lib", [3, 7, 9], max_postings=1)) == [(3, "a", 5.0)]
    for bad in (-1, 1.5, "10", True):
        with pytest.raises(LibraryError) as e:
            store.lookup_audio("lib", [3], max_postings=bad)
        assert code_of(e) == INVALID_ARGUMENT


def test_lookup_of_nothing(store):
    store.create_library("lib")
    add(store, "lib", "k", postings=make_postings({1: [1.0]}))
    for keys in (np.zeros(0, np.uint32), [], np.array([2, 3], np.uint32)):
        hits = store.lookup_visual("lib", keys)
        assert len(hits) == 0
        _check_hits_shape(hits)


def test_visual_and_audio_indexes_are_separate(store):
    store.create_library("lib")
    add(store, "lib", "k", postings=make_postings({5: [1.0]}, {6: [2.0]}))
    assert triples(store.lookup_visual("lib", [5, 6])) == [(5, "k", 1.0)]
    assert triples(store.lookup_audio("lib", [5, 6])) == [(6, "k", 2.0)]


def test_delete_file_removes_its_postings(store):
    store.create_library("lib")
    add(store, "lib", "gone", postings=make_postings({1: [1.0, 2.0], 2: [3.0]}, {3: [4.0]}))
    add(store, "lib", "kept", postings=make_postings({1: [9.0]}, {3: [9.0]}))
    store.delete_file("lib", "gone")
    assert triples(store.lookup_visual("lib", [1, 2])) == [(1, "kept", 9.0)]
    assert triples(store.lookup_audio("lib", [3])) == [(3, "kept", 9.0)]
    assert all_keys(store, "lib") == ["kept"]
    add(store, "lib", "gone")  # the key is free again
    assert triples(store.lookup_visual("lib", [1, 2])) == [(1, "kept", 9.0)]
    assert_no_orphans(store)


def test_delete_library_removes_everything(store):
    store.create_library("lib")
    store.create_library("keep")
    add(store, "lib", "k", postings=make_postings({1: [1.0]}, {2: [2.0]}))
    add(store, "keep", "k", postings=make_postings({1: [5.0]}, {2: [6.0]}))
    store.delete_library("lib")
    store.create_library("lib")  # same name again: nothing of the old one may show through
    assert store.get_library("lib").file_count == 0
    assert len(store.lookup_visual("lib", [1])) == 0 and len(store.lookup_audio("lib", [2])) == 0
    assert store.list_files("lib").items == [] and store.files_by_sha256("lib", "a" * 64) == []
    assert triples(store.lookup_visual("keep", [1])) == [(1, "k", 5.0)]
    assert triples(store.lookup_audio("keep", [2])) == [(2, "k", 6.0)]
    assert_no_orphans(store)


def test_libraries_are_isolated(store):
    store.create_library("a")
    store.create_library("b")
    store.add_file("a", make_record("same", duration=1.0), make_fingerprint(1), make_postings({7: [1.0]}))
    store.add_file("b", make_record("same", duration=2.0), make_fingerprint(2), make_postings({7: [2.0]}))
    assert triples(store.lookup_visual("a", [7])) == [(7, "same", 1.0)]
    assert triples(store.lookup_visual("b", [7])) == [(7, "same", 2.0)]
    assert store.get_file("b", "same").duration == 2.0
    assert store.load_fingerprint("a", "same") == make_fingerprint(1)
    store.delete_file("a", "same")
    assert len(store.lookup_visual("a", [7])) == 0
    assert triples(store.lookup_visual("b", [7])) == [(7, "same", 2.0)]
    assert store.get_library("b").file_count == 1
    assert_no_orphans(store)


def test_concurrent_adds_from_threads(store):
    store.create_library("lib")
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for i in range(8):
                add(store, "lib", f"t{t}-{i}", postings=make_postings({t: [float(i)]}))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert store.get_library("lib").file_count == 32
    assert len(store.lookup_visual("lib", [0, 1, 2, 3])) == 32


def test_closed_store_refuses_work(store):
    store.create_library("lib")
    store.close()
    store.close()  # idempotent
    with pytest.raises(LibraryError) as e:
        store.list_libraries()
    assert code_of(e) == INTERNAL


# -- all adapters answer alike -------------------------------------------------------
@pytest.mark.parametrize("kind", [a for a in ADAPTERS if a != "memory"])
def test_adapters_agree_on_a_scripted_session(kind, store_factory):
    def session(s: LibraryStore):
        out = []
        s.create_library("lib")
        for i in range(9):
            s.add_file("lib", make_record(f"k{(i * 7) % 9}", sha=f"{i % 2}" * 64), make_fingerprint(i),
                       make_postings({i % 4: [i / 2, 0.0, i / 2]}, {i: [1.0]}))
        s.add_file("lib", make_record("k3", duration=99.0), make_fingerprint(0), make_postings({3: [8.0]}), replace=True)
        s.delete_file("lib", "k5")
        page = s.list_files("lib", limit=4)
        out.append(([r.to_dict() | {"created_at": ""} for r in page.items], page.next_cursor))
        page = s.list_files("lib", limit=4, cursor=page.next_cursor)
        out.append(([r.primary_key for r in page.items], page.next_cursor))
        out.append([r.primary_key for r in s.files_by_sha256("lib", "1" * 64)])
        out.append(triples(s.lookup_visual("lib", np.arange(5))))
        out.append(triples(s.lookup_audio("lib", np.arange(10))))
        out.append(s.get_library("lib").file_count)
        return out

    assert session(store_factory(kind, on_disk=True)) == session(store_factory("memory"))


def test_build_hits_orders_by_key_file_time():
    hits = build_hits(np.array([2, 1, 2, 1]), np.array([10, 11, 11, 10]), np.array([0.5, 3.0, 0.1, 1.0]), {10: "b", 11: "a"})
    assert triples(hits) == [(1, "a", 3.0), (1, "b", 1.0), (2, "a", float(np.float32(0.1))), (2, "b", 0.5)]


# -- SQLite specifics ------------------------------------------------------------
def test_sqlite_persists_across_reopen(tmp_path):
    path = tmp_path / "deep" / "lib.sqlite3"
    fp = make_fingerprint(5)
    s = SQLiteStore(path)
    s.create_library("lib", threshold=0.6)
    s.add_file("lib", make_record("k"), fp, make_postings({1: [1.5]}, {2: [2.5]}))
    before = s.get_file("lib", "k")
    s.close()

    s = SQLiteStore(str(path))
    try:
        assert s.get_library("lib").threshold == 0.6 and s.get_library("lib").file_count == 1
        assert s.get_file("lib", "k") == before
        assert s.load_fingerprint("lib", "k") == fp
        assert triples(s.lookup_visual("lib", [1])) == [(1, "k", 1.5)]
        assert triples(s.lookup_audio("lib", [2])) == [(2, "k", 2.5)]
    finally:
        s.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()


def test_sqlite_two_handles_on_one_file_see_each_other(tmp_path):
    a, b = SQLiteStore(tmp_path / "lib.sqlite3"), SQLiteStore(tmp_path / "lib.sqlite3")
    try:
        a.create_library("lib")
        add(a, "lib", "k", postings=make_postings({4: [4.0]}))
        assert triples(b.lookup_visual("lib", [4])) == [(4, "k", 4.0)]
        with pytest.raises(LibraryError) as e:
            add(b, "lib", "k")
        assert code_of(e) == FILE_EXISTS
    finally:
        a.close()
        b.close()


def test_sqlite_refuses_foreign_files(tmp_path):
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(LibraryError) as e:
        SQLiteStore(junk)
    assert code_of(e) == INVALID_ARGUMENT

    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as raw:
        raw.execute("CREATE TABLE notes (x)")
    raw.close()
    with pytest.raises(LibraryError) as e:
        SQLiteStore(other)
    assert code_of(e) == INVALID_ARGUMENT


def test_sqlite_refuses_a_newer_schema(tmp_path):
    path = tmp_path / "lib.sqlite3"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(LibraryError) as e:
        SQLiteStore(path)
    assert code_of(e) == INVALID_ARGUMENT and "upgrade" in str(e.value)


# -- open_store ---------------------------------------------------------------------
def test_open_store_specs(tmp_path):
    default = open_store(None, tmp_path / "home")
    assert isinstance(default, SQLiteStore) and Path(default.path) == tmp_path / "home" / "library.sqlite3"
    default.close()
    assert (tmp_path / "home" / "library.sqlite3").exists()
    empty = open_store("", tmp_path / "home")
    assert isinstance(empty, SQLiteStore)
    empty.close()
    explicit = open_store(f"sqlite:{tmp_path / 'x' / 'y.db'}", tmp_path)
    assert isinstance(explicit, SQLiteStore) and (tmp_path / "x" / "y.db").exists()
    explicit.close()
    assert isinstance(open_store("memory:", tmp_path), MemoryStore)
    in_memory_sqlite = open_store("sqlite::memory:", tmp_path)
    assert isinstance(in_memory_sqlite, SQLiteStore)
    in_memory_sqlite.close()


@pytest.mark.parametrize("spec", ["postgres://db", "dynamo:prefix", "memory:x", "library.sqlite3", "SQLITE:x",
                                  "dynamodb:", "dynamodb:a b", "dynamodb:" + "x" * 250])
def test_open_store_rejects_unknown_specs(tmp_path, spec):
    with pytest.raises(MediaDnaError) as e:
        open_store(spec, tmp_path)
    assert code_of(e) == INVALID_ARGUMENT
    assert list(tmp_path.iterdir()) == []


# -- the writer lock and revision ------------------------------------------------------
def test_revision_moves_with_every_add_and_delete(store):
    store.create_library("lib")
    store.create_library("other")
    r0 = store.library_revision("lib")
    add(store, "lib", "a")
    r1 = store.library_revision("lib")
    assert r1 != r0
    add(store, "other", "a")  # another library's writes do not count
    assert store.library_revision("lib") == r1
    with pytest.raises(LibraryError):
        add(store, "lib", "a")  # refused: nothing changed
    assert store.library_revision("lib") == r1
    store.delete_file("lib", "a")
    assert store.library_revision("lib") not in (r0, r1)
    with pytest.raises(LibraryError) as e:
        store.library_revision("nope")
    assert code_of(e) == LIBRARY_NOT_FOUND


def test_library_lock_is_reentrant_and_excludes_other_threads(store):
    store.create_library("lib")
    inside = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def holder():
        with store.library_lock("lib"):
            with store.library_lock("lib"):  # re-entered by the same thread
                order.append("holder in")
                inside.set()
                release.wait(10)
                add(store, "lib", "by-holder")  # writes while holding it
                order.append("holder out")

    def waiter():
        inside.wait(10)
        with store.library_lock("lib"):
            order.append("waiter in")

    threads = [threading.Thread(target=holder), threading.Thread(target=waiter)]
    for t in threads:
        t.start()
    inside.wait(10)
    time.sleep(0.3)
    assert order == ["holder in"]  # the waiter is still waiting
    release.set()
    for t in threads:
        t.join(30)
    assert order == ["holder in", "holder out", "waiter in"]
    with pytest.raises(LibraryError) as e:
        with store.library_lock("nope"):
            pass
    assert code_of(e) == LIBRARY_NOT_FOUND


def test_sqlite_lock_spans_processes_sharing_a_file(tmp_path):
    """Two handles on one database file (as two processes would have) exclude each other."""
    path = tmp_path / "lib.sqlite3"
    a, b = SQLiteStore(path), SQLiteStore(path)
    a.create_library("lib")
    b.lock_wait_seconds = 0.2
    with a.library_lock("lib"):
        with pytest.raises(LibraryError) as e:
            with b.library_lock("lib"):
                pass
        assert code_of(e) == "library_busy"
    with b.library_lock("lib"):  # released
        pass
    a.close()
    b.close()


def unpack_to_posting_rows(conn: sqlite3.Connection) -> None:
    """Turn the packed term rows (version 4) back into the one-row-per-posting tables of versions 1-3."""
    for kind in ("visual", "audio"):
        conn.execute(
            f"CREATE TABLE {kind}_postings (lib_id INTEGER NOT NULL, key INTEGER NOT NULL, file_id INTEGER NOT NULL,"
            " t REAL NOT NULL, PRIMARY KEY (lib_id, key, file_id, t)) WITHOUT ROWID"
        )
        for lib_id, key, blob in conn.execute(f"SELECT lib_id, key, postings FROM {kind}_index").fetchall():
            postings = np.frombuffer(blob, dtype=[("no", "<u4"), ("t", "<f4")])
            conn.executemany(
                f"INSERT INTO {kind}_postings VALUES (?, ?, ?, ?)",
                [(lib_id, key, no, t) for no, t in zip(postings["no"].tolist(), postings["t"].tolist())],
            )
        conn.execute(f"DROP TABLE {kind}_index")


def test_sqlite_upgrades_a_version_1_database(tmp_path):
    path = tmp_path / "old.sqlite3"
    s = SQLiteStore(path)
    s.create_library("lib")
    add(s, "lib", "k", postings=make_postings({1: [1.0]}))
    s.close()
    conn = sqlite3.connect(path)  # make it what version 1 wrote
    unpack_to_posting_rows(conn)
    conn.execute("DROP TABLE leases")
    conn.execute("ALTER TABLE libraries DROP COLUMN revision")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    s = SQLiteStore(path)
    assert s.library_revision("lib") == 0
    assert triples(s.lookup_visual("lib", [1])) == [(1, "k", 1.0)]
    with s.library_lock("lib"):
        add(s, "lib", "k2")
    assert s.library_revision("lib") == 1
    s.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
