"""The embedded library store: one SQLite file (WAL mode).

Schema (``PRAGMA user_version`` = :data:`SCHEMA_VERSION`, ``application_id``
= :data:`APPLICATION_ID` so a foreign SQLite file is never written to):

* ``libraries``: integer ``id`` (used everywhere internally), unique ``name``,
  settings, ``created_at``, ``revision`` (bumped by every add and delete).
* ``leases``: the library writer lock across processes (owner token, expiry).
* ``files``: one row per file, UNIQUE(lib_id, primary_key), index on
  (lib_id, sha256, primary_key).  The large columns come last so listing files never reads
  them: ``fingerprint`` (``Fingerprint.to_bytes()``) and ``visual_terms`` /
  ``audio_terms``, the file's distinct posting keys as little-endian uint32,
  which is how its postings are found again on delete without a second index
  on ``file_id``.
* ``visual_index`` / ``audio_index`` (version 4): packed per-term postings,
  one ``WITHOUT ROWID`` row per (lib_id, key) whose ``postings`` BLOB holds
  every posting of that term as 8 bytes, file id (``<u4``) then time in
  seconds (``<f4``), in no set order (the DynamoDB adapter's layout).  A
  lookup reads one row per key; an add or delete rewrites the rows of the
  file's terms.  Versions 1-3 kept one row per posting in ``visual_postings``
  / ``audio_postings`` (lib_id, key, file_id, t); opening such a database
  packs them (:func:`_pack_postings_v4`, in the opening transaction; the file
  keeps its page size, see :data:`PAGE_SIZE`, and its size until ``VACUUM``).
* ``jobs`` (version 3): job records (see ``put_job``), indexed by
  (library, created_at) and created_at for ``list_jobs``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..arrays import distinct
from ..errors import (
    FILE_EXISTS,
    FILE_NOT_FOUND,
    INTERNAL,
    INVALID_ARGUMENT,
    LIBRARY_EXISTS,
    LIBRARY_NOT_FOUND,
    LibraryError,
)
from ..fingerprint import Fingerprint
from .import_records import SQLiteImportRecords
from .base import (
    DEFAULT_MIN_SEGMENT_SECONDS,
    DEFAULT_THRESHOLD,
    FilePage,
    FileRecord,
    Hits,
    Library,
    LibraryLocks,
    Postings,
    JOB_FIELDS,
    JobPage,
    build_hits,
    decode_cursor,
    encode_cursor,
    lookup_keys,
    validate_budget,
    within_budget,
    normalize_postings,
    stored_record,
    utc_now,
    validate_library_name,
    validate_library_settings,
    validate_limit,
    validate_primary_key,
    validate_record,
    encode_job_cursor,
    job_filters,
    job_record,
    validate_job_id,
)

SCHEMA_VERSION = 4
APPLICATION_ID = 0x4D444E41  # "MDNA"
#: Keys per ``IN (...)`` list; below SQLite's oldest variable limit (999).
CHUNK = 900
#: One posting in a term's BLOB: file id, then time in seconds (little-endian).
_POSTING = np.dtype([("no", "<u4"), ("t", "<f4")])
_UINT32_MAX = 2**32 - 1
#: Page size of new database files: a term row of up to ~4 KB (~500 postings)
#: fits in its leaf page (with 4 KB pages any row over ~1 KB spills to overflow
#: pages): lookups read ~2x fewer pages and the file is ~40 % smaller.
PAGE_SIZE = 16384
#: Bytes of the file read through a memory map (fewer copies and system calls
#: on lookups).  SQLite caps it at its build's SQLITE_MAX_MMAP_SIZE (2 GiB in
#: standard builds); mapping that much rather than 1 GiB took a 1,000-hour
#: library's 2,441 term seeks from 31 to 17 ms.
MMAP_SIZE = 1 << 40
#: Page cache per connection (KiB; filled only as pages are used).  A large
#: library's index is many GiB, beyond any memory map (SQLite caps it at
#: 2 GiB), so a lookup's B-tree descents go through this cache: 64 MiB keeps
#: the interior pages of a 1,000-hour library resident, and a 60 s query's
#: ~2,500 term seeks take ~40 % less time than with SQLite's 2 MiB default.
CACHE_KIB = 65536
#: Old posting rows read per block by the version 3 -> 4 migration.
MIGRATION_BLOCK = 1 << 20

_LEASES = """CREATE TABLE leases (
        lib_id INTEGER PRIMARY KEY,
        owner TEXT NOT NULL,
        expires REAL NOT NULL
    )"""
_JOBS = [
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
_INDEX = {"visual": "visual_index", "audio": "audio_index"}
#: Packed per-term postings (version 4): one row per (library, key).
_INDEX_TABLES = [
    f"""CREATE TABLE {table} (
        lib_id INTEGER NOT NULL,
        key INTEGER NOT NULL,
        postings BLOB NOT NULL,
        PRIMARY KEY (lib_id, key)
    ) WITHOUT ROWID"""
    for table in _INDEX.values()
]
_SCHEMA = [
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
    *_INDEX_TABLES,
    _LEASES,
    *_JOBS,
]
_RECORD_COLUMNS = (
    "primary_key, duration, sha256, media_type, has_video, has_audio, fingerprint_version, created_at, metadata"
)


def _record(row: Sequence) -> FileRecord:
    return stored_record(
        FileRecord(
            primary_key=row[0],
            duration=row[1],
            sha256=row[2],
            media_type=row[3],
            has_video=row[4],
            has_audio=row[5],
            fingerprint_version=row[6],
        ),
        metadata_json=row[8],
        created_at=row[7],
    )


def _chunks(values: list) -> Iterator[list]:
    """``values`` in lists of exactly :data:`CHUNK` (the last padded by
    repeating its final value), so every query reuses one prepared statement."""
    size = CHUNK
    for start in range(0, len(values), size):
        chunk = values[start : start + size]
        yield chunk + [chunk[-1]] * (size - len(chunk))


_MARKS = ", ".join("?" * CHUNK)


def _read_terms(conn: sqlite3.Connection, table: str, lib_id: int, keys: list[int]) -> list[tuple[int, bytes]]:
    """The stored ``(key, postings)`` rows of ``keys`` (distinct; keys not stored are absent)."""
    sql = f"SELECT key, postings FROM {table} WHERE lib_id = ? AND key IN ({_MARKS})"
    rows: list[tuple[int, bytes]] = []
    for chunk in _chunks(keys):
        rows += conn.execute(sql, [lib_id, *chunk]).fetchall()
    return rows


def _unpack(blobs: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """``(counts, postings)``: each blob's posting count and all postings, concatenated."""
    sizes = np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs))
    if (sizes % _POSTING.itemsize).any():
        raise LibraryError(INTERNAL, "library database error: a postings row is corrupt")
    return sizes // _POSTING.itemsize, np.frombuffer(b"".join(blobs), _POSTING)


def _pack(file_ids: np.ndarray | int, times: np.ndarray) -> bytes:
    arr = np.empty(len(times), _POSTING)
    arr["no"] = file_ids
    arr["t"] = times
    return arr.tobytes()


def _bounds(counts: np.ndarray) -> list[int]:
    """Byte offsets of consecutive runs of ``counts`` postings (one more than runs)."""
    return (np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]) * _POSTING.itemsize).tolist()


def _add_to_terms(
    conn: sqlite3.Connection, table: str, lib_id: int, file_id: int, keys: np.ndarray, times: np.ndarray
) -> None:
    """Append one file's postings to the rows of their terms (created when new)."""
    if not len(keys):
        return
    if (keys[1:] < keys[:-1]).any():
        order = np.argsort(keys, kind="stable")
        keys, times = keys[order], times[order]
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    terms = keys[starts].tolist()
    raw = _pack(file_id, times)
    offsets = _bounds(np.diff(np.append(starts, len(keys))))
    stored = dict(_read_terms(conn, table, lib_id, terms))
    conn.executemany(
        f"INSERT OR REPLACE INTO {table} (lib_id, key, postings) VALUES (?, ?, ?)",
        [(lib_id, key, stored.get(key, b"") + raw[a:b]) for key, a, b in zip(terms, offsets[:-1], offsets[1:])],
    )


def _remove_from_terms(conn: sqlite3.Connection, table: str, lib_id: int, file_id: int, terms: bytes) -> None:
    """Drop one file's postings from the rows of ``terms`` (its distinct keys); rows left empty go."""
    rows = _read_terms(conn, table, lib_id, np.frombuffer(terms, dtype="<u4").tolist())
    if not rows:
        return
    keys, blobs = zip(*rows)
    counts, postings = _unpack(blobs)
    keep = postings["no"] != file_id
    left = np.bincount(np.repeat(np.arange(len(keys)), counts)[keep], minlength=len(keys))
    data = postings[keep].tobytes()
    offsets = _bounds(left)
    updates, deletes = [], []
    for i, (key, before, after) in enumerate(zip(keys, counts.tolist(), left.tolist())):
        if after == before:
            continue
        if after:
            updates.append((data[offsets[i] : offsets[i + 1]], lib_id, key))
        else:
            deletes.append((lib_id, key))
    conn.executemany(f"UPDATE {table} SET postings = ? WHERE lib_id = ? AND key = ?", updates)
    conn.executemany(f"DELETE FROM {table} WHERE lib_id = ? AND key = ?", deletes)


#: A version 3 posting row as the migration reads it: (lib_id << 32 | key, file id, time).
_OLD_ROW = np.dtype([("term", "<i8"), ("no", "<i8"), ("t", "<f8")])


def _insert_packed(conn: sqlite3.Connection, table: str, block: np.ndarray) -> None:
    """Insert whole terms of old posting rows (sorted by term, file, time) as packed rows."""
    if not len(block):
        return
    term, no, t = block["term"], block["no"], block["t"].astype(np.float32)
    if int(no.min()) < 0 or int(no.max()) > _UINT32_MAX:
        raise LibraryError(INTERNAL, "library database error: a file id does not fit 32 bits")
    new_term = np.concatenate([[True], term[1:] != term[:-1]])
    # the old primary key made (file, time) unique per term; times are stored as float32 now
    keep = new_term | np.concatenate([[True], (no[1:] != no[:-1]) | (t[1:] != t[:-1])])
    term, no, t, new_term = term[keep], no[keep], t[keep], new_term[keep]
    starts = np.flatnonzero(new_term)
    raw = _pack(no, t)
    offsets = _bounds(np.diff(np.append(starts, len(term))))
    heads = term[starts]
    conn.executemany(
        f"INSERT INTO {table} (lib_id, key, postings) VALUES (?, ?, ?)",
        [
            (lib_id, key, raw[a:b])
            for lib_id, key, a, b in zip(
                (heads >> 32).tolist(), (heads & _UINT32_MAX).tolist(), offsets[:-1], offsets[1:]
            )
        ],
    )


def _pack_postings_v4(conn: sqlite3.Connection) -> None:
    """Version 3 -> 4: one row per posting becomes one packed row per term.

    Streams the old rows in key order, ``MIGRATION_BLOCK`` at a time (a term
    cut by a block boundary is carried into the next), then drops the old
    tables.  Runs in the caller's transaction: all or nothing.
    """
    for statement in _INDEX_TABLES:
        conn.execute(statement)
    for kind, table in _INDEX.items():
        old = f"{kind}_postings"
        cur = conn.execute(
            f"SELECT lib_id * 4294967296 + key, file_id, t FROM {old} ORDER BY lib_id, key, file_id, t"
        )
        carry = np.zeros(0, _OLD_ROW)
        while True:
            rows = cur.fetchmany(MIGRATION_BLOCK)
            block = np.fromiter(rows, dtype=_OLD_ROW, count=len(rows))
            if len(carry):
                block = np.concatenate([carry, block])
            if not rows:
                _insert_packed(conn, table, block)
                break
            cut = int(np.searchsorted(block["term"], block["term"][-1], side="left"))
            carry = block[cut:]
            _insert_packed(conn, table, block[:cut])
        cur.close()
        conn.execute(f"DROP TABLE {old}")


#: version -> what brings a database from that version to the next: SQL
#: statements, or a function run on the connection (same transaction).
_MIGRATIONS: dict[int, list[str] | Callable[[sqlite3.Connection], None]] = {
    1: ["ALTER TABLE libraries ADD COLUMN revision INTEGER NOT NULL DEFAULT 0", _LEASES],
    2: _JOBS,
    3: _pack_postings_v4,
}


class SQLiteStore(SQLiteImportRecords, LibraryLocks):
    """:class:`~mediadna.store.base.LibraryStore` on one SQLite database file.

    One connection per store, shared across threads under a lock; other
    processes may use the same file concurrently (WAL, ``busy_timeout``).
    """

    def __init__(self, path: str | os.PathLike, *, timeout: float = 30.0):
        self.path = os.fspath(path)
        self._init_locks()
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise LibraryError(INVALID_ARGUMENT, f"cannot open library database {self.path}: {exc}") from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # takes effect only on a new, empty file
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            conn.execute(f"PRAGMA mmap_size = {MMAP_SIZE}")
            conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise LibraryError(INVALID_ARGUMENT, f"{self.path} is not a mediadna library database: {exc}") from None
        self._conn = conn
        try:
            self._init_schema()
        except BaseException:
            self.close()
            raise

    # -- plumbing ------------------------------------------------------------
    @contextmanager
    def _tx(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction (IMMEDIATE when writing); SQLite errors become INTERNAL."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise LibraryError(INTERNAL, "the library store is closed")
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield conn
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise LibraryError(INTERNAL, f"library database error: {exc}") from exc

    def _init_schema(self) -> None:
        with self._tx(write=True) as conn:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if app_id == 0 and version == 0:
                if conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]:
                    raise LibraryError(INVALID_ARGUMENT, f"{self.path} is not a mediadna library database")
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif app_id != APPLICATION_ID:
                raise LibraryError(INVALID_ARGUMENT, f"{self.path} is not a mediadna library database")
            elif version > SCHEMA_VERSION:
                raise LibraryError(
                    INVALID_ARGUMENT,
                    f"{self.path} has library schema version {version}; this mediadna reads up to "
                    f"{SCHEMA_VERSION}: upgrade mediadna",
                )
            else:
                while version < SCHEMA_VERSION:
                    step = _MIGRATIONS[version]
                    if callable(step):
                        step(conn)
                    else:
                        for statement in step:
                            conn.execute(statement)
                    version += 1
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @staticmethod
    def _lib_id(conn: sqlite3.Connection, name: str) -> int:
        row = conn.execute("SELECT id FROM libraries WHERE name = ?", (validate_library_name(name),)).fetchone()
        if row is None:
            raise LibraryError(LIBRARY_NOT_FOUND, f"library {name!r} does not exist")
        return row[0]

    @staticmethod
    def _delete_file_rows(conn: sqlite3.Connection, lib_id: int, file_id: int, visual: bytes, audio: bytes) -> None:
        for table, terms in ((_INDEX["visual"], visual), (_INDEX["audio"], audio)):
            _remove_from_terms(conn, table, lib_id, file_id, terms)
        conn.execute("DELETE FROM files WHERE id = ?", (file_id,))
        conn.execute("UPDATE libraries SET revision = revision + 1 WHERE id = ?", (lib_id,))

    # -- libraries -----------------------------------------------------------
    def create_library(
        self, name: str, threshold: float = DEFAULT_THRESHOLD, min_segment_seconds: float = DEFAULT_MIN_SEGMENT_SECONDS
    ) -> Library:
        validate_library_name(name)
        threshold, min_segment_seconds = validate_library_settings(threshold, min_segment_seconds)
        created = utc_now()
        with self._tx(write=True) as conn:
            try:
                conn.execute(
                    "INSERT INTO libraries (name, threshold, min_segment_seconds, created_at) VALUES (?, ?, ?, ?)",
                    (name, threshold, min_segment_seconds, created),
                )
            except sqlite3.IntegrityError:
                raise LibraryError(LIBRARY_EXISTS, f"library {name!r} already exists") from None
        return Library(name, threshold, min_segment_seconds, created, 0)

    _LIBRARY_QUERY = (
        "SELECT name, threshold, min_segment_seconds, created_at,"
        " (SELECT COUNT(*) FROM files f WHERE f.lib_id = l.id) FROM libraries l"
    )

    def get_library(self, name: str) -> Library:
        validate_library_name(name)
        with self._tx() as conn:
            row = conn.execute(self._LIBRARY_QUERY + " WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise LibraryError(LIBRARY_NOT_FOUND, f"library {name!r} does not exist")
        return Library(*row)

    def list_libraries(self) -> list[Library]:
        with self._tx() as conn:
            rows = conn.execute(self._LIBRARY_QUERY + " ORDER BY name").fetchall()
        return [Library(*row) for row in rows]

    def delete_library(self, name: str) -> None:
        with self._tx(write=True) as conn:
            lib_id = self._lib_id(conn, name)
            for table in _INDEX.values():
                conn.execute(f"DELETE FROM {table} WHERE lib_id = ?", (lib_id,))
            conn.execute("DELETE FROM files WHERE lib_id = ?", (lib_id,))
            conn.execute("DELETE FROM leases WHERE lib_id = ?", (lib_id,))
            conn.execute("DELETE FROM libraries WHERE id = ?", (lib_id,))

    # -- files ---------------------------------------------------------------
    def add_file(
        self, library: str, record: FileRecord, fingerprint: Fingerprint, postings: Postings, replace: bool = False
    ) -> None:
        """Store record, fingerprint and postings in one transaction."""
        validate_library_name(library)
        metadata = validate_record(record)
        if not isinstance(fingerprint, Fingerprint):
            raise LibraryError(INVALID_ARGUMENT, "fingerprint must be a Fingerprint")
        if not isinstance(postings, Postings):
            raise LibraryError(INVALID_ARGUMENT, "postings must be Postings")
        tracks = {
            "visual": normalize_postings(postings.visual_keys, postings.visual_times, "visual"),
            "audio": normalize_postings(postings.audio_keys, postings.audio_times, "audio"),
        }
        terms = {kind: np.unique(keys).astype("<u4").tobytes() for kind, (keys, _) in tracks.items()}
        blob = fingerprint.to_bytes()
        pk = record.primary_key
        with self._tx(write=True) as conn:
            lib_id = self._lib_id(conn, library)
            old = conn.execute(
                "SELECT id, visual_terms, audio_terms FROM files WHERE lib_id = ? AND primary_key = ?", (lib_id, pk)
            ).fetchone()
            if old is not None:
                if not replace:
                    raise LibraryError(FILE_EXISTS, f"file {pk!r} already exists in library {library!r}")
                self._delete_file_rows(conn, lib_id, *old)
            cur = conn.execute(
                f"INSERT INTO files (lib_id, {_RECORD_COLUMNS}, fingerprint, visual_terms, audio_terms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    lib_id,
                    pk,
                    float(record.duration),
                    record.sha256,
                    record.media_type,
                    int(bool(record.has_video)),
                    int(bool(record.has_audio)),
                    int(record.fingerprint_version),
                    record.created_at or utc_now(),
                    metadata,
                    blob,
                    terms["visual"],
                    terms["audio"],
                ),
            )
            file_id = cur.lastrowid
            if not 0 <= file_id <= _UINT32_MAX:  # postings store file ids as uint32
                raise LibraryError(INTERNAL, f"library database error: file id {file_id} does not fit 32 bits")
            conn.execute("UPDATE libraries SET revision = revision + 1 WHERE id = ?", (lib_id,))
            for kind, (keys, times) in tracks.items():  # visual first: the contract tests break audio writes
                _add_to_terms(conn, _INDEX[kind], lib_id, file_id, keys, times)

    def get_file(self, library: str, primary_key: str) -> FileRecord:
        validate_primary_key(primary_key)
        with self._tx() as conn:
            lib_id = self._lib_id(conn, library)
            row = conn.execute(
                f"SELECT {_RECORD_COLUMNS} FROM files WHERE lib_id = ? AND primary_key = ?", (lib_id, primary_key)
            ).fetchone()
        if row is None:
            raise LibraryError(FILE_NOT_FOUND, f"file {primary_key!r} not found in library {library!r}")
        return _record(row)

    def list_files(self, library: str, limit: int = 100, cursor: str | None = None) -> FilePage:
        limit = validate_limit(limit)
        after = decode_cursor(cursor)
        with self._tx() as conn:
            lib_id = self._lib_id(conn, library)
            if after is None:
                rows = conn.execute(
                    f"SELECT {_RECORD_COLUMNS} FROM files WHERE lib_id = ? ORDER BY primary_key LIMIT ?",
                    (lib_id, limit + 1),
                ).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {_RECORD_COLUMNS} FROM files WHERE lib_id = ? AND primary_key > ?"
                    " ORDER BY primary_key LIMIT ?",
                    (lib_id, after, limit + 1),
                ).fetchall()
        items = [_record(row) for row in rows[:limit]]
        return FilePage(items, encode_cursor(items[-1].primary_key) if len(rows) > limit else None)

    def delete_file(self, library: str, primary_key: str) -> None:
        validate_primary_key(primary_key)
        with self._tx(write=True) as conn:
            lib_id = self._lib_id(conn, library)
            row = conn.execute(
                "SELECT id, visual_terms, audio_terms FROM files WHERE lib_id = ? AND primary_key = ?",
                (lib_id, primary_key),
            ).fetchone()
            if row is None:
                raise LibraryError(FILE_NOT_FOUND, f"file {primary_key!r} not found in library {library!r}")
            self._delete_file_rows(conn, lib_id, *row)

    def files_by_sha256(self, library: str, sha256: str) -> list[FileRecord]:
        if not isinstance(sha256, str):
            raise LibraryError(INVALID_ARGUMENT, "sha256 must be a string")
        with self._tx() as conn:
            lib_id = self._lib_id(conn, library)
            rows = conn.execute(
                f"SELECT {_RECORD_COLUMNS} FROM files WHERE lib_id = ? AND sha256 = ? ORDER BY primary_key",
                (lib_id, sha256),
            ).fetchall()
        return [_record(row) for row in rows]

    def load_fingerprint(self, library: str, primary_key: str) -> Fingerprint:
        validate_primary_key(primary_key)
        with self._tx() as conn:
            lib_id = self._lib_id(conn, library)
            row = conn.execute(
                "SELECT fingerprint FROM files WHERE lib_id = ? AND primary_key = ?", (lib_id, primary_key)
            ).fetchone()
        if row is None:
            raise LibraryError(FILE_NOT_FOUND, f"file {primary_key!r} not found in library {library!r}")
        return Fingerprint.from_bytes(row[0])

    def load_fingerprints(self, library: str, primary_keys: Sequence[str]) -> dict[str, Fingerprint]:
        wanted = [pk for pk in dict.fromkeys(primary_keys) if isinstance(pk, str)]
        rows: list[tuple] = []
        marks = ", ".join("?" * CHUNK)
        with self._tx() as conn:
            lib_id = self._lib_id(conn, library)
            for chunk in _chunks(wanted):
                rows += conn.execute(
                    f"SELECT primary_key, fingerprint FROM files WHERE lib_id = ? AND primary_key IN ({marks})",
                    [lib_id, *chunk],
                ).fetchall()
        return {pk: Fingerprint.from_bytes(blob) for pk, blob in dict(rows).items()}

    # -- inverted index --------------------------------------------------------
    def _lookup(self, kind: str, library: str, keys: np.ndarray, max_postings: int | None = None) -> Hits:
        max_postings = validate_budget(max_postings)
        wanted = lookup_keys(keys).tolist()
        with self._tx() as conn:
            lib_id = self._lib_id(conn, library)
            rows = _read_terms(conn, _INDEX[kind], lib_id, wanted)
            if not rows:
                return Hits.empty()
            if max_postings is not None:
                sizes = np.fromiter((len(b) for _, b in rows), np.int64, len(rows)) // _POSTING.itemsize
                keep = within_budget(np.fromiter((k for k, _ in rows), np.int64, len(rows)), sizes, max_postings)
                rows = [r for r, k in zip(rows, keep.tolist()) if k]
                if not rows:
                    return Hits.empty()
            found, blobs = zip(*rows)
            counts, postings = _unpack(blobs)
            file_ids = postings["no"].astype(np.int64)
            names: dict[int, str] = {}
            for chunk in _chunks(distinct(file_ids).tolist()):
                names.update(conn.execute(f"SELECT id, primary_key FROM files WHERE id IN ({_MARKS})", chunk))
        keys_out = np.repeat(np.array(found, dtype=np.uint32), counts)
        return build_hits(keys_out, file_ids, postings["t"], names)

    def lookup_visual(self, library: str, keys: np.ndarray, max_postings: int | None = None) -> Hits:
        return self._lookup("visual", library, keys, max_postings)

    def lookup_audio(self, library: str, keys: np.ndarray, max_postings: int | None = None) -> Hits:
        return self._lookup("audio", library, keys, max_postings)

    # -- writers -----------------------------------------------------------------
    def library_revision(self, library: str) -> int:
        with self._tx() as conn:
            lib_id = self._lib_id(conn, library)
            return conn.execute("SELECT revision FROM libraries WHERE id = ?", (lib_id,)).fetchone()[0]

    def _try_lease(self, library: str, token: str, seconds: float) -> bool:
        now = time.time()
        with self._tx(write=True) as conn:
            lib_id = self._lib_id(conn, library)
            row = conn.execute("SELECT owner, expires FROM leases WHERE lib_id = ?", (lib_id,)).fetchone()
            if row is not None and row[0] != token and row[1] > now:
                return False
            conn.execute(
                "INSERT OR REPLACE INTO leases (lib_id, owner, expires) VALUES (?, ?, ?)", (lib_id, token, now + seconds)
            )
            return True

    def _drop_lease(self, library: str, token: str) -> None:
        try:
            with self._tx(write=True) as conn:
                conn.execute(
                    "DELETE FROM leases WHERE owner = ? AND lib_id = (SELECT id FROM libraries WHERE name = ?)",
                    (token, library),
                )
        except LibraryError:  # closed store: the lease simply expires
            pass

    # -- jobs ------------------------------------------------------------------
    _JOB_COLUMNS = ", ".join(JOB_FIELDS)

    def put_job(self, job_id: str, state: str, *, kind: str | None = None, library: str | None = None,
                input_key: str | None = None, result_location: str | None = None, error_code: str | None = None,
                created_at: str | None = None) -> None:
        """Create or move a job record; ``created_at`` is kept from the first write."""
        validate_job_id(job_id)
        with self._tx(write=True) as conn:
            row = conn.execute(f"SELECT {self._JOB_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            rec = job_record(job_id, state, kind=kind, library=library, input_key=input_key,
                             result_location=result_location, error_code=error_code, created_at=created_at,
                             old=dict(zip(JOB_FIELDS, row)) if row else None)
            conn.execute(f"INSERT OR REPLACE INTO jobs ({self._JOB_COLUMNS}) VALUES ({', '.join('?' * len(JOB_FIELDS))})",
                         [rec[f] for f in JOB_FIELDS])

    def get_job(self, job_id: str) -> dict | None:
        validate_job_id(job_id)
        with self._tx() as conn:
            row = conn.execute(f"SELECT {self._JOB_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return dict(zip(JOB_FIELDS, row)) if row else None

    def list_jobs(self, library: str | None = None, state: str | None = None, since: str | None = None,
                  until: str | None = None, limit: int = 100, cursor: str | None = None) -> JobPage:
        """Newest first (ties: job id descending); ``since`` inclusive, ``until`` exclusive."""
        library, state, since, until, limit, after = job_filters(library, state, since, until, limit, cursor)
        where, args = [], []
        for clause, value in (("library = ?", library), ("state = ?", state), ("created_at >= ?", since),
                              ("created_at < ?", until)):
            if value is not None:
                where.append(clause)
                args.append(value)
        if after is not None:
            where.append("(created_at < ? OR (created_at = ? AND job_id < ?))")
            args += [after[0], after[0], after[1]]
        sql = f"SELECT {self._JOB_COLUMNS} FROM jobs" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY created_at DESC, job_id DESC LIMIT ?"
        with self._tx() as conn:
            rows = conn.execute(sql, [*args, limit + 1]).fetchall()
        items = [dict(zip(JOB_FIELDS, r)) for r in rows[:limit]]
        more = len(rows) > limit
        return JobPage(items, encode_job_cursor(items[-1]["created_at"], items[-1]["job_id"]) if more else None)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"
