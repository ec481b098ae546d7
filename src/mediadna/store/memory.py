"""In-process library store: plain dicts, gone when the process ends.

For unit tests and one-off compares.  It behaves exactly like
:class:`~mediadna.store.sqlite.SQLiteStore` (same validation, errors, paging,
postings deduplication and hit order): both use the helpers in
:mod:`mediadna.store.base`, and tests/unit/test_store_contract.py runs one
suite against both.

Each file is one immutable entry (record, fingerprint bytes, postings);
``add_file`` builds it completely and then installs it with a single dict
assignment, which is what makes it all-or-nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
import itertools
import threading
from dataclasses import dataclass, field

import numpy as np

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
from .import_records import MemoryImportRecords
from .base import (
    DEFAULT_MIN_SEGMENT_SECONDS,
    DEFAULT_THRESHOLD,
    FilePage,
    FileRecord,
    Hits,
    Library,
    LibraryLocks,
    Postings,
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
    job_record,
    page_jobs,
    validate_job_id,
)

_KINDS = ("visual", "audio")


@dataclass(frozen=True)
class _Entry:
    file_id: int
    record: FileRecord  # metadata left empty; the JSON below is the truth
    metadata_json: str
    fingerprint: bytes
    postings: dict[str, tuple[np.ndarray, np.ndarray]]  # kind -> (keys, times), sorted

    def public(self) -> FileRecord:
        return stored_record(self.record, self.metadata_json, self.record.created_at)


@dataclass
class _Library:
    info: Library
    files: dict[str, _Entry] = field(default_factory=dict)
    # kind -> (keys, file ids, times) over all files, sorted by key; rebuilt on demand.
    index: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    revision: int = 0


class MemoryStore(MemoryImportRecords, LibraryLocks):
    """:class:`~mediadna.store.base.LibraryStore` in memory (thread-safe)."""

    def __init__(self) -> None:
        self._init_locks()
        self._lock = threading.RLock()
        self._libraries: dict[str, _Library] | None = {}
        self._ids = itertools.count(1)
        self._jobs: dict[str, dict] = {}

    def _libs(self) -> dict[str, _Library]:
        if self._libraries is None:
            raise LibraryError(INTERNAL, "the library store is closed")
        return self._libraries

    def _lib(self, name: str) -> _Library:
        validate_library_name(name)
        lib = self._libs().get(name)
        if lib is None:
            raise LibraryError(LIBRARY_NOT_FOUND, f"library {name!r} does not exist")
        return lib

    def _entry(self, library: str, primary_key: str) -> _Entry:
        validate_primary_key(primary_key)
        entry = self._lib(library).files.get(primary_key)
        if entry is None:
            raise LibraryError(FILE_NOT_FOUND, f"file {primary_key!r} not found in library {library!r}")
        return entry

    @staticmethod
    def _info(lib: _Library) -> Library:
        i = lib.info
        return Library(i.name, i.threshold, i.min_segment_seconds, i.created_at, len(lib.files))

    # -- libraries -----------------------------------------------------------
    def create_library(
        self, name: str, threshold: float = DEFAULT_THRESHOLD, min_segment_seconds: float = DEFAULT_MIN_SEGMENT_SECONDS
    ) -> Library:
        validate_library_name(name)
        threshold, min_segment_seconds = validate_library_settings(threshold, min_segment_seconds)
        with self._lock:
            libs = self._libs()
            if name in libs:
                raise LibraryError(LIBRARY_EXISTS, f"library {name!r} already exists")
            lib = _Library(Library(name, threshold, min_segment_seconds, utc_now(), 0))
            libs[name] = lib
            return self._info(lib)

    def get_library(self, name: str) -> Library:
        with self._lock:
            return self._info(self._lib(name))

    def list_libraries(self) -> list[Library]:
        with self._lock:
            return [self._info(lib) for _, lib in sorted(self._libs().items())]

    def delete_library(self, name: str) -> None:
        with self._lock:
            self._lib(name)
            del self._libs()[name]

    # -- files ---------------------------------------------------------------
    def add_file(
        self, library: str, record: FileRecord, fingerprint: Fingerprint, postings: Postings, replace: bool = False
    ) -> None:
        """Store record, fingerprint and postings all or nothing."""
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
        blob = fingerprint.to_bytes()
        with self._lock:
            lib = self._lib(library)
            pk = record.primary_key
            if pk in lib.files and not replace:
                raise LibraryError(FILE_EXISTS, f"file {pk!r} already exists in library {library!r}")
            entry = self._build_entry(record, metadata, blob, tracks)
            lib.files[pk] = entry  # the commit: one assignment
            lib.index = {}
            lib.revision += 1

    def _build_entry(
        self, record: FileRecord, metadata: str, blob: bytes, tracks: dict[str, tuple[np.ndarray, np.ndarray]]
    ) -> _Entry:
        for keys, times in tracks.values():
            keys.flags.writeable = False
            times.flags.writeable = False
        plain = stored_record(record, "{}", record.created_at or utc_now())
        return _Entry(next(self._ids), plain, metadata, blob, tracks)

    def get_file(self, library: str, primary_key: str) -> FileRecord:
        with self._lock:
            return self._entry(library, primary_key).public()

    def list_files(self, library: str, limit: int = 100, cursor: str | None = None) -> FilePage:
        limit = validate_limit(limit)
        after = decode_cursor(cursor)
        with self._lock:
            lib = self._lib(library)
            keys = sorted(k for k in lib.files if after is None or k > after)
            items = [lib.files[k].public() for k in keys[:limit]]
        return FilePage(items, encode_cursor(items[-1].primary_key) if len(keys) > limit else None)

    def delete_file(self, library: str, primary_key: str) -> None:
        with self._lock:
            self._entry(library, primary_key)
            lib = self._lib(library)
            del lib.files[primary_key]
            lib.index = {}
            lib.revision += 1

    def files_by_sha256(self, library: str, sha256: str) -> list[FileRecord]:
        if not isinstance(sha256, str):
            raise LibraryError(INVALID_ARGUMENT, "sha256 must be a string")
        with self._lock:
            lib = self._lib(library)
            return [lib.files[k].public() for k in sorted(lib.files) if lib.files[k].record.sha256 == sha256]

    def load_fingerprint(self, library: str, primary_key: str) -> Fingerprint:
        with self._lock:
            blob = self._entry(library, primary_key).fingerprint
        return Fingerprint.from_bytes(blob)

    def load_fingerprints(self, library: str, primary_keys: Sequence[str]) -> dict[str, Fingerprint]:
        with self._lock:
            lib = self._lib(library)
            blobs = {pk: lib.files[pk].fingerprint for pk in dict.fromkeys(primary_keys) if pk in lib.files}
        return {pk: Fingerprint.from_bytes(b) for pk, b in blobs.items()}

    # -- inverted index --------------------------------------------------------
    def _merged(self, lib: _Library, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if kind not in lib.index:
            parts = [(e.postings[kind], e.file_id) for e in lib.files.values()]
            keys = np.concatenate([np.zeros(0, np.uint32)] + [p[0] for p, _ in parts])
            ids = np.concatenate([np.zeros(0, np.int64)] + [np.full(len(p[0]), i, np.int64) for p, i in parts])
            times = np.concatenate([np.zeros(0, np.float32)] + [p[1] for p, _ in parts])
            order = np.argsort(keys, kind="stable")
            lib.index[kind] = (keys[order], ids[order], times[order])
        return lib.index[kind]

    def _lookup(self, kind: str, library: str, keys: np.ndarray, max_postings: int | None = None) -> Hits:
        max_postings = validate_budget(max_postings)
        wanted = lookup_keys(keys)
        with self._lock:
            lib = self._lib(library)
            all_keys, ids, times = self._merged(lib, kind)
            names = {e.file_id: pk for pk, e in lib.files.items()}
        lo = np.searchsorted(all_keys, wanted, side="left")
        hi = np.searchsorted(all_keys, wanted, side="right")
        counts = hi - lo
        counts[~within_budget(wanted, counts, max_postings)] = 0
        if counts.sum() == 0:
            return Hits.empty()
        # indices lo[i] .. hi[i]-1 for every wanted key, concatenated
        starts = np.repeat(lo - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        idx = starts + np.arange(counts.sum())
        return build_hits(all_keys[idx], ids[idx], times[idx], names)

    def lookup_visual(self, library: str, keys: np.ndarray, max_postings: int | None = None) -> Hits:
        return self._lookup("visual", library, keys, max_postings)

    def lookup_audio(self, library: str, keys: np.ndarray, max_postings: int | None = None) -> Hits:
        return self._lookup("audio", library, keys, max_postings)

    # -- writers ---------------------------------------------------------------
    def library_revision(self, library: str) -> int:
        with self._lock:
            return self._lib(library).revision

    def _try_lease(self, library: str, token: str, seconds: float) -> bool:
        with self._lock:
            self._lib(library)  # one process: the thread lock already excludes other writers
        return True

    def _drop_lease(self, library: str, token: str) -> None:
        return None

    # -- jobs ------------------------------------------------------------------
    def put_job(self, job_id: str, state: str, *, kind: str | None = None, library: str | None = None,
                input_key: str | None = None, result_location: str | None = None, error_code: str | None = None,
                created_at: str | None = None) -> None:
        """Create or move a job record; ``created_at`` is kept from the first write."""
        with self._lock:
            self._libs()
            self._jobs[job_id] = job_record(job_id, state, kind=kind, library=library, input_key=input_key,
                                            result_location=result_location, error_code=error_code,
                                            created_at=created_at, old=self._jobs.get(job_id))

    def get_job(self, job_id: str) -> dict | None:
        validate_job_id(job_id)
        with self._lock:
            self._libs()
            rec = self._jobs.get(job_id)
            return dict(rec) if rec else None

    def list_jobs(self, library: str | None = None, state: str | None = None, since: str | None = None,
                  until: str | None = None, limit: int = 100, cursor: str | None = None) -> JobPage:
        with self._lock:
            self._libs()
            records = list(self._jobs.values())
        return page_jobs(records, library, state, since, until, limit, cursor)

    def close(self) -> None:
        with self._lock:
            self._libraries = None

    def __repr__(self) -> str:
        return "MemoryStore()"
