"""Backfill imports: many existing files into a library, with exact progress (no AWS in here).

An import is planned from a listing (a folder, an S3 prefix) or a manifest
(JSON Lines, CSV or a JSON array of keys, each with an optional primary key),
recorded in the library store with its counters, and then every item goes
through :func:`import_item` once: in-process (``mediadna import``) or one
Lambda task per item under a Step Functions distributed map
(``infra/workflow/import.asl.json``).

Item outcomes and their reason codes:

=========  ==================================================================
done       fingerprinted and stored (``stored``)
skipped    ``already_in`` (the primary key is in the library), ``same_bytes``
           (a file with the same SHA-256 is), ``duplicate`` (save type
           ``save`` found a copy)
failed     the error code of the input (``not_media``, ``corrupt_media``,
           ``input_too_long``, ``bad_fingerprint``...) with its message
=========  ==================================================================

A re-run (a new import over the same items) skips what is already in before
reading any media.  The default save type is ``onlysave``: a backfill loads
an archive of references, and ``onlysave`` stores without matching, so items
never wait for the library's writer lock and thousands run in parallel
(``save``, store-unless-a-copy, is accepted but serialises the commits of a
library; identical bytes are skipped by SHA-256 either way).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import ContextManager, Protocol

from .errors import FILE_NOT_FOUND, IMPORT_NOT_FOUND, INTERNAL, INVALID_ARGUMENT, LibraryBusyError, LibraryError, MediaDnaError, MediaError, TOO_LONG
from .fingerprint import Fingerprint, looks_like_fingerprint, read_fingerprint
from .store.base import LibraryStore, validate_library_name, validate_primary_key
from .store.import_records import validate_import_id

#: Save types an import accepts (``nosave`` would import nothing).
IMPORT_SAVE_TYPES = ("onlysave", "forcesave", "save")
DEFAULT_IMPORT_SAVE_TYPE = "onlysave"
#: An item is fingerprinted whole in one task; longer media fail with
#: ``input_too_long`` (upload those to the input bucket: the segmented workflow).
DEFAULT_MAX_ITEM_SECONDS = 3600.0
#: The most items one import plans (a manifest of this many keys is ~100 MB).
MAX_ITEMS = 1_000_000
#: Default cap of items processed at the same time (cloud); the deployment's setting caps it.
DEFAULT_MAX_CONCURRENCY = 40


@dataclass(frozen=True)
class ImportItem:
    """One file to import: where its bytes are (a path or an object key) and its library key."""

    key: str
    primary_key: str

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ImportItem":
        if not isinstance(data, dict) or not isinstance(data.get("key"), str) or not data["key"]:
            raise MediaDnaError(INVALID_ARGUMENT, f"malformed import item: {data!r}"[:300])
        return cls(data["key"], data.get("primary_key") or data["key"])


@dataclass(frozen=True)
class ItemOutcome:
    item: str
    primary_key: str
    outcome: str  # done | skipped | failed
    code: str | None = None
    message: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def new_import_id() -> str:
    """``imp-<UTC time>-<random>``: sortable, and a valid execution name."""
    return f"imp-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def check_save_type(save_type: str) -> str:
    if save_type not in IMPORT_SAVE_TYPES:
        raise MediaDnaError(INVALID_ARGUMENT, f"an import's save type is one of {', '.join(IMPORT_SAVE_TYPES)}, not {save_type!r}")
    return save_type


# -- planning -------------------------------------------------------------------------------
def items_from_listing(keys: Iterable[str], prefix: str = "") -> list[ImportItem]:
    """A listing's keys (object keys under ``prefix``, relative paths) as items; the primary
    key is the key after the prefix.  Folder markers (``.../``) and empty names are left out."""
    out: list[ImportItem] = []
    for key in keys:
        if not key or key.endswith("/"):
            continue
        rest = key[len(prefix):] if prefix and key.startswith(prefix) else key
        out.append(ImportItem(key, rest.lstrip("/") or key))
        if len(out) > MAX_ITEMS:
            raise MediaDnaError(INVALID_ARGUMENT, f"more than {MAX_ITEMS} items: split the import")
    return _checked(out)


def read_manifest(data: bytes | str) -> list[ImportItem]:
    """Items of a manifest: JSON Lines (``"key"`` or ``{"key": ..., "primary_key": ...}``
    per line), a JSON array of those, or CSV (``key[,primary_key]``, optional header
    ``key,primary_key``).  The format is read from the content."""
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data.lstrip("\ufeff")
    stripped = text.strip()
    rows: list[tuple[int, object]] = []
    if stripped.startswith("["):
        try:
            doc = json.loads(stripped)
        except ValueError as exc:
            raise MediaDnaError(INVALID_ARGUMENT, f"manifest: not valid JSON: {exc}") from None
        rows = list(enumerate(doc, 1)) if isinstance(doc, list) else []
    elif stripped[:1] in ("{", '"'):
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append((n, json.loads(line)))
                except ValueError as exc:
                    raise MediaDnaError(INVALID_ARGUMENT, f"manifest line {n}: not valid JSON: {exc}") from None
    else:
        for n, row in enumerate(csv.reader(io.StringIO(text)), 1):
            cells = [c.strip() for c in row]
            if not any(cells) or (n == 1 and cells[0].lower() == "key"):
                continue
            rows.append((n, {"key": cells[0], "primary_key": cells[1] if len(cells) > 1 and cells[1] else None}))
    items = []
    for n, row in rows:
        if isinstance(row, str):
            row = {"key": row}
        if not isinstance(row, dict) or not isinstance(row.get("key"), str) or not row["key"].strip():
            raise MediaDnaError(INVALID_ARGUMENT, f"manifest line {n}: needs a key")
        pk = row.get("primary_key")
        if pk is not None and not isinstance(pk, str):
            raise MediaDnaError(INVALID_ARGUMENT, f"manifest line {n}: primary_key must be a string")
        items.append(ImportItem(row["key"], pk or row["key"]))
        if len(items) > MAX_ITEMS:
            raise MediaDnaError(INVALID_ARGUMENT, f"more than {MAX_ITEMS} items: split the import")
    if not items:
        raise MediaDnaError(INVALID_ARGUMENT, "the manifest lists no items")
    return _checked(items)


def _checked(items: list[ImportItem]) -> list[ImportItem]:
    """Valid primary keys, each once (a key listed twice with the same source counts once)."""
    seen: dict[str, str] = {}
    out = []
    for it in items:
        try:
            validate_primary_key(it.primary_key)
        except MediaDnaError as exc:
            raise MediaDnaError(INVALID_ARGUMENT, f"item {it.key!r}: {exc.message}") from None
        if it.primary_key in seen:
            if seen[it.primary_key] != it.key:
                raise MediaDnaError(INVALID_ARGUMENT, f"primary key {it.primary_key!r} is listed for two items")
            continue
        seen[it.primary_key] = it.key
        out.append(it)
    return out


def items_from_folder(folder: str | os.PathLike) -> list[ImportItem]:
    """Every file under ``folder`` (hidden files left out), primary key = path relative to it."""
    root = Path(folder)
    keys = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                keys.append((Path(dirpath) / name).relative_to(root).as_posix())
    return [ImportItem(str(root / it.key), it.primary_key) for it in _checked([ImportItem(k, k) for k in keys])]


def items_from_manifest_file(path: str | os.PathLike) -> list[ImportItem]:
    """A local manifest; relative keys are paths relative to the manifest's folder."""
    base = Path(path).parent
    return [ImportItem(it.key if os.path.isabs(it.key) else str(base / it.key), it.primary_key)
            for it in read_manifest(Path(path).read_bytes())]


# -- one item -------------------------------------------------------------------------------
def read_item(path: str | os.PathLike, *, sha256: str | None = None, max_seconds: float | None = DEFAULT_MAX_ITEM_SECONDS) -> Fingerprint:
    """The item's fingerprint: a fingerprint file (``.mdna`` binary or JSON, sniffed by
    content) is read as is; media are fingerprinted whole."""
    from . import decode as D
    from .extract import media2fingerprint

    with open(path, "rb") as fh:
        head = fh.read(64)
    if looks_like_fingerprint(head):
        return read_fingerprint(Path(path).read_bytes())
    if max_seconds:
        info = D.probe(path)
        if info.duration > max_seconds:
            raise MediaError(TOO_LONG, f"lasts {info.duration:.0f} s; an import item may last {max_seconds:.0f} s "
                                       "(upload longer media to the input bucket instead)")
    return media2fingerprint(path, sha256=sha256)


def import_item(
    store: LibraryStore,
    library: str,
    item: ImportItem,
    open_input: Callable[[ImportItem], ContextManager[str]],
    *,
    save_type: str = DEFAULT_IMPORT_SAVE_TYPE,
    max_seconds: float | None = DEFAULT_MAX_ITEM_SECONDS,
    metadata: dict | None = None,
) -> ItemOutcome:
    """Import one item: skip what is in already, else fingerprint and commit.

    ``open_input(item)`` yields a local path of the item's bytes (a download in
    the cloud).  Bad input ends as ``failed`` with its code; errors worth a
    retry (``library_busy``, an adapter's network error) are raised.
    """
    from . import decode as D
    from .pipeline import match_and_commit

    def out(outcome: str, code: str | None = None, message: str | None = None) -> ItemOutcome:
        return ItemOutcome(item.key, item.primary_key, outcome, code, message)

    try:
        check_save_type(save_type)
        key = validate_primary_key(item.primary_key)
        lib = store.get_library(library)
        try:
            store.get_file(library, key)
            return out("skipped", "already_in", f"{key!r} is in library {library!r}")
        except LibraryError as exc:
            if exc.code != FILE_NOT_FOUND:
                raise
        with open_input(item) as path:
            digest = D.sha256_file(path)
            same = store.files_by_sha256(library, digest)
            if same:
                return out("skipped", "same_bytes", f"same bytes as {same[0].primary_key!r}")
            fp = read_item(path, sha256=digest, max_seconds=max_seconds)
        if fp.sha256 and fp.sha256 != digest:  # a fingerprint file: its media's hash decides
            same = store.files_by_sha256(library, fp.sha256)
            if same:
                return out("skipped", "same_bytes", f"same media as {same[0].primary_key!r}")
        fp.source = fp.source or PurePosixPath(item.key).name
        decision = match_and_commit(store, lib, fp, key, save_type, metadata)
        if decision.stored:
            return out("done", "stored")
        best = next((m.primary_key for m in decision.matches if m.duplicate), None)
        return out("skipped", "duplicate", f"a copy of {best!r}" if best else "a copy of a library file")
    except LibraryBusyError:
        raise
    except MediaDnaError as exc:
        return out("failed", exc.code, exc.message)


def record_outcome(store: LibraryStore, import_id: str, outcome: ItemOutcome) -> bool:
    """Count the outcome on the import's record (False: this item was counted already)."""
    return store.add_import_progress(import_id, outcome.item, outcome.outcome, code=outcome.code,
                                     message=outcome.message)


def run_item(
    store: LibraryStore,
    import_id: str,
    library: str,
    item: dict,
    open_input: Callable[[ImportItem], ContextManager[str]],
    *,
    save_type: str = DEFAULT_IMPORT_SAVE_TYPE,
    max_seconds: float | None = DEFAULT_MAX_ITEM_SECONDS,
    error: MediaDnaError | None = None,
) -> dict:
    """The workflow's item task: import one item and count it (``counted`` is False for
    a repeat).  With ``error`` (the item task failed past its retries) the item is
    counted ``failed`` with that reason instead."""
    it = ImportItem.from_dict(item)
    if error is not None:
        outcome = ItemOutcome(it.key, it.primary_key, "failed", error.code, error.message[:500])
    else:
        outcome = import_item(store, library, it, open_input, save_type=save_type, max_seconds=max_seconds,
                              metadata={"import": import_id})
    return {**outcome.to_dict(), "counted": record_outcome(store, import_id, outcome)}


# -- an import, in-process -------------------------------------------------------------------
@contextlib.contextmanager
def local_file(item: ImportItem) -> Iterator[str]:
    if not os.path.isfile(item.key):
        raise MediaError("input_not_found", f"no such file: {item.key}")
    yield item.key


def run_import(
    store: LibraryStore,
    library: str,
    items: list[ImportItem],
    *,
    source: str = "",
    save_type: str = DEFAULT_IMPORT_SAVE_TYPE,
    import_id: str | None = None,
    open_input: Callable[[ImportItem], ContextManager[str]] = local_file,
    max_seconds: float | None = DEFAULT_MAX_ITEM_SECONDS,
    on_item: Callable[[ItemOutcome], None] | None = None,
) -> dict:
    """The embedded import: every item in this process, progress recorded as in the cloud.

    A failing item never stops the others; an unexpected error is that item's
    ``internal_error``.  Returns the finished import record.
    """
    check_save_type(save_type)
    store.get_library(library)
    import_id = validate_import_id(import_id or new_import_id())
    if store.get_import(import_id) is not None:
        raise MediaDnaError(INVALID_ARGUMENT, f"import {import_id!r} exists already; choose another id")
    store.put_import(import_id, "running", library=library, source=source, save_type=save_type, total=len(items))
    for item in items:
        try:
            outcome = import_item(store, library, item, open_input, save_type=save_type, max_seconds=max_seconds,
                                  metadata={"import": import_id})
        except Exception as exc:  # noqa: BLE001 - one item's problem, reported as its failure
            outcome = ItemOutcome(item.key, item.primary_key, "failed", INTERNAL, f"{type(exc).__name__}: {exc}"[:500])
        record_outcome(store, import_id, outcome)
        if on_item:
            on_item(outcome)
    return store.put_import(import_id, "finished")


# -- an import, in the cloud -------------------------------------------------------------------
class ImportLauncher(Protocol):
    """What starting a cloud import needs (``functions/common/imports.py`` on S3 + Step Functions)."""

    def list_keys(self, bucket: str, prefix: str) -> Iterable[str]: ...
    def read_object(self, bucket: str, key: str) -> bytes: ...
    def write_plan(self, import_id: str, items: list[dict]) -> dict: ...  # -> {"Bucket": ..., "Key": ...}
    def start(self, import_id: str, payload: dict) -> bool: ...  # False: that execution exists already


def parse_s3_url(url: str) -> tuple[str, str]:
    if not isinstance(url, str) or not url.startswith("s3://"):
        raise MediaDnaError(INVALID_ARGUMENT, f"not an s3://bucket/key URL: {url!r}"[:300])
    bucket, _, key = url[5:].partition("/")
    if not bucket:
        raise MediaDnaError(INVALID_ARGUMENT, f"not an s3://bucket/key URL: {url!r}"[:300])
    return bucket, key


def start_import(
    store: LibraryStore,
    launcher: ImportLauncher,
    library: str,
    *,
    prefix: str | None = None,
    manifest: str | None = None,
    save_type: str = DEFAULT_IMPORT_SAVE_TYPE,
    import_id: str | None = None,
    max_concurrency: int | None = None,
    concurrency_cap: int = DEFAULT_MAX_CONCURRENCY,
    allowed_buckets: Iterable[str] | None = None,
) -> dict:
    """Plan and start a cloud import over ``prefix`` (``s3://bucket/folder/``) or a
    ``manifest`` (``s3://bucket/list.jsonl|csv|json``; its keys are in the same bucket).

    The plan (every item with its primary key) is written once and the
    workflow's distributed map reads it, so the total is exact before the first
    item runs.  The execution name is the import id: starting an id twice is
    refused.  Returns the import record (state ``running``; ``finished`` at once
    for an empty plan).  For the HTTP API: ``POST /libraries/{id}/imports``.
    """
    validate_library_name(library)
    check_save_type(save_type)
    store.get_library(library)
    if (prefix is None) == (manifest is None):
        raise MediaDnaError(INVALID_ARGUMENT, "give either a prefix or a manifest")
    bucket, key = parse_s3_url(prefix if prefix is not None else manifest)
    if allowed_buckets is not None and bucket not in set(allowed_buckets):
        raise MediaDnaError(INVALID_ARGUMENT, f"imports may read only from {', '.join(sorted(allowed_buckets))}")
    import_id = validate_import_id(import_id or new_import_id())
    if store.get_import(import_id) is not None:
        raise MediaDnaError(INVALID_ARGUMENT, f"import {import_id!r} exists already")
    if prefix is not None:
        items = items_from_listing(launcher.list_keys(bucket, key), key)
    else:
        items = read_manifest(launcher.read_object(bucket, key))
    cap = max(1, int(concurrency_cap))
    concurrency = min(cap, int(max_concurrency)) if max_concurrency else cap
    source = prefix if prefix is not None else manifest
    store.put_import(import_id, "planned", library=library, source=source, save_type=save_type, total=len(items))
    if not items:
        return store.put_import(import_id, "finished")
    plan = launcher.write_plan(import_id, [it.to_dict() for it in items])
    payload = {"import": {"import_id": import_id, "library": library, "save_type": save_type, "bucket": bucket},
               "plan": plan, "max_concurrency": concurrency}
    if not launcher.start(import_id, payload):
        raise MediaDnaError(INVALID_ARGUMENT, f"import {import_id!r} was started already")
    return store.put_import(import_id, "running")


def get_import(store: LibraryStore, import_id: str, *, failures: int = 100, cursor: str | None = None) -> dict:
    """The import's record with its failed items (``failures`` of them, from ``cursor``).
    For the HTTP API: ``GET /libraries/{id}/imports/{import_id}``."""
    rec = store.get_import(validate_import_id(import_id))
    if rec is None:
        raise LibraryError(IMPORT_NOT_FOUND, f"import {import_id!r} does not exist")
    listed, next_cursor = store.list_import_failures(import_id, limit=failures, cursor=cursor)
    counted = rec["done"] + rec["skipped"] + rec["failed"]
    return {**rec, "processed": counted, "failures": listed, "failures_cursor": next_cursor}


def finish_import(store: LibraryStore, import_id: str, error: MediaDnaError | None = None) -> dict:
    """The workflow's last step: ``finished`` (or ``failed`` with why, when the run itself broke)."""
    if error is not None:
        return store.put_import(import_id, "failed", error=str(error))
    return store.put_import(import_id, "finished")
