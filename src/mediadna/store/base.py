"""The library store port.

The domain talks to a fingerprint library only through :class:`LibraryStore`.
Adapters: :mod:`mediadna.store.sqlite` (embedded default) and
:mod:`mediadna.store.memory` (in-process, for tests and one-off compares).
The domain decides *what* is indexed (see :mod:`mediadna.index`); adapters
only keep and return postings.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import random
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol, runtime_checkable

import numpy as np

from ..arrays import distinct
from ..errors import INVALID_ARGUMENT, LibraryBusyError, LibraryError
from ..fingerprint import Fingerprint

#: Default similarity at or above which a match counts as a duplicate.
#: 0.5: half-way on the calibrated evidence scale; see mediadna.match.
DEFAULT_THRESHOLD = 0.5
#: Default shortest copied segment reported, in seconds (shorter runs are noise).
DEFAULT_MIN_SEGMENT_SECONDS = 3.0

LIBRARY_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_KEY_LENGTH = 1024


def validate_library_name(name: str) -> str:
    # fullmatch: ``$`` alone would accept a trailing newline ("lib\n").
    if not isinstance(name, str) or not LIBRARY_NAME_RE.fullmatch(name):
        raise LibraryError(
            INVALID_ARGUMENT,
            f"invalid library name {name!r}: 1-64 characters of letters, digits, '_', '.', '-', starting with a letter or digit",
        )
    return name


def validate_primary_key(key: str) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise LibraryError(INVALID_ARGUMENT, f"invalid primary key: must be 1-{MAX_KEY_LENGTH} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise LibraryError(INVALID_ARGUMENT, "invalid primary key: control characters are not allowed")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: not storable, not comparable across stores
        raise LibraryError(INVALID_ARGUMENT, "invalid primary key: not valid Unicode") from None
    return key


@dataclass(frozen=True)
class Library:
    name: str
    threshold: float = DEFAULT_THRESHOLD
    min_segment_seconds: float = DEFAULT_MIN_SEGMENT_SECONDS
    created_at: str = ""
    file_count: int = 0

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "threshold": self.threshold,
            "min_segment_seconds": self.min_segment_seconds,
            "created_at": self.created_at,
            "file_count": self.file_count,
        }


@dataclass(frozen=True)
class FileRecord:
    primary_key: str
    duration: float
    sha256: str
    media_type: str  # video | audio | image
    has_video: bool
    has_audio: bool
    fingerprint_version: int
    created_at: str = ""
    metadata: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "primary_key": self.primary_key,
            "duration": self.duration,
            "sha256": self.sha256,
            "media_type": self.media_type,
            "has_video": self.has_video,
            "has_audio": self.has_audio,
            "fingerprint_version": self.fingerprint_version,
            "created_at": self.created_at,
            "metadata": self.metadata,
        }


@dataclass
class FilePage:
    items: list[FileRecord]
    next_cursor: str | None  # pass back to list_files to get the next page


@dataclass
class Postings:
    """The inverted-index terms one file contributes (made by mediadna.index)."""

    visual_keys: np.ndarray  # uint32 term keys
    visual_times: np.ndarray  # float32 seconds in the file
    audio_keys: np.ndarray  # uint32 landmark hashes
    audio_times: np.ndarray  # float32 seconds in the file

    def __post_init__(self) -> None:
        self.visual_keys = np.asarray(self.visual_keys, dtype=np.uint32)
        self.visual_times = np.asarray(self.visual_times, dtype=np.float32)
        self.audio_keys = np.asarray(self.audio_keys, dtype=np.uint32)
        self.audio_times = np.asarray(self.audio_times, dtype=np.float32)


@dataclass
class Hits:
    """Postings found for a set of looked-up keys: parallel arrays, in no set order.

    A posting's file is ``names[codes[i]]``: files are coded as small integers
    so a matcher can vote over hundreds of thousands of hits without touching
    strings (``files`` spells them out, for callers that want them).
    """

    keys: np.ndarray  # uint32
    codes: np.ndarray  # int64 index into names
    times: np.ndarray  # float32 seconds in the reference
    names: np.ndarray  # object array: the primary key of each code

    @classmethod
    def empty(cls) -> "Hits":
        return cls(np.zeros(0, np.uint32), np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, dtype=object))

    @property
    def files(self) -> np.ndarray:
        """Object array: the primary key of each posting."""
        return self.names[self.codes] if len(self.codes) else np.zeros(0, dtype=object)

    def __len__(self) -> int:
        return len(self.keys)


@runtime_checkable
class LibraryStore(Protocol):
    """What the domain needs from a fingerprint library."""

    # libraries
    def create_library(
        self, name: str, threshold: float = DEFAULT_THRESHOLD, min_segment_seconds: float = DEFAULT_MIN_SEGMENT_SECONDS
    ) -> Library: ...
    def get_library(self, name: str) -> Library: ...
    def list_libraries(self) -> list[Library]: ...
    def delete_library(self, name: str) -> None: ...

    # files
    def add_file(
        self, library: str, record: FileRecord, fingerprint: Fingerprint, postings: Postings, replace: bool = False
    ) -> None:
        """Store record, fingerprint and postings atomically (all or nothing).

        Raises ``LibraryError(FILE_EXISTS)`` when the key exists and not ``replace``;
        with ``replace`` the old file's postings are removed in the same transaction.
        """
        ...

    def get_file(self, library: str, primary_key: str) -> FileRecord: ...
    def list_files(self, library: str, limit: int = 100, cursor: str | None = None) -> FilePage: ...
    def delete_file(self, library: str, primary_key: str) -> None: ...
    def files_by_sha256(self, library: str, sha256: str) -> list[FileRecord]: ...
    def load_fingerprint(self, library: str, primary_key: str) -> Fingerprint: ...
    def load_fingerprints(self, library: str, primary_keys: Sequence[str]) -> dict[str, Fingerprint]:
        """The stored fingerprints of several files at once (batched where the backend can);
        keys not in the library are left out of the answer."""
        ...

    # inverted index
    def lookup_visual(self, library: str, keys: np.ndarray, max_postings: int | None = None) -> Hits:
        """Every posting of ``keys``; with ``max_postings``, only the keys
        :func:`within_budget` picks (the rarest, whole, up to that many postings)."""
        ...

    def lookup_audio(self, library: str, keys: np.ndarray, max_postings: int | None = None) -> Hits:
        """Like :meth:`lookup_visual`, for landmark keys."""
        ...

    # writers
    def library_lock(self, library: str) -> AbstractContextManager[None]:
        """The library's writer lock: reentrant in one thread, exclusive across
        threads and processes (a lease that expires if its holder dies).

        Used by save-if-unique: match again if the library changed, then commit.
        """
        ...

    def library_revision(self, library: str) -> int:
        """A counter that changes whenever a file is added to or removed from the library."""
        ...

    def close(self) -> None: ...


# -- the writer lock -------------------------------------------------------------
#: A writer's lease on a library lasts this long unless renewed; a crashed
#: writer blocks others for at most this long.
LEASE_SECONDS = 120.0
#: How long a writer waits for another writer's lease before giving up
#: (``library_busy``); long enough for a long ingest to finish.
LOCK_WAIT_SECONDS = 900.0


class LibraryLocks:
    """Mixin: :meth:`library_lock` from an adapter's lease primitives.

    In one process a per-library ``RLock`` orders threads; across processes
    the adapter's lease (``_try_lease`` / ``_drop_lease``) does.  Re-entering
    the lock in the thread that holds it is free.  Waiting backs off
    exponentially with jitter.
    """

    lease_seconds: float = LEASE_SECONDS
    lock_wait_seconds: float = LOCK_WAIT_SECONDS

    def _init_locks(self) -> None:
        self._locks_guard = threading.Lock()
        self._thread_locks: dict[str, threading.RLock] = {}
        self._leases: dict[str, list] = {}  # library -> [token, depth, acquired monotonic]

    # adapters implement these three
    def _try_lease(self, library: str, token: str, seconds: float) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def _drop_lease(self, library: str, token: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _on_lease(self, library: str, token: str) -> None:
        """Called once the lease is taken (e.g. to finish a crashed writer's work)."""

    def _lease_token(self, library: str) -> str | None:
        held = self._leases.get(library)
        return held[0] if held else None

    @contextmanager
    def library_lock(self, library: str) -> Iterator[None]:
        validate_library_name(library)
        with self._locks_guard:
            tlock = self._thread_locks.setdefault(library, threading.RLock())
        with tlock:
            held = self._leases.get(library)
            if held is not None:  # re-entered by the holding thread
                held[1] += 1
                try:
                    yield
                finally:
                    held[1] -= 1
                return
            token = uuid.uuid4().hex
            deadline = time.monotonic() + self.lock_wait_seconds
            delay = 0.01
            while not self._try_lease(library, token, self.lease_seconds):
                if time.monotonic() > deadline:
                    raise LibraryBusyError(f"library {library!r} is locked by another writer; try again later")
                time.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 1.0)
            self._leases[library] = [token, 1, time.monotonic()]
            try:
                self._on_lease(library, token)
                yield
            finally:
                self._leases.pop(library, None)
                self._drop_lease(library, token)


# -- helpers shared by the adapters -------------------------------------------
# Every adapter uses these so that all stores validate, page, deduplicate and
# order exactly alike (the contract suite in tests/unit checks it).

#: Largest ``limit`` accepted by ``list_files``.
MAX_PAGE_SIZE = 1000
_CURSOR_PREFIX = "c1."
_UINT32_MAX = 2**32 - 1


def utc_now() -> str:
    """Now as ISO-8601 UTC with milliseconds, e.g. ``2026-01-02T03:04:05.678Z``."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _finite(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise LibraryError(INVALID_ARGUMENT, f"{what} must be a number")
    out = float(value)
    if not math.isfinite(out):
        raise LibraryError(INVALID_ARGUMENT, f"{what} must be finite")
    return out


def validate_library_settings(threshold: object, min_segment_seconds: object) -> tuple[float, float]:
    """Check a library's settings; returns them as floats."""
    t = _finite(threshold, "threshold")
    m = _finite(min_segment_seconds, "min_segment_seconds")
    if not 0.0 <= t <= 1.0:
        raise LibraryError(INVALID_ARGUMENT, f"threshold must be between 0 and 1, got {t}")
    if m < 0.0:
        raise LibraryError(INVALID_ARGUMENT, f"min_segment_seconds must be >= 0, got {m}")
    return t, m


def validate_record(record: object) -> str:
    """Check a :class:`FileRecord` before storing it; returns its metadata as JSON."""
    if not isinstance(record, FileRecord):
        raise LibraryError(INVALID_ARGUMENT, "record must be a FileRecord")
    validate_primary_key(record.primary_key)
    if _finite(record.duration, "duration") < 0:
        raise LibraryError(INVALID_ARGUMENT, "duration must be >= 0")
    for what in ("sha256", "media_type", "created_at"):
        if not isinstance(getattr(record, what), str):
            raise LibraryError(INVALID_ARGUMENT, f"{what} must be a string")
    if isinstance(record.fingerprint_version, bool) or not isinstance(record.fingerprint_version, (int, np.integer)):
        raise LibraryError(INVALID_ARGUMENT, "fingerprint_version must be an integer")
    if not isinstance(record.metadata, dict):
        raise LibraryError(INVALID_ARGUMENT, "metadata must be a dict")
    try:
        return json.dumps(record.metadata, sort_keys=True, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise LibraryError(INVALID_ARGUMENT, f"metadata is not JSON-serialisable: {exc}") from None


def stored_record(record: FileRecord, metadata_json: str, created_at: str) -> FileRecord:
    """The record as a store returns it: plain types, fresh metadata, its timestamp."""
    return FileRecord(
        primary_key=record.primary_key,
        duration=float(record.duration),
        sha256=record.sha256,
        media_type=record.media_type,
        has_video=bool(record.has_video),
        has_audio=bool(record.has_audio),
        fingerprint_version=int(record.fingerprint_version),
        created_at=created_at,
        metadata=json.loads(metadata_json),
    )


def encode_cursor(last_key: str) -> str:
    """Opaque ``list_files`` cursor: the page resumes after ``last_key``."""
    return _CURSOR_PREFIX + base64.urlsafe_b64encode(last_key.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    """The primary key a cursor resumes after (None: from the start)."""
    if cursor is None:
        return None
    if not isinstance(cursor, str) or not cursor.startswith(_CURSOR_PREFIX):
        raise LibraryError(INVALID_ARGUMENT, "invalid cursor")
    body = cursor[len(_CURSOR_PREFIX) :]
    try:
        key = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8")
        return validate_primary_key(key)
    except (binascii.Error, ValueError, LibraryError):
        raise LibraryError(INVALID_ARGUMENT, "invalid cursor") from None


def validate_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise LibraryError(INVALID_ARGUMENT, f"limit must be an integer from 1 to {MAX_PAGE_SIZE}")
    return int(limit)


def as_uint32(values: object, what: str) -> np.ndarray:
    """A 1-D uint32 array, refusing values that would wrap around."""
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError, OverflowError):
        raise LibraryError(INVALID_ARGUMENT, f"{what} must be a 1-D array of uint32") from None
    if arr.ndim != 1:
        raise LibraryError(INVALID_ARGUMENT, f"{what} must be a 1-D array of uint32")
    if arr.dtype == np.uint32:
        return arr
    if arr.size == 0:
        return np.zeros(0, np.uint32)
    if arr.dtype.kind not in "iu" or int(arr.min()) < 0 or int(arr.max()) > _UINT32_MAX:
        raise LibraryError(INVALID_ARGUMENT, f"{what} must be integers from 0 to 2**32-1")
    return arr.astype(np.uint32)


def normalize_postings(keys: object, times: object, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate one track's postings; returns them sorted by (key, time), duplicates dropped.

    Postings are a set: a (key, time) pair a file lists twice is stored once.
    """
    k = as_uint32(keys, f"{what} keys")
    t = np.asarray(times)
    if t.ndim != 1 or len(t) != len(k):
        raise LibraryError(INVALID_ARGUMENT, f"{what} keys and times differ in length")
    if t.size and t.dtype.kind not in "iuf":
        raise LibraryError(INVALID_ARGUMENT, f"{what} times must be numbers")
    t = t.astype(np.float32) + np.float32(0.0)  # + 0.0 turns -0.0 into 0.0 (SQLite would)
    if not np.isfinite(t).all():
        raise LibraryError(INVALID_ARGUMENT, f"{what} times must be finite")
    order = np.lexsort((t, k))
    k, t = k[order], t[order]
    keep = np.ones(len(k), dtype=bool)
    keep[1:] = (k[1:] != k[:-1]) | (t[1:] != t[:-1])
    return k[keep], t[keep]


def lookup_keys(keys: object) -> np.ndarray:
    """Validated, sorted, distinct lookup keys."""
    return distinct(as_uint32(keys, "lookup keys"))


def validate_budget(max_postings: object) -> int | None:
    """A lookup's posting budget: None (no budget) or a non-negative integer."""
    if max_postings is None:
        return None
    if isinstance(max_postings, bool) or not isinstance(max_postings, (int, np.integer)) or max_postings < 0:
        raise LibraryError(INVALID_ARGUMENT, "max_postings must be a non-negative integer or None")
    return int(max_postings)


def within_budget(keys: np.ndarray, counts: np.ndarray, max_postings: int | None) -> np.ndarray:
    """Mask of the ``keys`` (distinct) a lookup with a posting budget reads.

    Keys are taken rarest first (ties: the smaller key), each with all its
    postings, while the running total stays within ``max_postings``.  A
    frequent key (a tone, a logo, a black frame) is the weakest evidence and
    the dearest to vote over, so a large library drops those first; a small
    library never reaches the budget.  Every adapter applies this same rule
    to its live postings, so a budgeted lookup answers alike on any store.
    """
    keys = np.asarray(keys)
    counts = np.asarray(counts, dtype=np.int64)
    if max_postings is None:
        return np.ones(len(keys), bool)
    order = np.lexsort((keys, counts))
    keep = np.zeros(len(keys), bool)
    keep[order[np.cumsum(counts[order]) <= max_postings]] = True
    return keep


def build_hits(keys: np.ndarray, file_ids: np.ndarray, times: np.ndarray, names: Mapping[int, str]) -> Hits:
    """:class:`Hits` from raw postings (any order).

    ``file_ids`` are an adapter's internal file ids; ``names`` maps each to its
    primary key.  Linear in the number of postings (no sort): a 60 s query
    against a large library reads hundreds of thousands.
    """
    if len(keys) == 0:
        return Hits.empty()
    file_ids = np.asarray(file_ids, dtype=np.int64)
    top = int(file_ids.max()) + 1
    if file_ids.min() >= 0 and top <= 4 * len(file_ids) + 65536:
        ids = np.flatnonzero(np.bincount(file_ids, minlength=top))
        table = np.zeros(top, np.int64)
        table[ids] = np.arange(len(ids))
        codes = table[file_ids]
    else:
        ids, codes = np.unique(file_ids, return_inverse=True)
    pks = np.array([names[int(i)] for i in ids], dtype=object)
    return Hits(np.asarray(keys, dtype=np.uint32), codes.reshape(-1).astype(np.int64), np.asarray(times, dtype=np.float32), pks)


# -- job records -------------------------------------------------------------------
# Every store keeps job records (what ran, for which library, how it ended):
# ``put_job`` / ``get_job`` / ``list_jobs``, records as plain dicts of JOB_FIELDS.

#: A job's states: queued (submitted, not started), running, succeeded, failed.
JOB_STATES = ("queued", "running", "succeeded", "failed")
#: What a job does: fingerprint one input, or delete a library with its files.
JOB_KINDS = ("fingerprint", "delete_library", "rescan")
JOB_FIELDS = ("job_id", "kind", "state", "library", "input_key", "created_at", "updated_at", "result_location",
              "error_code")
_JOB_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_JOB_CURSOR_PREFIX = "j1."


@dataclass
class JobPage:
    items: list[dict]  # job records, newest first
    next_cursor: str | None  # pass back to list_jobs for the next page (a page may be short)


def validate_job_id(job_id: object) -> str:
    """Job ids are Step Functions execution names: 1-80 of ``A-Za-z0-9_-``."""
    if not isinstance(job_id, str) or not _JOB_ID_RE.fullmatch(job_id):
        raise LibraryError(INVALID_ARGUMENT, "invalid job id: 1-80 characters of letters, digits, '_' and '-'")
    return job_id


def validate_job_state(state: object) -> str:
    if state not in JOB_STATES:
        raise LibraryError(INVALID_ARGUMENT, f"invalid job state {state!r}; use one of {', '.join(JOB_STATES)}")
    return str(state)


def normalize_time(value: object, what: str = "time") -> str:
    """An ISO-8601 time as stores write it (UTC, milliseconds, ``Z``); naive times are UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise LibraryError(INVALID_ARGUMENT, f"{what} must be an ISO-8601 time, e.g. 2026-01-02T03:04:05Z") from None
    else:
        raise LibraryError(INVALID_ARGUMENT, f"{what} must be an ISO-8601 time")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_record(job_id: str, state: str, *, kind: str | None, library: str | None, input_key: str | None,
               result_location: str | None, error_code: str | None, created_at: str | None,
               old: dict | None) -> dict:
    """The record ``put_job`` stores: the old one moved on; ``created_at`` kept from the first write."""
    validate_job_id(job_id)
    validate_job_state(state)
    if kind is not None and kind not in JOB_KINDS:
        raise LibraryError(INVALID_ARGUMENT, f"invalid job kind {kind!r}; use one of {', '.join(JOB_KINDS)}")
    now = utc_now()
    rec = dict(old) if old else {f: None for f in JOB_FIELDS}
    rec.update(job_id=job_id, state=state, updated_at=now)
    rec["created_at"] = rec.get("created_at") or (normalize_time(created_at, "created_at") if created_at else now)
    rec["kind"] = kind or rec.get("kind") or "fingerprint"
    for name, value in (("library", library), ("input_key", input_key), ("result_location", result_location),
                        ("error_code", error_code)):
        if value is not None:
            rec[name] = str(value)
    return rec


def job_filters(library: str | None, state: str | None, since: object, until: object, limit: object,
                cursor: str | None) -> tuple[str | None, str | None, str | None, str | None, int, tuple[str, str] | None]:
    """``list_jobs`` arguments checked: (library, state, since, until, limit, resume-after (created_at, job_id))."""
    if library is not None:
        validate_library_name(library)
    if state is not None:
        validate_job_state(state)
    since_s = normalize_time(since, "since") if since is not None else None
    until_s = normalize_time(until, "until") if until is not None else None
    return library, state, since_s, until_s, validate_limit(limit), decode_job_cursor(cursor)


def encode_job_cursor(created_at: str, job_id: str) -> str:
    """Opaque ``list_jobs`` cursor: the page resumes after the job (``created_at``, ``job_id``)."""
    raw = json.dumps([created_at, job_id], separators=(",", ":")).encode("utf-8")
    return _JOB_CURSOR_PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_job_cursor(cursor: str | None) -> tuple[str, str] | None:
    if cursor is None:
        return None
    if not isinstance(cursor, str) or not cursor.startswith(_JOB_CURSOR_PREFIX):
        raise LibraryError(INVALID_ARGUMENT, "invalid cursor")
    body = cursor[len(_JOB_CURSOR_PREFIX):]
    try:
        created_at, job_id = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8"))
        return normalize_time(created_at), validate_job_id(job_id)
    except (binascii.Error, ValueError, TypeError, LibraryError):
        raise LibraryError(INVALID_ARGUMENT, "invalid cursor") from None


def page_jobs(records: list[dict], library: str | None, state: str | None, since: object, until: object,
              limit: object, cursor: str | None) -> JobPage:
    """``list_jobs`` over records in memory: filtered, newest first (ties: job id descending), paged.

    ``since`` is inclusive, ``until`` exclusive (both on ``created_at``).
    """
    library, state, since_s, until_s, limit, after = job_filters(library, state, since, until, limit, cursor)
    chosen = [r for r in records
              if (library is None or r.get("library") == library) and (state is None or r["state"] == state)
              and (since_s is None or r["created_at"] >= since_s) and (until_s is None or r["created_at"] < until_s)
              and (after is None or (r["created_at"], r["job_id"]) < after)]
    chosen.sort(key=lambda r: (r["created_at"], r["job_id"]), reverse=True)
    page = [dict(r) for r in chosen[:limit]]
    more = len(chosen) > limit
    return JobPage(page, encode_job_cursor(page[-1]["created_at"], page[-1]["job_id"]) if more else None)
