"""Contract tests of the job records every store keeps (``put_job`` / ``get_job`` / ``list_jobs``).

Same adapters as test_store_contract.py (SQLite, memory, DynamoDB in moto and
in dynalite); listing, filters and paging must agree.
"""

from __future__ import annotations

import sqlite3

import pytest

from mediadna.errors import INVALID_ARGUMENT, LibraryError
from mediadna.store import SQLiteStore
from mediadna.store.base import JOB_FIELDS
from mediadna.store.sqlite import SCHEMA_VERSION


def code_of(excinfo) -> str:
    return excinfo.value.code


def all_pages(store, **kw) -> list[dict]:
    out, cursor, pages = [], None, 0
    while True:
        page = store.list_jobs(cursor=cursor, **kw)
        out += page.items
        pages += 1
        assert pages < 100
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def seed(store) -> None:
    """Six jobs over two libraries and a day; created_at given, so the order is known."""
    jobs = [("j1", "a", "succeeded", "2026-01-01T00:00:00Z"), ("j2", "a", "failed", "2026-01-01T06:00:00Z"),
            ("j3", "b", "succeeded", "2026-01-01T12:00:00Z"), ("j4", "a", "running", "2026-01-01T18:00:00Z"),
            ("j5", "b", "queued", "2026-01-02T00:00:00Z"), ("j6", "a", "succeeded", "2026-01-02T06:00:00.5+00:00")]
    for job_id, lib, state, created in jobs:
        store.put_job(job_id, "queued", library=lib, input_key=f"s3://in/{job_id}.mp4", created_at=created)
        if state != "queued":
            store.put_job(job_id, state)


def test_put_get_job_round_trip(store):
    assert store.get_job("nope") is None
    store.put_job("job-1", "queued", library="lib", input_key="https://example.com/a.mp4")
    first = store.get_job("job-1")
    assert set(first) == set(JOB_FIELDS)
    assert first["state"] == "queued" and first["kind"] == "fingerprint" and first["library"] == "lib"
    store.put_job("job-1", "failed", error_code="corrupt_media", result_location="s3://out/r.json")
    rec = store.get_job("job-1")
    assert rec["state"] == "failed" and rec["error_code"] == "corrupt_media"
    assert rec["input_key"] == "https://example.com/a.mp4"  # kept
    assert rec["created_at"] == first["created_at"] <= rec["updated_at"]
    store.put_job("del-1", "running", kind="delete_library", library="lib")
    assert store.get_job("del-1")["kind"] == "delete_library"


def test_created_at_is_normalised_and_kept(store):
    store.put_job("j", "queued", created_at="2026-03-04T05:06:07+02:00")
    assert store.get_job("j")["created_at"] == "2026-03-04T03:06:07.000Z"
    store.put_job("j", "running", created_at="2030-01-01T00:00:00Z")
    assert store.get_job("j")["created_at"] == "2026-03-04T03:06:07.000Z"


@pytest.mark.parametrize("bad", [dict(job_id=""), dict(job_id="a/b"), dict(job_id="x" * 81), dict(state="done"),
                                 dict(kind="other"), dict(created_at="yesterday")])
def test_invalid_job_records_are_rejected(store, bad):
    args = dict(job_id="ok", state="queued") | bad
    job_id, state = args.pop("job_id"), args.pop("state")
    with pytest.raises(LibraryError) as e:
        store.put_job(job_id, state, **args)
    assert code_of(e) == INVALID_ARGUMENT


def test_list_jobs_newest_first_with_filters(store):
    seed(store)
    ids = lambda items: [j["job_id"] for j in items]  # noqa: E731
    assert ids(all_pages(store)) == ["j6", "j5", "j4", "j3", "j2", "j1"]
    assert ids(all_pages(store, library="a")) == ["j6", "j4", "j2", "j1"]
    assert ids(all_pages(store, library="b")) == ["j5", "j3"]
    assert ids(all_pages(store, library="zzz")) == []
    assert ids(all_pages(store, state="succeeded")) == ["j6", "j3", "j1"]
    assert ids(all_pages(store, library="a", state="succeeded")) == ["j6", "j1"]
    # since inclusive, until exclusive
    assert ids(all_pages(store, since="2026-01-01T06:00:00Z")) == ["j6", "j5", "j4", "j3", "j2"]
    assert ids(all_pages(store, until="2026-01-01T18:00:00Z")) == ["j3", "j2", "j1"]
    assert ids(all_pages(store, library="a", since="2026-01-01T06:00:00Z", until="2026-01-02T00:00:00Z")) == ["j4", "j2"]
    assert ids(all_pages(store, since="2026-01-01T06:00:00Z", until="2026-01-01T06:00:00Z")) == []


@pytest.mark.parametrize("limit", [1, 2, 5])
def test_list_jobs_pages(store, limit):
    seed(store)
    for kw in ({}, {"library": "a"}, {"state": "succeeded"}, {"library": "a", "since": "2026-01-01T01:00:00Z"}):
        expected = store.list_jobs(limit=100, **kw).items
        pages, cursor = [], None
        while True:
            page = store.list_jobs(limit=limit, cursor=cursor, **kw)
            assert len(page.items) <= limit
            pages += page.items
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert pages == expected


@pytest.mark.parametrize("kw", [dict(limit=0), dict(limit=1001), dict(cursor="nope"), dict(cursor="j1.!!"),
                                dict(state="done"), dict(library="bad name"), dict(since="soon"), dict(until=3)])
def test_list_jobs_invalid_arguments(store, kw):
    with pytest.raises(LibraryError) as e:
        store.list_jobs(**kw)
    assert code_of(e) == INVALID_ARGUMENT


def test_sqlite_upgrades_a_version_2_database(tmp_path):
    path = tmp_path / "v2.sqlite3"
    s = SQLiteStore(path)
    s.create_library("lib")
    s.close()
    conn = sqlite3.connect(path)  # what version 2 wrote: no jobs table, one row per posting
    conn.execute("DROP TABLE jobs")
    for kind in ("visual", "audio"):
        conn.execute(f"DROP TABLE {kind}_index")
        conn.execute(
            f"CREATE TABLE {kind}_postings (lib_id INTEGER NOT NULL, key INTEGER NOT NULL, file_id INTEGER NOT NULL,"
            " t REAL NOT NULL, PRIMARY KEY (lib_id, key, file_id, t)) WITHOUT ROWID"
        )
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    s = SQLiteStore(path)
    assert s.get_library("lib").name == "lib"
    s.put_job("j", "queued", library="lib")
    assert [j["job_id"] for j in s.list_jobs().items] == ["j"]
    s.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
