"""Import records: the progress of a backfill import, in every store.

An import (see :mod:`mediadna.imports`) has one record with its counters
(``total``, ``done``, ``skipped``, ``failed``) and one outcome per item; the
failed items are listed with their reason in the order they failed.  The
first outcome reported for an item wins: a retried item task (Step Functions
retries a Lambda that timed out after recording) never counts twice, so the
counters stay exact.

Each adapter gets the four methods from a mixin here:

* ``put_import(import_id, state, *, library, source, save_type, total, error)``
  -> record: create or move the record (counters untouched, ``created_at``
  kept from the first write);
* ``get_import(import_id)`` -> record or ``None``;
* ``add_import_progress(import_id, item, outcome, *, code, message)`` -> bool:
  count one item's outcome (``done`` / ``skipped`` / ``failed``) atomically;
  ``False`` if that item was counted already;
* ``list_import_failures(import_id, limit, cursor)`` -> ``(failures, next_cursor)``.

Storage: SQLite tables ``imports`` and ``import_items`` (created on first use:
an additive migration that older versions ignore); in DynamoDB items of the
jobs table whose ``job_id`` starts with ``import#`` and whose attributes are
all ``im_*`` (so they never appear in the jobs indexes); in memory, dicts.
"""

from __future__ import annotations

import hashlib
import re

from ..errors import IMPORT_NOT_FOUND, INVALID_ARGUMENT, LibraryError
from .base import utc_now, validate_library_name, validate_limit

#: planned (record made, workflow not started) -> running -> finished | failed (the run itself broke).
IMPORT_STATES = ("planned", "running", "finished", "failed")
IMPORT_OUTCOMES = ("done", "skipped", "failed")
IMPORT_FIELDS = ("import_id", "library", "source", "save_type", "state", "total", "done", "skipped", "failed",
                 "created_at", "updated_at", "error")
#: Reasons are cut to this many characters.
MAX_REASON = 500
MAX_ITEM_KEY = 1024
_IMPORT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


def validate_import_id(import_id: object) -> str:
    """Import ids are Step Functions execution names: 1-80 of ``A-Za-z0-9_-``."""
    if not isinstance(import_id, str) or not _IMPORT_ID_RE.fullmatch(import_id):
        raise LibraryError(INVALID_ARGUMENT, "invalid import id: 1-80 characters of letters, digits, '_' and '-'")
    return import_id


def _check_state(state: object) -> str:
    if state not in IMPORT_STATES:
        raise LibraryError(INVALID_ARGUMENT, f"invalid import state {state!r}; use one of {', '.join(IMPORT_STATES)}")
    return str(state)


def _check_item(import_id: str, item: object, outcome: object, code: object, message: object) -> tuple[str, str, str | None, str | None]:
    validate_import_id(import_id)
    if not isinstance(item, str) or not item or len(item) > MAX_ITEM_KEY:
        raise LibraryError(INVALID_ARGUMENT, f"invalid import item: must be 1-{MAX_ITEM_KEY} characters")
    if outcome not in IMPORT_OUTCOMES:
        raise LibraryError(INVALID_ARGUMENT, f"invalid outcome {outcome!r}; use one of {', '.join(IMPORT_OUTCOMES)}")
    return item, str(outcome), (str(code)[:100] if code else None), (str(message)[:MAX_REASON] if message else None)


def _not_found(import_id: str) -> LibraryError:
    return LibraryError(IMPORT_NOT_FOUND, f"import {import_id!r} does not exist")


def _merge(old: dict | None, import_id: str, state: str, **fields) -> dict:
    """The record ``put_import`` stores: the old one moved on."""
    now = utc_now()
    rec = dict(old) if old else {**{f: None for f in IMPORT_FIELDS}, "done": 0, "skipped": 0, "failed": 0,
                                 "created_at": now}
    rec.update(import_id=import_id, state=_check_state(state), updated_at=now)
    if fields.get("library") is not None:
        validate_library_name(fields["library"])
    if fields.get("total") is not None and (isinstance(fields["total"], bool) or not isinstance(fields["total"], int)
                                            or fields["total"] < 0):
        raise LibraryError(INVALID_ARGUMENT, "total must be an integer >= 0")
    for name, value in fields.items():
        if value is not None:
            rec[name] = value if name == "total" else str(value)[: MAX_REASON if name == "error" else 2048]
    return rec


def _cursor(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not isinstance(cursor, str) or not re.fullmatch(r"f1\.\d{1,12}", cursor):
        raise LibraryError(INVALID_ARGUMENT, "invalid cursor")
    return int(cursor[3:])


def _next(page: list[dict], failed: int) -> str | None:
    return f"f1.{page[-1]['seq']}" if page and page[-1]["seq"] < failed else None


# -- memory ------------------------------------------------------------------------------
class MemoryImportRecords:
    """For :class:`~mediadna.store.memory.MemoryStore` (uses its ``_lock``)."""

    def _import_state(self) -> dict:
        with self._lock:
            if not hasattr(self, "_imports"):
                self._imports: dict[str, dict] = {}  # id -> {"record", "items": {key: outcome}, "failures": [...]}
            return self._imports

    def put_import(self, import_id: str, state: str, *, library: str | None = None, source: str | None = None,
                   save_type: str | None = None, total: int | None = None, error: str | None = None) -> dict:
        validate_import_id(import_id)
        with self._lock:
            entry = self._import_state().setdefault(import_id, {"record": None, "items": {}, "failures": []})
            entry["record"] = _merge(entry["record"], import_id, state, library=library, source=source,
                                     save_type=save_type, total=total, error=error)
            return dict(entry["record"])

    def get_import(self, import_id: str) -> dict | None:
        validate_import_id(import_id)
        with self._lock:
            entry = self._import_state().get(import_id)
            return dict(entry["record"]) if entry else None

    def add_import_progress(self, import_id: str, item: str, outcome: str, *, code: str | None = None,
                            message: str | None = None) -> bool:
        item, outcome, code, message = _check_item(import_id, item, outcome, code, message)
        with self._lock:
            entry = self._import_state().get(import_id)
            if entry is None:
                raise _not_found(import_id)
            if item in entry["items"]:
                return False
            entry["items"][item] = outcome
            rec = entry["record"]
            rec[outcome] += 1
            rec["updated_at"] = utc_now()
            if outcome == "failed":
                entry["failures"].append({"item": item, "code": code, "message": message, "seq": rec["failed"]})
            return True

    def list_import_failures(self, import_id: str, limit: int = 100, cursor: str | None = None) -> tuple[list[dict], str | None]:
        validate_import_id(import_id)
        limit, after = validate_limit(limit), _cursor(cursor)
        with self._lock:
            entry = self._import_state().get(import_id)
            if entry is None:
                raise _not_found(import_id)
            page = [dict(f) for f in entry["failures"] if f["seq"] > after][:limit]
            return page, _next(page, entry["record"]["failed"])


# -- SQLite ------------------------------------------------------------------------------
_SQLITE_TABLES = (
    """CREATE TABLE IF NOT EXISTS imports (
        id TEXT PRIMARY KEY,
        library TEXT, source TEXT, save_type TEXT, state TEXT NOT NULL, total INTEGER,
        done INTEGER NOT NULL DEFAULT 0, skipped INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL, error TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS import_items (
        import_id TEXT NOT NULL,
        item TEXT NOT NULL,
        outcome TEXT NOT NULL,
        code TEXT, message TEXT,
        seq INTEGER,
        PRIMARY KEY (import_id, item)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS import_failures ON import_items (import_id, seq) WHERE seq IS NOT NULL",
)
_SQLITE_COLUMNS = ("id", "library", "source", "save_type", "state", "total", "done", "skipped", "failed",
                   "created_at", "updated_at", "error")


class SQLiteImportRecords:
    """For :class:`~mediadna.store.sqlite.SQLiteStore` (uses its ``_tx``)."""

    def _import_tx(self, write: bool = False):
        if not getattr(self, "_import_tables_ready", False):
            with self._tx(write=True) as conn:  # additive migration: tables older versions never read
                for statement in _SQLITE_TABLES:
                    conn.execute(statement)
            self._import_tables_ready = True
        return self._tx(write=write)

    @staticmethod
    def _import_row(conn, import_id: str) -> dict | None:
        row = conn.execute(f"SELECT {', '.join(_SQLITE_COLUMNS)} FROM imports WHERE id = ?", (import_id,)).fetchone()
        if row is None:
            return None
        return dict(zip(IMPORT_FIELDS, row))

    def put_import(self, import_id: str, state: str, *, library: str | None = None, source: str | None = None,
                   save_type: str | None = None, total: int | None = None, error: str | None = None) -> dict:
        validate_import_id(import_id)
        with self._import_tx(write=True) as conn:
            rec = _merge(self._import_row(conn, import_id), import_id, state, library=library, source=source,
                         save_type=save_type, total=total, error=error)
            conn.execute(
                f"INSERT OR REPLACE INTO imports ({', '.join(_SQLITE_COLUMNS)}) VALUES ({', '.join('?' * 12)})",
                tuple(rec[f] for f in IMPORT_FIELDS),
            )
            return rec

    def get_import(self, import_id: str) -> dict | None:
        validate_import_id(import_id)
        with self._import_tx() as conn:
            return self._import_row(conn, import_id)

    def add_import_progress(self, import_id: str, item: str, outcome: str, *, code: str | None = None,
                            message: str | None = None) -> bool:
        item, outcome, code, message = _check_item(import_id, item, outcome, code, message)
        with self._import_tx(write=True) as conn:
            if conn.execute("SELECT 1 FROM imports WHERE id = ?", (import_id,)).fetchone() is None:
                raise _not_found(import_id)
            if conn.execute("SELECT 1 FROM import_items WHERE import_id = ? AND item = ?", (import_id, item)).fetchone():
                return False
            conn.execute(f"UPDATE imports SET {outcome} = {outcome} + 1, updated_at = ? WHERE id = ?",
                         (utc_now(), import_id))
            seq = None
            if outcome == "failed":
                seq = conn.execute("SELECT failed FROM imports WHERE id = ?", (import_id,)).fetchone()[0]
            conn.execute("INSERT INTO import_items (import_id, item, outcome, code, message, seq) VALUES (?, ?, ?, ?, ?, ?)",
                         (import_id, item, outcome, code, message, seq))
            return True

    def list_import_failures(self, import_id: str, limit: int = 100, cursor: str | None = None) -> tuple[list[dict], str | None]:
        validate_import_id(import_id)
        limit, after = validate_limit(limit), _cursor(cursor)
        with self._import_tx() as conn:
            rec = self._import_row(conn, import_id)
            if rec is None:
                raise _not_found(import_id)
            rows = conn.execute(
                "SELECT item, code, message, seq FROM import_items WHERE import_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (import_id, after, limit),
            ).fetchall()
        page = [{"item": r[0], "code": r[1], "message": r[2], "seq": r[3]} for r in rows]
        return page, _next(page, rec["failed"])


# -- DynamoDB ----------------------------------------------------------------------------
def _row_model(config):
    """A pynamodb model of the jobs table for import rows (imported only with the DynamoDB store)."""
    from pynamodb.attributes import NumberAttribute, UnicodeAttribute
    from pynamodb.models import Model

    from .dynamodb import _bind

    class _ImportRow(Model):
        class Meta:
            abstract = True

        job_id = UnicodeAttribute(hash_key=True)  # import#<id> | import#<id>#item#<hash> | import#<id>#failure#<seq>
        im_kind = UnicodeAttribute(null=True)
        im_library = UnicodeAttribute(null=True)
        im_source = UnicodeAttribute(null=True)
        im_save_type = UnicodeAttribute(null=True)
        im_state = UnicodeAttribute(null=True)
        im_total = NumberAttribute(null=True)
        im_done = NumberAttribute(null=True)
        im_skipped = NumberAttribute(null=True)
        im_failed = NumberAttribute(null=True)
        im_created = UnicodeAttribute(null=True)
        im_updated = UnicodeAttribute(null=True)
        im_error = UnicodeAttribute(null=True)
        im_item = UnicodeAttribute(null=True)
        im_outcome = UnicodeAttribute(null=True)
        im_code = UnicodeAttribute(null=True)
        im_message = UnicodeAttribute(null=True)
        im_seq = NumberAttribute(null=True)

    return _bind(_ImportRow, config.jobs_table, config)


class DynamoDBImportRecords:
    """For :class:`~mediadna.store.dynamodb.DynamoDBStore`: rows in the jobs table.

    A progress report is a conditional put of the item's row (the first report
    wins), an atomic ``ADD`` on the import's counters and, for a failure, a
    row numbered by the new ``failed`` count (so failures list by number with
    BatchGetItem, no scan and no index).
    """

    @property
    def _Rows(self):
        model = getattr(self, "_import_rows", None)
        if model is None:
            model = self._import_rows = _row_model(self.config)
        self._conn(model)
        return model

    @staticmethod
    def _import_record(row) -> dict:
        return {
            "import_id": row.job_id[len("import#"):], "library": row.im_library, "source": row.im_source,
            "save_type": row.im_save_type, "state": row.im_state,
            "total": None if row.im_total is None else int(row.im_total),
            "done": int(row.im_done or 0), "skipped": int(row.im_skipped or 0), "failed": int(row.im_failed or 0),
            "created_at": row.im_created, "updated_at": row.im_updated, "error": row.im_error,
        }

    def _import_header(self, import_id: str):
        from pynamodb.exceptions import DoesNotExist

        try:
            row = self._Rows.get(f"import#{import_id}", consistent_read=True)
        except DoesNotExist:
            return None
        return row if row.im_kind == "import" else None

    def put_import(self, import_id: str, state: str, *, library: str | None = None, source: str | None = None,
                   save_type: str | None = None, total: int | None = None, error: str | None = None) -> dict:
        validate_import_id(import_id)
        R = self._Rows
        rec = _merge(None, import_id, state, library=library, source=source, save_type=save_type, total=total,
                     error=error)
        actions = [R.im_kind.set("import"), R.im_state.set(rec["state"]), R.im_updated.set(rec["updated_at"]),
                   R.im_created.set(R.im_created | rec["created_at"])]
        for name in ("done", "skipped", "failed"):
            attr = getattr(R, f"im_{name}")
            actions.append(attr.set(attr | 0))
        for name in ("library", "source", "save_type", "total", "error"):
            if rec[name] is not None:
                actions.append(getattr(R, f"im_{name}").set(rec[name]))
        row = R(f"import#{import_id}")
        row.update(actions=actions)
        return self._import_record(row)

    def get_import(self, import_id: str) -> dict | None:
        validate_import_id(import_id)
        row = self._import_header(import_id)
        return None if row is None else self._import_record(row)

    def add_import_progress(self, import_id: str, item: str, outcome: str, *, code: str | None = None,
                            message: str | None = None) -> bool:
        from pynamodb.exceptions import PutError, UpdateError

        from .dynamodb import _conditional_failed

        item, outcome, code, message = _check_item(import_id, item, outcome, code, message)
        R = self._Rows
        digest = hashlib.sha256(item.encode("utf-8")).hexdigest()[:40]
        marker = R(f"import#{import_id}#item#{digest}", im_kind="item", im_item=item, im_outcome=outcome,
                   im_code=code, im_message=message)
        try:
            marker.save(condition=R.job_id.does_not_exist())
        except PutError as exc:
            if _conditional_failed(exc):
                return False  # counted already (a retried task)
            raise
        header = R(f"import#{import_id}")
        try:
            header.update(actions=[getattr(R, f"im_{outcome}").add(1), R.im_updated.set(utc_now())],
                          condition=R.im_kind == "import")
        except UpdateError as exc:
            marker.delete()
            if _conditional_failed(exc):
                raise _not_found(import_id) from None
            raise
        if outcome == "failed":
            seq = int(header.im_failed)
            R(f"import#{import_id}#failure#{seq:012d}", im_kind="failure", im_item=item, im_code=code,
              im_message=message, im_seq=seq).save()
        return True

    def list_import_failures(self, import_id: str, limit: int = 100, cursor: str | None = None) -> tuple[list[dict], str | None]:
        validate_import_id(import_id)
        limit, after = validate_limit(limit), _cursor(cursor)
        header = self._import_header(import_id)
        if header is None:
            raise _not_found(import_id)
        failed = int(header.im_failed or 0)
        seqs = list(range(after + 1, min(failed, after + limit) + 1))
        found = {int(r.im_seq): r for r in self._Rows.batch_get([f"import#{import_id}#failure#{s:012d}" for s in seqs],
                                                                consistent_read=True)}
        # a number whose row is missing (a writer died between count and row) is skipped
        page = [{"item": r.im_item, "code": r.im_code, "message": r.im_message, "seq": s}
                for s in seqs if (r := found.get(s)) is not None]
        last = seqs[-1] if seqs else after
        return page, (f"f1.{last}" if last < failed else None)

