"""SQLite store, schema version 4: packed per-term postings.

One row per (library, key) in ``visual_index`` / ``audio_index`` holds all of
that term's postings as 8-byte (file id ``<u4``, time ``<f4``) records.  These
tests check the layout directly: migration from the one-row-per-posting
version 3, deletes that share terms, and replace.
"""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from mediadna.store import Postings, SQLiteStore
from mediadna.store import sqlite as sqlite_module
from mediadna.store.sqlite import APPLICATION_ID, SCHEMA_VERSION

from test_store_contract import (  # tests/contract/test_store_contract.py
    add,
    assert_no_orphans,
    make_fingerprint,
    make_postings,
    make_record,
    triples,
)

POSTING = np.dtype([("no", "<u4"), ("t", "<f4")])

#: What version 3 created (libraries, leases and jobs as before; one row per posting).
V3_SCHEMA = [
    """CREATE TABLE libraries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        threshold REAL NOT NULL,
        min_segment_seconds REAL NOT NULL,
        created_at TEXT NOT NULL,
        revision INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE files (
        id INTEGER PRIMARY KEY,
        lib_id INTEGER NOT NULL REFERENCES libraries(id),
        primary_key TEXT NOT NULL,
        duration REAL NOT NULL,
        sha256 TEXT NOT NULL,
        media_type TEXT NOT NULL,
        has_video INTEGER NOT NULL,
        has_audio INTEGER NOT NULL,
        fingerprint_version INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        metadata TEXT NOT NULL,
        fingerprint BLOB NOT NULL,
        visual_terms BLOB NOT NULL,
        audio_terms BLOB NOT NULL,
        UNIQUE (lib_id, primary_key)
    )""",
    "CREATE INDEX files_sha256 ON files (lib_id, sha256, primary_key)",
    """CREATE TABLE visual_postings (
        lib_id INTEGER NOT NULL,
        key INTEGER NOT NULL,
        file_id INTEGER NOT NULL,
        t REAL NOT NULL,
        PRIMARY KEY (lib_id, key, file_id, t)
    ) WITHOUT ROWID""",
    """CREATE TABLE audio_postings (
        lib_id INTEGER NOT NULL,
        key INTEGER NOT NULL,
        file_id INTEGER NOT NULL,
        t REAL NOT NULL,
        PRIMARY KEY (lib_id, key, file_id, t)
    ) WITHOUT ROWID""",
    """CREATE TABLE leases (
        lib_id INTEGER PRIMARY KEY,
        owner TEXT NOT NULL,
        expires REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS jobs (
        job_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        library TEXT,
        input_key TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        result_location TEXT,
        error_code TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS jobs_library ON jobs (library, created_at, job_id)",
    "CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at, job_id)",
]


def packed_rows(store: SQLiteStore, kind: str) -> dict[tuple[int, int], list[tuple[int, float]]]:
    """{(lib_id, key): sorted (file id, time) postings} straight from the table."""
    rows = store._conn.execute(f"SELECT lib_id, key, postings FROM {kind}_index").fetchall()
    return {(lib, key): sorted(np.frombuffer(blob, POSTING).tolist()) for lib, key, blob in rows}


def file_id(store: SQLiteStore, pk: str) -> int:
    return store._conn.execute("SELECT id FROM files WHERE primary_key = ?", (pk,)).fetchone()[0]


# -- (a) migration from version 3 ------------------------------------------------
def write_v3_database(path, rng: np.random.Generator) -> dict[tuple[str, str], set[tuple[int, str, float]]]:
    """A version 3 database made by hand; returns what each (library, kind) lookup must find:
    {(library, kind): {(key, primary key, float32 time)}}."""
    conn = sqlite3.connect(path)
    for statement in V3_SCHEMA:
        conn.execute(statement)
    expected: dict[tuple[str, str], set] = {}
    # many files per key (terms cross migration blocks), keys up to 2**32-1, two libraries sharing keys
    keys = np.concatenate([rng.integers(0, 40, 8), [2**32 - 1, 2**32 - 2, 2**31]]).astype(np.int64)
    for lib_no, lib in enumerate(("films", "ads"), start=1):
        conn.execute(
            "INSERT INTO libraries (id, name, threshold, min_segment_seconds, created_at, revision)"
            " VALUES (?, ?, 0.5, 3.0, '2026-01-01T00:00:00.000Z', 7)",
            (lib_no, lib),
        )
        for kind in ("visual", "audio"):
            expected[(lib, kind)] = set()
        for f in range(6):
            fid = lib_no * 100 + f
            pk = f"{lib}-{f}"
            terms = {}
            for kind in ("visual", "audio"):
                picked = rng.choice(keys, size=int(rng.integers(1, len(keys))), replace=False)
                rows = []
                for key in picked.tolist():
                    for t in np.round(rng.random(int(rng.integers(1, 5))) * 100, 3).tolist():
                        t32 = float(np.float32(t))
                        rows.append((lib_no, key, fid, t32))
                        expected[(lib, kind)].add((key, pk, t32))
                if kind == "audio":  # two old rows that are one posting once times are float32
                    rows.append((lib_no, int(picked[0]), fid, 1.0))
                    rows.append((lib_no, int(picked[0]), fid, 1.0 + 1e-12))
                    expected[(lib, kind)].add((int(picked[0]), pk, 1.0))
                conn.executemany(f"INSERT OR IGNORE INTO {kind}_postings VALUES (?, ?, ?, ?)", rows)
                terms[kind] = np.unique(picked).astype("<u4").tobytes()
            conn.execute(
                "INSERT INTO files (id, lib_id, primary_key, duration, sha256, media_type, has_video, has_audio,"
                " fingerprint_version, created_at, metadata, fingerprint, visual_terms, audio_terms)"
                " VALUES (?, ?, ?, 10.0, ?, 'video', 1, 1, 1, '2026-01-01T00:00:00.000Z', '{}', ?, ?, ?)",
                (fid, lib_no, pk, f"{fid:064x}", make_fingerprint(f).to_bytes(), terms["visual"], terms["audio"]),
            )
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()
    return expected


@pytest.mark.parametrize("block", [5, 64, 1 << 20])
def test_a_version_3_database_migrates_with_every_posting(tmp_path, monkeypatch, block):
    monkeypatch.setattr(sqlite_module, "MIGRATION_BLOCK", block)  # small blocks: terms span blocks
    path = tmp_path / "v3.sqlite3"
    expected = write_v3_database(path, np.random.default_rng(block))
    all_keys = sorted({key for found in expected.values() for key, _, _ in found})

    s = SQLiteStore(path)
    try:
        for (lib, kind), want in expected.items():
            lookup = s.lookup_visual if kind == "visual" else s.lookup_audio
            assert set(triples(lookup(lib, all_keys))) == want, (lib, kind)
            assert len(lookup(lib, all_keys)) == len(want)  # no duplicates
        tables = {name for (name,) in s._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"visual_index", "audio_index"} <= tables
        assert not {"visual_postings", "audio_postings"} & tables
        assert s.library_revision("films") == 7
        assert_no_orphans(s)
        # the migrated rows behave like new ones: delete and add through them
        s.delete_file("films", "films-0")
        add(s, "films", "new", postings=make_postings({all_keys[0]: [0.5]}, {all_keys[-1]: [0.25]}))
        assert "films-0" not in {f for _, f, _ in triples(s.lookup_visual("films", all_keys))}
        assert (all_keys[-1], "new", 0.25) in triples(s.lookup_audio("films", all_keys))
        assert_no_orphans(s)
    finally:
        s.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    raw.close()


def test_a_failed_migration_leaves_the_version_3_database(tmp_path, monkeypatch):
    path = tmp_path / "v3.sqlite3"
    expected = write_v3_database(path, np.random.default_rng(1))

    def boom(*args):
        raise RuntimeError("injected")

    monkeypatch.setattr(sqlite_module, "_insert_packed", boom)
    with pytest.raises(RuntimeError):
        SQLiteStore(path)
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 3
        rows = raw.execute("SELECT COUNT(*) FROM visual_postings").fetchone()[0]
        assert rows == sum(len(v) for (_, kind), v in expected.items() if kind == "visual")
        assert raw.execute("SELECT name FROM sqlite_master WHERE name = 'visual_index'").fetchone() is None
    raw.close()


# -- (b) delete with shared terms -----------------------------------------------
def test_deleting_one_of_two_files_sharing_terms_keeps_the_other(tmp_path):
    s = SQLiteStore(tmp_path / "lib.sqlite3")
    try:
        s.create_library("lib")
        add(s, "lib", "a", postings=make_postings({1: [1.0, 2.0], 2: [3.0], 3: [4.0]}, {10: [1.0], 11: [2.0]}))
        add(s, "lib", "b", postings=make_postings({1: [5.0], 2: [6.0], 4: [7.0]}, {10: [8.0], 12: [9.0]}))
        a, b = file_id(s, "a"), file_id(s, "b")
        lib = s._conn.execute("SELECT id FROM libraries WHERE name = 'lib'").fetchone()[0]
        assert packed_rows(s, "visual")[(lib, 1)] == [(a, 1.0), (a, 2.0), (b, 5.0)]

        s.delete_file("lib", "a")
        assert packed_rows(s, "visual") == {(lib, 1): [(b, 5.0)], (lib, 2): [(b, 6.0)], (lib, 4): [(b, 7.0)]}
        assert packed_rows(s, "audio") == {(lib, 10): [(b, 8.0)], (lib, 12): [(b, 9.0)]}  # 11: empty, gone
        assert triples(s.lookup_visual("lib", [1, 2, 3, 4])) == [(1, "b", 5.0), (2, "b", 6.0), (4, "b", 7.0)]
        assert triples(s.lookup_audio("lib", [10, 11, 12])) == [(10, "b", 8.0), (12, "b", 9.0)]
        assert_no_orphans(s)

        s.delete_file("lib", "b")
        assert packed_rows(s, "visual") == {} and packed_rows(s, "audio") == {}
    finally:
        s.close()


def test_delete_library_removes_its_term_rows_only(tmp_path):
    s = SQLiteStore(tmp_path / "lib.sqlite3")
    try:
        s.create_library("gone")
        s.create_library("kept")
        add(s, "gone", "k", postings=make_postings({1: [1.0]}, {2: [2.0]}))
        add(s, "kept", "k", postings=make_postings({1: [3.0]}, {2: [4.0]}))
        s.delete_library("gone")
        kept = s._conn.execute("SELECT id FROM libraries WHERE name = 'kept'").fetchone()[0]
        assert {lib for lib, _ in packed_rows(s, "visual")} == {kept}
        assert {lib for lib, _ in packed_rows(s, "audio")} == {kept}
        assert_no_orphans(s)
    finally:
        s.close()


# -- (c) replace --------------------------------------------------------------------
def test_replace_leaves_no_stale_postings(tmp_path):
    s = SQLiteStore(tmp_path / "lib.sqlite3")
    try:
        s.create_library("lib")
        add(s, "lib", "other", postings=make_postings({1: [0.5], 3: [0.5]}, {10: [0.5]}))
        add(s, "lib", "k", postings=make_postings({1: [1.0, 2.0], 2: [3.0]}, {10: [4.0], 11: [5.0]}))
        new = make_postings({1: [2.0, 6.0], 3: [7.0]}, {10: [4.0]})
        for _ in range(2):  # replacing with the same postings twice must not duplicate them
            s.add_file("lib", make_record("k", duration=2.0), make_fingerprint(2), new, replace=True)
            k, other = file_id(s, "k"), file_id(s, "other")
            lib = s._conn.execute("SELECT id FROM libraries WHERE name = 'lib'").fetchone()[0]
            assert packed_rows(s, "visual") == {
                (lib, 1): sorted([(other, 0.5), (k, 2.0), (k, 6.0)]),
                (lib, 3): sorted([(other, 0.5), (k, 7.0)]),
            }  # key 2 was only the old k's: its row is gone
            assert packed_rows(s, "audio") == {(lib, 10): sorted([(other, 0.5), (k, 4.0)])}
            assert triples(s.lookup_visual("lib", [1, 2, 3])) == [
                (1, "k", 2.0), (1, "k", 6.0), (1, "other", 0.5), (3, "k", 7.0), (3, "other", 0.5)
            ]
            assert triples(s.lookup_audio("lib", [10, 11])) == [(10, "k", 4.0), (10, "other", 0.5)]
            assert_no_orphans(s)
    finally:
        s.close()


def test_lookup_spans_many_chunks_and_large_terms(tmp_path):
    """Keys over several IN chunks and terms with thousands of postings come back exactly."""
    s = SQLiteStore(tmp_path / "lib.sqlite3")
    rng = np.random.default_rng(3)
    try:
        s.create_library("lib")
        want = set()
        for f in range(5):
            keys = np.concatenate([rng.integers(0, 3000, 2000), np.full(1500, 7)]).astype(np.uint32)
            times = (rng.random(len(keys)) * 1000).astype(np.float32)
            s.add_file("lib", make_record(f"f{f}"), make_fingerprint(f), Postings(keys, times, keys[:10], times[:10]))
            want |= {(int(k), f"f{f}", float(t)) for k, t in zip(keys.tolist(), times.tolist())}
        hits = s.lookup_visual("lib", np.arange(3000))
        assert len(hits) == len(want) and set(triples(hits)) == want
        assert_no_orphans(s)
    finally:
        s.close()
