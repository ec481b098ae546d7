"""Fingerprint libraries: the :class:`LibraryStore` port and its adapters.

Pick an adapter with :func:`open_store` and a store spec:

* ``""`` / ``None``: SQLite at ``<home>/library.sqlite3`` (the default);
* ``sqlite:PATH``: SQLite at ``PATH`` (``~`` expanded; ``sqlite::memory:``
  for a throw-away database);
* ``memory:``: an in-process store that is gone when the process ends;
* ``dynamodb:PREFIX``: DynamoDB tables ``PREFIX-libraries``, ``PREFIX-files``,
  ``PREFIX-visual``, ``PREFIX-audio`` and ``PREFIX-jobs`` (each overridable by
  ``MEDIADNA_TABLE_<NAME>``; ``MEDIADNA_DYNAMODB_ENDPOINT`` for a local server).
  Needs the ``aws`` extra; pynamodb is imported only when this is used.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ..errors import INVALID_ARGUMENT, MediaDnaError
from .base import (
    DEFAULT_MIN_SEGMENT_SECONDS,
    DEFAULT_THRESHOLD,
    FilePage,
    FileRecord,
    Hits,
    Library,
    LibraryStore,
    Postings,
    validate_library_name,
    validate_primary_key,
)
from .memory import MemoryStore
from .sqlite import SQLiteStore

__all__ = [
    "DEFAULT_MIN_SEGMENT_SECONDS",
    "DEFAULT_THRESHOLD",
    "DEFAULT_DB_NAME",
    "FilePage",
    "FileRecord",
    "Hits",
    "Library",
    "LibraryStore",
    "MemoryStore",
    "Postings",
    "SQLiteStore",
    "open_store",
    "validate_library_name",
    "validate_primary_key",
]

#: File name of the default SQLite library inside the mediadna home.
DEFAULT_DB_NAME = "library.sqlite3"


def _open_sqlite(rest: str, home: Path) -> LibraryStore:
    if not rest:
        return SQLiteStore(home / DEFAULT_DB_NAME)
    return SQLiteStore(rest if rest == ":memory:" else os.path.expanduser(rest))


def _open_memory(rest: str, home: Path) -> LibraryStore:
    if rest:
        raise MediaDnaError(INVALID_ARGUMENT, f"store spec 'memory:' takes nothing after the colon, got {rest!r}")
    return MemoryStore()


def _open_dynamodb(rest: str, home: Path) -> LibraryStore:
    from .dynamodb import DynamoDBConfig, DynamoDBStore  # lazy: the embedded product needs no AWS SDK

    store = DynamoDBStore(DynamoDBConfig.from_prefix(rest))
    if os.environ.get("MEDIADNA_DYNAMODB_CREATE_TABLES") == "1":
        store.create_tables()
    return store


#: scheme -> opener(text after "scheme:", home).  Cloud adapters import their
#: SDK inside the opener, so the domain never imports it.
_OPENERS: dict[str, Callable[[str, Path], LibraryStore]] = {
    "sqlite": _open_sqlite,
    "memory": _open_memory,
    "dynamodb": _open_dynamodb,
}


def open_store(spec: str | None, home: str | os.PathLike) -> LibraryStore:
    """Open the library store named by ``spec`` (see the module docstring)."""
    home_path = Path(home).expanduser()
    if not spec:
        return _open_sqlite("", home_path)
    scheme, colon, rest = spec.partition(":")
    opener = _OPENERS.get(scheme) if colon else None
    if opener is None:
        known = ", ".join(f"{name}:" for name in _OPENERS)
        raise MediaDnaError(
            INVALID_ARGUMENT, f"unknown store {spec!r}: expected one of {known} (or nothing for the default)"
        )
    return opener(rest, home_path)
