"""The cloud library store: DynamoDB through pynamodb.

Same :class:`~mediadna.store.base.LibraryStore` contract as SQLite (the
contract suite runs against SQLite, moto and dynalite).  Key design, item
shapes and access patterns are in ``docs/dynamodb.md``; in short:

* **libraries** (hash ``name``): settings, ``uid`` (namespaces every other
  item, so a re-created library never sees an old one's leftovers), the file
  number counter ``next_no``, the visibility watermark ``committed``, the
  ``dead`` and ``pending`` file numbers, ``revision``, ``file_count`` and the
  writer lease (``lock_owner``, ``lock_expires``).
* **files** (hash ``lib`` = uid, range ``k``): ``f#<primary key>`` records,
  ``s#<sha256>#<primary key>`` exact-match entries, ``d#<n>`` directory items
  (file number -> primary key, 256 numbers an item) and ``b#<no>#f|t#<i>``
  chunks of each file's fingerprint and term manifest.
* **visual / audio index** (hash ``t`` = ``<uid>#<term>[#<shard>]``): one item
  per term holding every posting of the library as packed binary
  (``uint32`` file numbers then ``float32`` times); very common terms spill
  into shards and, past :data:`MAX_SHARDS`, are stop-listed.
* **jobs** (hash ``job_id``): job records; GSI ``library-created_at`` (hash
  ``library``, range ``created_at``) lists a library's jobs by time, GSI
  ``all-created_at`` (hash ``scope`` = ``"jobs"``, range ``created_at``) all jobs.

Writers hold the library lease (see :class:`~mediadna.store.base.LibraryLocks`);
a term item is read, extended and written back (BatchGetItem /
BatchWriteItem), so no transaction is needed (dynalite has none, and
DynamoDB's stop at 100 items).  A file is visible once the library's
``committed`` watermark reaches its number: postings of a half-written file
are never returned, and a crashed writer's file is cleaned up by the next
writer (``pending``).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import struct
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import (
    FILE_EXISTS,
    FILE_NOT_FOUND,
    INTERNAL,
    INVALID_ARGUMENT,
    LIBRARY_EXISTS,
    LIBRARY_NOT_FOUND,
    LibraryBusyError,
    LibraryError,
)
from ..fingerprint import Fingerprint
from .import_records import DynamoDBImportRecords
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
    encode_job_cursor,
    job_filters,
    job_record,
    validate_job_id,
)

try:  # the domain never needs these; only this adapter does
    from pynamodb.attributes import (
        BinaryAttribute,
        BooleanAttribute,
        NumberAttribute,
        NumberSetAttribute,
        UnicodeAttribute,
    )
    from pynamodb.exceptions import DoesNotExist, PynamoDBException, UpdateError
    from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
    from pynamodb.models import Model
except ImportError as exc:  # pragma: no cover - depends on the install
    raise LibraryError(
        INVALID_ARGUMENT, "the DynamoDB store needs pynamodb: pip install 'mediadna[aws]'"
    ) from exc

#: BatchGetItem takes at most 100 keys a request (service limit).
BATCH_GET_MAX = 100
#: BatchWriteItem takes at most 25 items a request (service limit).
BATCH_WRITE_MAX = 25
#: Unprocessed keys/items are retried this many times, backing off exponentially.
BATCH_RETRIES = 10
#: First back-off pause (seconds), doubled each retry up to BACKOFF_CAP, with jitter.
BACKOFF_BASE = 0.05
BACKOFF_CAP = 5.0
#: Postings per index item: 8 bytes each keeps an item under 350 KB, clear of
#: DynamoDB's 400 KB item limit with room for the key and attribute names.
SHARD_POSTINGS = 43_000
#: A term that needs more shards than this (over ~690k postings) is everywhere
#: (black frames, a station logo, silence hiss): it is stop-listed, its
#: postings dropped, and lookups ignore it.  It carries no evidence.
MAX_SHARDS = 16
#: Bytes of a fingerprint or manifest chunk item (under the 400 KB limit).
BLOB_CHUNK = 350_000
#: File numbers per directory item: 256 primary keys of at most 1 KB each fit one item.
DIRECTORY_SPAN = 256
#: ``load_fingerprints`` reads again (library, records, chunks) the files whose
#: chunks vanished under it (replaced or deleted meanwhile) at most this many times.
LOAD_ATTEMPTS = 3

_KINDS = ("visual", "audio")
_POSTING = np.dtype([("no", "<u4"), ("t", "<f4")])


# -- configuration ---------------------------------------------------------------
@dataclass(frozen=True)
class DynamoDBConfig:
    """Where the tables are.  Names come from configuration, never from code."""

    libraries_table: str
    files_table: str
    visual_table: str
    audio_table: str
    jobs_table: str
    region: str | None = None
    endpoint: str | None = None  # e.g. http://127.0.0.1:8000 for dynalite / DynamoDB Local

    @classmethod
    def from_prefix(cls, prefix: str, environ: dict | None = None) -> "DynamoDBConfig":
        """``<prefix>-libraries`` etc., each overridable by ``MEDIADNA_TABLE_<NAME>``.

        ``MEDIADNA_DYNAMODB_ENDPOINT`` points at a DynamoDB-compatible server;
        the region is ``AWS_REGION`` / ``AWS_DEFAULT_REGION``.
        """
        env = os.environ if environ is None else environ
        prefix = prefix.strip()
        names = {}
        for what in ("libraries", "files", "visual", "audio", "jobs"):
            default = f"{prefix}-{what}" if prefix else ""
            names[f"{what}_table"] = env.get(f"MEDIADNA_TABLE_{what.upper()}", default)
        missing = [k for k, v in names.items() if not v]
        if missing:
            raise LibraryError(
                INVALID_ARGUMENT,
                "DynamoDB store needs a table prefix (dynamodb:PREFIX) or MEDIADNA_TABLE_* names; missing "
                + ", ".join(missing),
            )
        for value in names.values():
            if not 3 <= len(value) <= 255 or not all(c.isalnum() or c in "_.-" for c in value):
                raise LibraryError(INVALID_ARGUMENT, f"invalid DynamoDB table name {value!r}")
        return cls(
            **names,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            endpoint=env.get("MEDIADNA_DYNAMODB_ENDPOINT") or None,
        )


# -- request accounting ------------------------------------------------------------
@dataclass
class RequestStats:
    """DynamoDB requests made by one store, and the capacity they consumed."""

    requests: Counter = field(default_factory=Counter)
    read_units: float = 0.0
    write_units: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, operation: str, response: dict | None) -> None:
        with self._lock:
            self.requests[operation] += 1
            used = (response or {}).get("ConsumedCapacity")
            for entry in used if isinstance(used, list) else ([used] if used else []):
                units = float(entry.get("CapacityUnits", 0.0))
                if operation in _WRITE_OPERATIONS:
                    self.write_units += units
                else:
                    self.read_units += units

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.read_units = self.write_units = 0.0

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def to_dict(self) -> dict:
        return {
            "requests": dict(sorted(self.requests.items())),
            "total_requests": self.total,
            "read_units": round(self.read_units, 2),
            "write_units": round(self.write_units, 2),
        }


_WRITE_OPERATIONS = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
_CAPACITY_OPERATIONS = _WRITE_OPERATIONS | {"GetItem", "BatchGetItem", "Query", "Scan"}


# -- item models ---------------------------------------------------------------------
class _LibraryItem(Model):
    class Meta:
        abstract = True

    name = UnicodeAttribute(hash_key=True)
    uid = UnicodeAttribute()
    threshold = NumberAttribute()
    min_segment_seconds = NumberAttribute()
    created_at = UnicodeAttribute()
    file_count = NumberAttribute(default=0)
    next_no = NumberAttribute(default=1)
    committed = NumberAttribute(default=0)
    revision = NumberAttribute(default=0)
    dead = NumberSetAttribute(null=True)
    pending = NumberSetAttribute(null=True)
    deleting = BooleanAttribute(default=False)
    lock_owner = UnicodeAttribute(null=True)
    lock_expires = NumberAttribute(null=True)


class _FileItem(Model):
    class Meta:
        abstract = True

    lib = UnicodeAttribute(hash_key=True)
    k = UnicodeAttribute(range_key=True)
    # f# records
    pk = UnicodeAttribute(null=True)
    no = NumberAttribute(null=True)
    prev_no = NumberAttribute(null=True)
    duration = NumberAttribute(null=True)
    sha256 = UnicodeAttribute(null=True)
    media_type = UnicodeAttribute(null=True)
    has_video = BooleanAttribute(null=True)
    has_audio = BooleanAttribute(null=True)
    fingerprint_version = NumberAttribute(null=True)
    created_at = UnicodeAttribute(null=True)
    metadata = UnicodeAttribute(null=True)
    # chunks of the fingerprint (b#<no>#f#<i>); absent on records written before it was stored
    fp_chunks = NumberAttribute(null=True)
    # d# directory items: JSON {file number: primary key}
    names = UnicodeAttribute(null=True)
    # b# chunks
    data = BinaryAttribute(null=True, legacy_encoding=False)


class _TermItem(Model):
    class Meta:
        abstract = True

    t = UnicodeAttribute(hash_key=True)
    p = BinaryAttribute(null=True, legacy_encoding=False)
    shards = NumberAttribute(null=True)
    stop = BooleanAttribute(null=True)


#: The jobs table's indexes (infra/constructs/storage.py declares the same ones).
JOBS_BY_LIBRARY = "library-created_at"
JOBS_BY_TIME = "all-created_at"
#: The one ``scope`` value: every job is in the ``all-created_at`` index.
_JOBS_SCOPE = "jobs"


class _JobsByLibrary(GlobalSecondaryIndex):
    class Meta:
        index_name = JOBS_BY_LIBRARY
        projection = AllProjection()

    library = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class _JobsByTime(GlobalSecondaryIndex):
    class Meta:
        index_name = JOBS_BY_TIME
        projection = AllProjection()

    scope = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class _JobItem(Model):
    class Meta:
        abstract = True

    job_id = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute(null=True)  # absent on records older than the API: fingerprint
    state = UnicodeAttribute()
    library = UnicodeAttribute(null=True)
    input_key = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    result_location = UnicodeAttribute(null=True)
    error_code = UnicodeAttribute(null=True)
    scope = UnicodeAttribute(null=True)
    by_library = _JobsByLibrary()
    by_time = _JobsByTime()


def _bind(base: type[Model], table: str, config: DynamoDBConfig) -> type[Model]:
    """A concrete model class of ``base`` on ``table`` (table names are configuration)."""
    meta = type(
        "Meta",
        (),
        {
            "table_name": table,
            "region": config.region,
            "host": config.endpoint,
            "max_retry_attempts": 8,  # throttling and 5xx of single requests: botocore backs off
        },
    )
    return type(f"{base.__name__.lstrip('_')}_{table}", (base,), {"Meta": meta})


# -- helpers ----------------------------------------------------------------------------
def _pack(nos: np.ndarray, times: np.ndarray) -> bytes:
    arr = np.empty(len(nos), _POSTING)
    arr["no"] = nos
    arr["t"] = times
    return arr.tobytes()


def _unpack(blob: bytes | None) -> np.ndarray:
    if not blob:
        return np.zeros(0, _POSTING)
    return np.frombuffer(blob, _POSTING)


def _chunks(values: list, size: int) -> Iterator[list]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def _backoff(attempt: int) -> None:
    time.sleep(min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt) * random.uniform(0.5, 1.0))


def _term_key(uid: str, term: int, shard: int = 0) -> str:
    return f"{uid}#{term}" if shard == 0 else f"{uid}#{term}#{shard}"


#: A sort key is at most 1024 bytes; primary keys up to this many bytes are used as they are.
_SORT_KEY_BYTES = 1000


def _record_key(primary_key: str) -> str:
    """Sort key of a file record: ``f#<primary key>``, so records list in key order.

    A primary key too long for a sort key keeps its first 900 bytes and gets a
    digest: such keys still list in order of those 900 bytes (ties by digest).
    """
    raw = primary_key.encode("utf-8")
    if len(raw) + 2 <= _SORT_KEY_BYTES:
        return "f#" + primary_key
    head = raw[:900].decode("utf-8", "ignore")
    return "f#" + head + "\x01" + hashlib.sha256(raw).hexdigest()


def _sha_key(sha256: str, primary_key: str) -> str:
    return f"s#{sha256[:128]}#" + hashlib.sha256(primary_key.encode("utf-8")).hexdigest()


def _blob_prefix(no: int, what: str) -> str:
    return f"b#{no:012d}#{what}#"


def _blob_count(size: int) -> int:
    """Chunk items of a ``size``-byte payload: ``BLOB_CHUNK`` bytes each, and one even when empty."""
    return max(1, -(-size // BLOB_CHUNK))


def _blob_keys(no: int, what: str, count: int) -> list[str]:
    """Sort keys of the ``count`` chunks of file ``no``'s fingerprint (``f``) or manifest (``t``)."""
    return [_blob_prefix(no, what) + f"{i:05d}" for i in range(count)]


def _valid_key(primary_key) -> bool:
    try:
        validate_primary_key(primary_key)
    except LibraryError:
        return False
    return True


class DynamoDBStore(DynamoDBImportRecords, LibraryLocks):
    """:class:`~mediadna.store.base.LibraryStore` on DynamoDB tables.

    Thread-safe; each thread may share one store.  ``stats`` counts every
    request and the capacity it consumed.  ``consistent_reads`` (default on)
    makes a commit see the file committed just before it (save-if-unique).
    """

    def __init__(
        self,
        config: DynamoDBConfig,
        *,
        consistent_reads: bool = True,
        shard_postings: int = SHARD_POSTINGS,
        max_shards: int = MAX_SHARDS,
    ):
        self.config = config
        self.consistent_reads = consistent_reads
        self.shard_postings = int(shard_postings)
        self.max_shards = int(max_shards)
        self.stats = RequestStats()
        self._init_locks()
        self._names: dict[tuple[str, int], str] = {}  # (uid, file number) -> primary key; immutable
        self._closed = False
        self.Libraries = _bind(_LibraryItem, config.libraries_table, config)
        self.Files = _bind(_FileItem, config.files_table, config)
        self.Terms = {
            "visual": _bind(_TermItem, config.visual_table, config),
            "audio": _bind(_TermItem, config.audio_table, config),
        }
        self.Jobs = _bind(_JobItem, config.jobs_table, config)
        self._instrumented: set[int] = set()

    # -- plumbing ------------------------------------------------------------------
    def _conn(self, model: type[Model]):
        """The model's table connection, counting requests and asking for consumed capacity."""
        if self._closed:
            raise LibraryError(INTERNAL, "the library store is closed")
        table = model._get_connection()
        conn = table.connection
        if id(conn) not in self._instrumented:
            self._instrumented.add(id(conn))
            _share_client(conn)
            original = conn._make_api_call
            stats = self.stats

            def counted(operation_name: str, operation_kwargs: dict) -> dict:
                if operation_name in _CAPACITY_OPERATIONS:
                    operation_kwargs.setdefault("ReturnConsumedCapacity", "TOTAL")
                response = original(operation_name, operation_kwargs)
                stats.record(operation_name, response)
                return response

            conn._make_api_call = counted
        return table

    @property
    def _models(self) -> list[type[Model]]:
        return [self.Libraries, self.Files, self.Terms["visual"], self.Terms["audio"], self.Jobs]

    def create_tables(self, wait: bool = True) -> None:
        """Create any missing table, on-demand billing (for dev, tests and dynalite; CDK owns them in AWS)."""
        created = []
        for model in self._models:
            self._conn(model)
            if not model.exists():
                model.create_table(billing_mode="PAY_PER_REQUEST")
                created.append(model)
        deadline = time.monotonic() + 300
        for model in created if wait else []:  # pynamodb's own wait polls every 2 s; local servers are instant
            delay = 0.05
            while model.describe_table().get("TableStatus") != "ACTIVE":
                if time.monotonic() > deadline:
                    raise LibraryError(INTERNAL, f"table {model.Meta.table_name} did not become active")
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def delete_tables(self) -> None:
        for model in self._models:
            self._conn(model)
            if model.exists():
                model.delete_table()

    def _batch_get(self, model: type[Model], keys: list[dict], *, consistent: bool | None = None,
                   attributes: list[str] | None = None) -> list[dict]:
        """Raw items for ``keys`` (attribute-value maps), 100 a request, retrying unprocessed keys.

        ``consistent`` overrides the store's ``consistent_reads``; ``attributes``
        fetches only those (capacity is charged on the whole item either way).
        """
        table = self._conn(model)
        name = model.Meta.table_name
        consistent = self.consistent_reads if consistent is None else consistent
        out: list[dict] = []
        for chunk in _chunks(keys, BATCH_GET_MAX):
            todo = chunk
            for attempt in range(BATCH_RETRIES + 1):
                data = table.batch_get_item(todo, consistent_read=consistent, attributes_to_get=attributes)
                out += data.get("Responses", {}).get(name, [])
                todo = data.get("UnprocessedKeys", {}).get(name, {}).get("Keys") or []
                if not todo:
                    break
                if attempt == BATCH_RETRIES:
                    raise LibraryError(INTERNAL, f"DynamoDB kept {len(todo)} keys of {name} unprocessed")
                _backoff(attempt)
        return out

    def _batch_write(self, model: type[Model], puts: list[dict] = (), deletes: list[dict] = ()) -> None:
        """Raw puts and deletes, 25 a request, retrying unprocessed items."""
        table = self._conn(model)
        name = model.Meta.table_name
        requests = [("put", p) for p in puts] + [("delete", d) for d in deletes]
        for chunk in _chunks(requests, BATCH_WRITE_MAX):
            put_items = [r for kind, r in chunk if kind == "put"]
            delete_items = [r for kind, r in chunk if kind == "delete"]
            for attempt in range(BATCH_RETRIES + 1):
                data = table.batch_write_item(put_items=put_items or None, delete_items=delete_items or None)
                left = (data or {}).get("UnprocessedItems", {}).get(name) or []
                if not left:
                    break
                if attempt == BATCH_RETRIES:
                    raise LibraryError(INTERNAL, f"DynamoDB kept {len(left)} writes to {name} unprocessed")
                put_items = [r["PutRequest"]["Item"] for r in left if "PutRequest" in r]
                delete_items = [r["DeleteRequest"]["Key"] for r in left if "DeleteRequest" in r]
                _backoff(attempt)
            self._renew_leases()

    # -- libraries ---------------------------------------------------------------------
    def _get_lib(self, name: str, *, consistent: bool = True) -> _LibraryItem:
        validate_library_name(name)
        self._conn(self.Libraries)
        try:
            item = self.Libraries.get(name, consistent_read=consistent)
        except DoesNotExist:
            item = None
        if item is None or item.deleting:
            raise LibraryError(LIBRARY_NOT_FOUND, f"library {name!r} does not exist")
        return item

    @staticmethod
    def _library(item: _LibraryItem) -> Library:
        return Library(item.name, float(item.threshold), float(item.min_segment_seconds), item.created_at,
                       int(item.file_count))

    def create_library(
        self, name: str, threshold: float = DEFAULT_THRESHOLD, min_segment_seconds: float = DEFAULT_MIN_SEGMENT_SECONDS
    ) -> Library:
        validate_library_name(name)
        threshold, min_segment_seconds = validate_library_settings(threshold, min_segment_seconds)
        self._conn(self.Libraries)
        item = self.Libraries(
            name, uid=uuid.uuid4().hex[:12], threshold=threshold, min_segment_seconds=min_segment_seconds,
            created_at=utc_now(), file_count=0, next_no=1, committed=0, revision=0, deleting=False,
        )
        for attempt in range(2):
            try:
                item.save(condition=self.Libraries.name.does_not_exist())
                return self._library(item)
            except PynamoDBException as exc:
                if not _conditional_failed(exc):
                    raise _internal(exc) from exc
            try:
                existing = self.Libraries.get(name, consistent_read=True)
            except DoesNotExist:
                continue
            if not existing.deleting or attempt:
                break
            self._purge_library(existing)  # a deletion that died half-way: finish it first
        raise LibraryError(LIBRARY_EXISTS, f"library {name!r} already exists")

    def get_library(self, name: str) -> Library:
        return self._library(self._get_lib(name))

    def list_libraries(self) -> list[Library]:
        self._conn(self.Libraries)
        items = [i for i in self.Libraries.scan(consistent_read=self.consistent_reads) if not i.deleting]
        return sorted((self._library(i) for i in items), key=lambda lib: lib.name)

    def delete_library(self, name: str) -> None:
        lib = self._get_lib(name)
        with self.library_lock(name):
            lib = self._get_lib(name)
            lib.update(actions=[self.Libraries.deleting.set(True)])  # invisible from here on
            self._purge_library(lib)

    def _purge_library(self, lib: _LibraryItem) -> None:
        """Delete every item the library owns: term items via the manifests, then its files items."""
        uid = lib.uid
        self._conn(self.Files)
        nos: set[int] = set()
        keys: list[str] = []
        for item in self.Files.query(uid, consistent_read=True, attributes_to_get=["lib", "k"]):
            keys.append(item.k)
            if item.k.startswith("b#"):
                nos.add(int(item.k.split("#")[1]))
        for kind in _KINDS:
            terms: set[int] = set()
            for no in nos:
                terms.update(self._manifest(uid, no)[kind].tolist())
            firsts = self._get_terms(kind, uid, sorted(terms))
            doomed = []
            for term, item in firsts.items():
                doomed += [_term_key(uid, term, s) for s in range(int(item.get("shards", 1)))]
            self._batch_write(self.Terms[kind], deletes=[{"t": {"S": k}} for k in doomed])
        self._batch_write(self.Files, deletes=[{"lib": {"S": uid}, "k": {"S": k}} for k in keys])
        self._conn(self.Libraries)
        try:
            self.Libraries(lib.name).delete(condition=self.Libraries.uid == uid)
        except PynamoDBException as exc:
            if not _conditional_failed(exc):
                raise _internal(exc) from exc

    # -- the writer lease ------------------------------------------------------------------
    def _try_lease(self, library: str, token: str, seconds: float) -> bool:
        self._get_lib(library)  # not found is an error, not a wait
        L = self.Libraries
        now = time.time()
        try:
            L(library).update(
                actions=[L.lock_owner.set(token), L.lock_expires.set(now + seconds)],
                condition=L.name.exists() & (L.deleting == False)  # noqa: E712 - pynamodb condition
                & (L.lock_owner.does_not_exist() | (L.lock_expires < now)),
            )
            return True
        except PynamoDBException as exc:
            if _conditional_failed(exc):
                return False
            raise _internal(exc) from exc

    def _drop_lease(self, library: str, token: str) -> None:
        if self._closed:
            return
        L = self.Libraries
        try:
            L(library).update(actions=[L.lock_owner.remove(), L.lock_expires.remove()], condition=L.lock_owner == token)
        except PynamoDBException:
            pass  # lost or already gone: it expires by itself

    def _renew_leases(self) -> None:
        """Extend held leases past a third of their life (long ingests)."""
        L = self.Libraries
        for library, held in list(self._leases.items()):
            if time.monotonic() - held[2] < self.lease_seconds / 3:
                continue
            try:
                L(library).update(actions=[L.lock_expires.set(time.time() + self.lease_seconds)],
                                  condition=L.lock_owner == held[0])
            except PynamoDBException as exc:
                if _conditional_failed(exc):
                    raise LibraryBusyError(f"lost the writer lock on library {library!r}") from None
                raise _internal(exc) from exc
            held[2] = time.monotonic()

    def _on_lease(self, library: str, token: str) -> None:
        lib = self._get_lib(library)
        # newest first: a replacement is published before the file it replaces is purged
        for no in sorted((int(n) for n in (lib.pending or ())), reverse=True):
            self._recover(self._get_lib(library), no)

    def _recover(self, lib: _LibraryItem, no: int) -> None:
        """Finish or undo file number ``no`` that a writer left pending."""
        pk = self._directory(lib.uid, [no]).get(no)
        record = self._get_record(lib.uid, pk) if pk is not None else None
        if no in {int(n) for n in (lib.dead or ())}:  # a delete (or replacement) that stopped half-way
            if record is not None and int(record.no) == no:  # delete_file died before removing the record
                self._batch_write(self.Files, deletes=[
                    {"lib": {"S": lib.uid}, "k": {"S": _record_key(pk)}},
                    {"lib": {"S": lib.uid}, "k": {"S": _sha_key(record.sha256, pk)}},
                ])
            self._purge_file(lib, no)
        elif record is not None and int(record.no) == no:  # the current version of its key
            if int(lib.committed) < no:  # its record landed but not the commit: finish it
                prev = int(record.prev_no) if record.prev_no is not None else None
                self._publish(lib, no, prev, new_key=prev is None)
            else:
                L = self.Libraries
                L(lib.name).update(actions=[L.pending.delete({no})])
        else:  # never committed, replaced or deleted: nothing of it may survive
            self._purge_file(lib, no)

    def library_revision(self, library: str) -> int:
        return int(self._get_lib(library).revision)

    # -- files: reads ----------------------------------------------------------------------
    def _get_record(self, uid: str, primary_key: str) -> _FileItem | None:
        self._conn(self.Files)
        try:
            return self.Files.get(uid, _record_key(primary_key), consistent_read=self.consistent_reads)
        except DoesNotExist:
            return None

    @staticmethod
    def _record(item: _FileItem) -> FileRecord:
        return stored_record(
            FileRecord(
                primary_key=item.pk, duration=float(item.duration), sha256=item.sha256, media_type=item.media_type,
                has_video=bool(item.has_video), has_audio=bool(item.has_audio),
                fingerprint_version=int(item.fingerprint_version),
            ),
            metadata_json=item.metadata,
            created_at=item.created_at,
        )

    def get_file(self, library: str, primary_key: str) -> FileRecord:
        validate_primary_key(primary_key)
        lib = self._get_lib(library)
        item = self._get_record(lib.uid, primary_key)
        if item is None:
            raise LibraryError(FILE_NOT_FOUND, f"file {primary_key!r} not found in library {library!r}")
        return self._record(item)

    def list_files(self, library: str, limit: int = 100, cursor: str | None = None) -> FilePage:
        limit = validate_limit(limit)
        after = decode_cursor(cursor)
        lib = self._get_lib(library)
        F = self._conn(self.Files) and self.Files
        condition = F.k > _record_key(after) if after is not None else F.k.startswith("f#")
        items: list[FileRecord] = []
        more = False
        for item in F.query(lib.uid, condition, consistent_read=self.consistent_reads, page_size=limit + 1):
            if not item.k.startswith("f#"):
                break  # past the f# records ('s#' ... sort after them)
            if len(items) == limit:
                more = True
                break
            items.append(self._record(item))
        return FilePage(items, encode_cursor(items[-1].primary_key) if more else None)

    def files_by_sha256(self, library: str, sha256: str) -> list[FileRecord]:
        if not isinstance(sha256, str):
            raise LibraryError(INVALID_ARGUMENT, "sha256 must be a string")
        lib = self._get_lib(library)
        F = self._conn(self.Files) and self.Files
        pks = [i.pk for i in F.query(lib.uid, F.k.startswith(f"s#{sha256[:128]}#"), consistent_read=self.consistent_reads)]
        out = []
        for pk in sorted(set(pks)):
            item = self._get_record(lib.uid, pk)
            if item is not None and item.sha256 == sha256:
                out.append(self._record(item))
        return out

    def _read_blob(self, uid: str, no: int, what: str) -> bytes:
        F = self._conn(self.Files) and self.Files
        parts = [i.data for i in F.query(uid, F.k.startswith(_blob_prefix(no, what)), consistent_read=True)]
        return b"".join(parts)

    def load_fingerprint(self, library: str, primary_key: str) -> Fingerprint:
        validate_primary_key(primary_key)
        found = self.load_fingerprints(library, [primary_key]).get(primary_key)
        if found is None:
            raise LibraryError(FILE_NOT_FOUND, f"file {primary_key!r} not found in library {library!r}")
        return found

    def load_fingerprints(self, library: str, primary_keys: Sequence[str]) -> dict[str, Fingerprint]:
        """The fingerprints of the visible files among ``primary_keys``, in a constant number of requests.

        ``GetItem`` of the library (watermark and dead set), ``BatchGetItem`` of
        the ``f#`` records (100 a request), ``BatchGetItem`` of all their
        fingerprint chunks (the record knows how many; a record written before
        it did costs a ``Query`` of its chunks).  A file counts once its number
        is committed and not dead, as for lookups; while a replacement is being
        written, the version it replaces is the one loaded.  Invalid and
        unknown keys are left out of the answer.
        """
        asked = list(dict.fromkeys(primary_keys))  # once: primary_keys may be an iterator
        wanted = [pk for pk in asked if _valid_key(pk)]
        lib = self._get_lib(library)
        blobs: dict[str, bytes] = {}
        for attempt in range(LOAD_ATTEMPTS):
            if not wanted:
                break
            if attempt:  # their chunks went under us: a writer replaced or deleted them; read again
                lib = self._get_lib(library)
            found, wanted = self._fingerprint_blobs(lib, wanted)
            blobs.update(found)
        # still torn after that: being rewritten right now; left out like a file not yet there
        return {pk: Fingerprint.from_bytes(blobs[pk]) for pk in asked if pk in blobs}

    def _fingerprint_blobs(self, lib: _LibraryItem, primary_keys: list[str]) -> tuple[dict[str, bytes], list[str]]:
        """Fingerprint bytes of the visible files among ``primary_keys``, and the keys whose chunks were torn."""
        uid = lib.uid
        committed = int(lib.committed)
        dead = {int(n) for n in (lib.dead or ())}

        by_sort_key = {_record_key(pk): pk for pk in primary_keys}
        records = self._batch_get(self.Files, [{"lib": {"S": uid}, "k": {"S": k}} for k in by_sort_key],
                                  attributes=["k", "no", "prev_no", "fp_chunks"])
        plan: dict[str, tuple[int, int | None]] = {}  # primary key -> (file number, chunks if known)
        for item in records:
            pk = by_sort_key[item["k"]["S"]]
            no = int(item["no"]["N"])
            if no <= committed:
                if no not in dead:  # dead: being deleted (its record goes next)
                    chunks = item.get("fp_chunks")
                    plan[pk] = (no, int(chunks["N"]) if chunks is not None else None)
            elif "prev_no" in item:  # a replacement not committed yet: the version it replaces is the visible one
                prev = int(item["prev_no"]["N"])
                if prev <= committed and prev not in dead:
                    plan[pk] = (prev, None)
            # else a new file not committed yet: not there
        counted = {pk: _blob_keys(no, "f", n) for pk, (no, n) in plan.items() if n is not None}
        wanted = [{"lib": {"S": uid}, "k": {"S": k}} for keys in counted.values() for k in keys]
        # chunks never change once written: a strongly consistent read finds them all (as _read_blob does)
        parts = {item["k"]["S"]: item.get("data", {}).get("B", b"")
                 for item in (self._batch_get(self.Files, wanted, consistent=True) if wanted else ())}
        found: dict[str, bytes] = {}
        torn: list[str] = []
        for pk, (no, n) in plan.items():
            if n is None:
                blob = self._query_fingerprint(uid, no)
            else:
                keys = counted[pk]
                blob = b"".join(parts[k] for k in keys) if all(k in parts for k in keys) else None
            if blob is None:
                torn.append(pk)
            else:
                found[pk] = blob
        return found, torn

    def _query_fingerprint(self, uid: str, no: int) -> bytes | None:
        """File ``no``'s fingerprint by a ``Query`` of its chunks (records without ``fp_chunks``); None if torn."""
        F = self._conn(self.Files) and self.Files
        prefix = _blob_prefix(no, "f")
        items = list(F.query(uid, F.k.startswith(prefix), consistent_read=True))
        if [i.k for i in items] != _blob_keys(no, "f", len(items)) or not items:
            return None  # purged (wholly or from the front) since its record was read
        return b"".join(i.data or b"" for i in items)

    def _manifest(self, uid: str, no: int) -> dict[str, np.ndarray]:
        """The distinct terms file ``no`` posted, per kind (empty if it wrote none yet)."""
        blob = self._read_blob(uid, no, "t")
        if not blob:
            return {kind: np.zeros(0, np.uint32) for kind in _KINDS}
        raw = zlib.decompress(blob)
        nv = struct.unpack_from("<Q", raw)[0]
        body = np.frombuffer(raw, "<u4", offset=8)
        return {"visual": body[:nv].astype(np.uint32), "audio": body[nv:].astype(np.uint32)}

    def _directory(self, uid: str, nos: Iterable[int]) -> dict[int, str]:
        """File number -> primary key (immutable; cached)."""
        out: dict[int, str] = {}
        missing_blocks: set[int] = set()
        for no in nos:
            name = self._names.get((uid, no))
            if name is None:
                missing_blocks.add(no // DIRECTORY_SPAN)
            else:
                out[no] = name
        if missing_blocks:
            keys = [{"lib": {"S": uid}, "k": {"S": f"d#{b:010d}"}} for b in sorted(missing_blocks)]
            for raw in self._batch_get(self.Files, keys):
                for no_text, name in json.loads(raw["names"]["S"]).items():
                    self._names[(uid, int(no_text))] = name
            out.update({no: self._names[(uid, no)] for no in nos if (uid, no) in self._names})
        return out

    # -- files: writes ----------------------------------------------------------------------
    def add_file(
        self, library: str, record: FileRecord, fingerprint: Fingerprint, postings: Postings, replace: bool = False
    ) -> None:
        """Store record, fingerprint and postings; visible all at once (see the module docstring)."""
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
        pk = record.primary_key
        self._get_lib(library)
        with self.library_lock(library):
            lib = self._get_lib(library)
            old = self._get_record(lib.uid, pk)
            if old is not None and not replace:
                raise LibraryError(FILE_EXISTS, f"file {pk!r} already exists in library {library!r}")
            no = self._allocate(lib, pk, int(old.no) if old is not None else None)
            try:
                self._write_file(lib.uid, no, blob, tracks)
                self._put_record(lib.uid, no, record, metadata, old, fp_chunks=_blob_count(len(blob)))
            except BaseException:
                try:
                    self._purge_file(self._get_lib(library), no)
                    if old is not None:  # still the current version: no longer pending
                        L = self.Libraries
                        L(library).update(actions=[L.pending.delete({int(old.no)})])
                except Exception:  # noqa: BLE001 - the next writer finishes the clean-up (pending)
                    pass
                raise
            self._publish(lib, no, old.no if old is not None else None, new_key=old is None)
            if old is not None:
                self._purge_file(self._get_lib(library), int(old.no))

    def _allocate(self, lib: _LibraryItem, pk: str, replaces: int | None) -> int:
        """Take the next file number, mark it (and the file it replaces) pending, name it in the directory."""
        L = self.Libraries
        item = L(lib.name)
        pending = {int(lib.next_no)} | ({int(replaces)} if replaces is not None else set())
        item.update(actions=[L.next_no.add(1), L.pending.add(pending)],
                    condition=L.lock_owner == self._lease_token(lib.name))
        no = int(item.next_no) - 1
        block = no // DIRECTORY_SPAN
        raw = self._batch_get(self.Files, [{"lib": {"S": lib.uid}, "k": {"S": f"d#{block:010d}"}}])
        names = json.loads(raw[0]["names"]["S"]) if raw else {}
        names[str(no)] = pk
        self._batch_write(self.Files, puts=[{"lib": {"S": lib.uid}, "k": {"S": f"d#{block:010d}"},
                                              "names": {"S": json.dumps(names, separators=(",", ":"))}}])
        self._names[(lib.uid, no)] = pk
        return no

    def _write_file(self, uid: str, no: int, blob: bytes, tracks: dict) -> None:
        terms = {kind: np.unique(keys) for kind, (keys, _) in tracks.items()}
        manifest = zlib.compress(
            struct.pack("<Q", len(terms["visual"])) + terms["visual"].astype("<u4").tobytes()
            + terms["audio"].astype("<u4").tobytes()
        )
        puts = []
        for what, payload in (("t", manifest), ("f", blob)):  # manifest first: a purge can find the terms
            for i, key in enumerate(_blob_keys(no, what, _blob_count(len(payload)))):
                puts.append({"lib": {"S": uid}, "k": {"S": key},
                             "data": {"B": payload[i * BLOB_CHUNK : (i + 1) * BLOB_CHUNK]}})
        self._batch_write(self.Files, puts=puts)
        for kind, (keys, times) in tracks.items():
            self._append_postings(kind, uid, no, keys, times)

    def _put_record(self, uid: str, no: int, record: FileRecord, metadata: str, old: _FileItem | None,
                    fp_chunks: int | None = None) -> None:
        """The file's record: from here on get_file sees it (lookups and load_fingerprints follow at the
        watermark).  ``fp_chunks``: how many ``b#<no>#f#`` chunks its fingerprint was written as."""
        F = self._conn(self.Files) and self.Files
        item = F(uid, _record_key(record.primary_key), pk=record.primary_key, no=no,
                 prev_no=int(old.no) if old is not None else None, duration=float(record.duration),
                 sha256=record.sha256, media_type=record.media_type, has_video=bool(record.has_video),
                 has_audio=bool(record.has_audio), fingerprint_version=int(record.fingerprint_version),
                 created_at=record.created_at or utc_now(), metadata=metadata, fp_chunks=fp_chunks)
        puts = [item.serialize(), {"lib": {"S": uid}, "k": {"S": _sha_key(record.sha256, record.primary_key)},
                                   "pk": {"S": record.primary_key}}]
        deletes = []
        if old is not None and old.sha256 != record.sha256:
            deletes.append({"lib": {"S": uid}, "k": {"S": _sha_key(old.sha256, record.primary_key)}})
        self._batch_write(F, puts=puts, deletes=deletes)

    def _publish(self, lib: _LibraryItem, no: int, prev_no: int | None, *, new_key: bool) -> None:
        """The commit point: raise the watermark to ``no`` and retire ``prev_no``, in one update."""
        L = self.Libraries
        actions = [L.committed.set(no), L.revision.add(1), L.pending.delete({no})]
        if new_key:
            actions.append(L.file_count.add(1))
        if prev_no is not None:  # invisible from now on; it stays pending until purged
            actions.append(L.dead.add({int(prev_no)}))
        L(lib.name).update(actions=actions, condition=L.lock_owner == self._lease_token(lib.name))

    def delete_file(self, library: str, primary_key: str) -> None:
        validate_primary_key(primary_key)
        self._get_lib(library)
        with self.library_lock(library):
            lib = self._get_lib(library)
            item = self._get_record(lib.uid, primary_key)
            if item is None:
                raise LibraryError(FILE_NOT_FOUND, f"file {primary_key!r} not found in library {library!r}")
            L = self.Libraries
            no = int(item.no)
            # dead first: lookups stop returning it before its record goes
            L(lib.name).update(actions=[L.dead.add({no}), L.pending.add({no}), L.revision.add(1),
                                        L.file_count.add(-1)],
                               condition=L.lock_owner == self._lease_token(lib.name))
            self._batch_write(self.Files, deletes=[
                {"lib": {"S": lib.uid}, "k": {"S": _record_key(primary_key)}},
                {"lib": {"S": lib.uid}, "k": {"S": _sha_key(item.sha256, primary_key)}},
            ])
            self._purge_file(self._get_lib(library), no)

    def _purge_file(self, lib: _LibraryItem, no: int) -> None:
        """Remove every posting and chunk of file number ``no``; then forget it."""
        manifest = self._manifest(lib.uid, no)
        for kind in _KINDS:
            self._remove_postings(kind, lib.uid, no, manifest[kind])
        F = self._conn(self.Files) and self.Files
        chunks = [i.k for i in F.query(lib.uid, F.k.startswith(f"b#{no:012d}#"), consistent_read=True,
                                       attributes_to_get=["lib", "k"])]
        # the manifest goes last: a purge that dies half-way can be run again
        chunks.sort(key=lambda k: k.startswith(_blob_prefix(no, "t")))
        self._batch_write(F, deletes=[{"lib": {"S": lib.uid}, "k": {"S": k}} for k in chunks])
        L = self.Libraries
        L(lib.name).update(actions=[L.pending.delete({no}), L.dead.delete({no})])

    # -- the inverted index ------------------------------------------------------------------
    def _get_terms(self, kind: str, uid: str, terms: list[int], shard: int = 0) -> dict[int, dict]:
        if not terms:
            return {}
        raw = self._batch_get(self.Terms[kind], [{"t": {"S": _term_key(uid, t, shard)}} for t in terms])
        out = {}
        for item in raw:
            parts = item["t"]["S"].split("#")
            out[int(parts[1])] = {
                "p": item.get("p", {}).get("B", b""),
                "shards": int(item.get("shards", {}).get("N", "1")),
                "stop": bool(item.get("stop", {}).get("BOOL", False)),
            }
        return out

    @staticmethod
    def _term_item(uid: str, term: int, shard: int, postings: np.ndarray, shards: int | None = None,
                   stop: bool = False) -> dict:
        item = {"t": {"S": _term_key(uid, term, shard)}, "p": {"B": postings.tobytes()}}
        if shards is not None and shard == 0:
            item["shards"] = {"N": str(shards)}
        if stop:
            item["stop"] = {"BOOL": True}
        return item

    def _append_postings(self, kind: str, uid: str, no: int, keys: np.ndarray, times: np.ndarray) -> None:
        if not len(keys):
            return
        terms, starts = np.unique(keys, return_index=True)
        ends = np.append(starts[1:], len(keys))
        firsts = self._get_terms(kind, uid, terms.tolist())
        # the last shard of multi-shard terms, where appends go
        by_count: dict[int, list[int]] = {}
        for term, item in firsts.items():
            if item["shards"] > 1 and not item["stop"]:
                by_count.setdefault(item["shards"] - 1, []).append(term)
        lasts = {}
        for shard, group in by_count.items():
            lasts.update({t: (shard, v) for t, v in self._get_terms(kind, uid, group, shard).items()})
        puts, deletes = [], []
        cap = self.shard_postings
        for term, a, b in zip(terms.tolist(), starts.tolist(), ends.tolist()):
            first = firsts.get(term)
            if first is not None and first["stop"]:
                continue
            new = np.empty(b - a, _POSTING)
            new["no"] = no
            new["t"] = times[a:b]
            shards = first["shards"] if first else 1
            last_shard, last = (lasts[term][0], lasts[term][1]["p"]) if term in lasts else (
                0, first["p"] if first else b"")
            tail = np.concatenate([_unpack(last), new])
            total = (shards - 1) * cap + len(tail)
            need = last_shard + max(1, -(-len(tail) // cap))
            if need > self.max_shards or total > self.max_shards * cap:
                # stop-list: everywhere, so no evidence; drop its postings
                puts.append(self._term_item(uid, term, 0, np.zeros(0, _POSTING), 1, stop=True))
                deletes += [{"t": {"S": _term_key(uid, term, s)}} for s in range(1, shards)]
                continue
            for i in range(need - last_shard):
                shard = last_shard + i
                part = tail[i * cap : (i + 1) * cap]
                puts.append(self._term_item(uid, term, shard, part, need if shard == 0 else None))
            if need != shards and last_shard != 0:  # the shard count lives on shard 0
                head = _unpack(first["p"])
                puts.append(self._term_item(uid, term, 0, head, need))
        self._batch_write(self.Terms[kind], puts=puts, deletes=deletes)

    def _remove_postings(self, kind: str, uid: str, no: int, terms: np.ndarray) -> None:
        if not len(terms):
            return
        firsts = self._get_terms(kind, uid, terms.tolist())
        extra: dict[int, dict[int, bytes]] = {}
        for shard in range(1, max([i["shards"] for i in firsts.values()] + [1])):
            group = [t for t, i in firsts.items() if i["shards"] > shard]
            for t, item in self._get_terms(kind, uid, group, shard).items():
                extra.setdefault(t, {})[shard] = item["p"]
        puts, deletes = [], []
        cap = self.shard_postings
        for term, first in firsts.items():
            if first["stop"]:
                continue
            parts = [_unpack(first["p"])] + [_unpack(extra.get(term, {}).get(s)) for s in range(1, first["shards"])]
            allp = np.concatenate(parts)
            keep = allp[allp["no"] != no]
            if len(keep) == len(allp):
                continue
            need = -(-len(keep) // cap)
            if need == 0:
                deletes += [{"t": {"S": _term_key(uid, term, s)}} for s in range(first["shards"])]
                continue
            for s in range(need):
                puts.append(self._term_item(uid, term, s, keep[s * cap : (s + 1) * cap], need if s == 0 else None))
            deletes += [{"t": {"S": _term_key(uid, term, s)}} for s in range(need, first["shards"])]
        self._batch_write(self.Terms[kind], puts=puts, deletes=deletes)

    def _lookup(self, kind: str, library: str, keys: np.ndarray, max_postings: int | None = None) -> Hits:
        max_postings = validate_budget(max_postings)
        wanted = lookup_keys(keys).tolist()
        lib = self._get_lib(library)
        if not wanted:
            return Hits.empty()
        uid = lib.uid
        firsts = self._get_terms(kind, uid, wanted)
        parts_keys, parts = [], []
        for term, item in firsts.items():
            if item["stop"]:
                continue
            p = _unpack(item["p"])
            parts.append(p)
            parts_keys.append(np.full(len(p), term, np.uint32))
        for shard in range(1, max([i["shards"] for i in firsts.values()] + [1])):
            group = [t for t, i in firsts.items() if i["shards"] > shard and not i["stop"]]
            for term, item in self._get_terms(kind, uid, group, shard).items():
                p = _unpack(item["p"])
                parts.append(p)
                parts_keys.append(np.full(len(p), term, np.uint32))
        if not parts:
            return Hits.empty()
        allp = np.concatenate(parts)
        allk = np.concatenate(parts_keys)
        nos = allp["no"].astype(np.int64)
        dead = np.array(sorted(int(n) for n in (lib.dead or ())), dtype=np.int64)
        live = (nos <= int(lib.committed)) & ~np.isin(nos, dead)
        allp, allk, nos = allp[live], allk[live], nos[live]
        if max_postings is not None and len(allk):
            terms, inverse, counts = np.unique(allk, return_inverse=True, return_counts=True)
            keep = within_budget(terms, counts, max_postings)[inverse.reshape(-1)]
            allp, allk, nos = allp[keep], allk[keep], nos[keep]
        if not len(nos):
            return Hits.empty()
        names = self._directory(uid, np.unique(nos).tolist())
        return build_hits(allk, nos, allp["t"], names)

    def lookup_visual(self, library: str, keys: np.ndarray, max_postings: int | None = None) -> Hits:
        return self._lookup("visual", library, keys, max_postings)

    def lookup_audio(self, library: str, keys: np.ndarray, max_postings: int | None = None) -> Hits:
        return self._lookup("audio", library, keys, max_postings)

    # -- jobs (the cloud pipeline's records) -------------------------------------------------------
    def put_job(self, job_id: str, state: str, *, kind: str | None = None, library: str | None = None,
                input_key: str | None = None, result_location: str | None = None, error_code: str | None = None,
                created_at: str | None = None) -> None:
        """Create or move a job record; ``created_at`` is kept from the first write."""
        rec = job_record(job_id, state, kind=kind, library=library, input_key=input_key,
                         result_location=result_location, error_code=error_code, created_at=created_at, old=None)
        J = self._conn(self.Jobs) and self.Jobs
        actions = [J.state.set(state), J.updated_at.set(rec["updated_at"]),
                   J.created_at.set(J.created_at | rec["created_at"]), J.scope.set(_JOBS_SCOPE)]
        actions.append(J.kind.set(kind) if kind is not None else J.kind.set(J.kind | "fingerprint"))
        for attr, value in (("library", library), ("input_key", input_key), ("result_location", result_location),
                            ("error_code", error_code)):
            if value is not None:
                actions.append(getattr(J, attr).set(str(value)))
        J(job_id).update(actions=actions)

    @staticmethod
    def _job(item: _JobItem) -> dict:
        rec = {k: getattr(item, k) for k in ("job_id", "kind", "state", "library", "input_key", "created_at",
                                             "updated_at", "result_location", "error_code")}
        rec["kind"] = rec["kind"] or "fingerprint"
        return rec

    def get_job(self, job_id: str) -> dict | None:
        validate_job_id(job_id)
        J = self._conn(self.Jobs) and self.Jobs
        try:
            item = J.get(job_id, consistent_read=self.consistent_reads)
        except DoesNotExist:
            return None
        return self._job(item)

    def list_jobs(self, library: str | None = None, state: str | None = None, since: str | None = None,
                  until: str | None = None, limit: int = 100, cursor: str | None = None) -> JobPage:
        """Newest first, from the ``library-created_at`` or ``all-created_at`` index.

        ``since`` is inclusive, ``until`` exclusive.  Jobs created in the same
        millisecond come in the index's order.
        """
        library, state, since, until, limit, after = job_filters(library, state, since, until, limit, cursor)
        J = self._conn(self.Jobs) and self.Jobs
        index, hash_name, hash_value = ((J.by_library, "library", library) if library is not None
                                        else (J.by_time, "scope", _JOBS_SCOPE))
        created = type(index).created_at
        range_condition = None
        if since is not None and until is not None:
            range_condition = created.between(since, until)
        elif since is not None:
            range_condition = created >= since
        elif until is not None:
            range_condition = created < until
        condition = J.state == state if state is not None else None
        start = None
        if after is not None:
            start = {"job_id": {"S": after[1]}, "created_at": {"S": after[0]}, hash_name: {"S": hash_value}}
        try:
            found = index.query(hash_value, range_key_condition=range_condition, filter_condition=condition,
                                scan_index_forward=False, last_evaluated_key=start, page_size=min(1000, limit + 1))
            items = []
            for item in found:
                if until is not None and item.created_at >= until:
                    continue  # between is inclusive at both ends; until is not (keys cannot be filtered)
                items.append(self._job(item))
                if len(items) > limit:
                    break
        except PynamoDBException as exc:
            raise _internal(exc) from exc
        more = len(items) > limit
        items = items[:limit]
        return JobPage(items, encode_job_cursor(items[-1]["created_at"], items[-1]["job_id"]) if more else None)

    def close(self) -> None:
        self._closed = True

    def __repr__(self) -> str:
        return f"DynamoDBStore({self.config.libraries_table!r}, ...)"


_CLIENTS: dict[tuple, object] = {}
_CLIENTS_LOCK = threading.Lock()


def _share_client(conn) -> None:
    """One botocore client per (region, endpoint, credentials) for the whole process.

    pynamodb makes a client per model class, and a client costs ~0.2 s of
    service-model loading; botocore clients are thread-safe, so one serves all.
    """
    key = (conn.region, conn.host, os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_PROFILE"))
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            _CLIENTS[key] = conn.client
        else:
            conn._client = client


def _conditional_failed(exc: Exception) -> bool:
    cause = getattr(exc, "cause_response_code", None)
    if cause is None and getattr(exc, "cause", None) is not None:
        cause = getattr(exc.cause, "response", {}).get("Error", {}).get("Code")
    return cause == "ConditionalCheckFailedException"


def _internal(exc: Exception) -> LibraryError:
    return LibraryError(INTERNAL, f"DynamoDB error: {exc}")


__all__ = ["DynamoDBConfig", "DynamoDBStore", "RequestStats", "UpdateError"]
