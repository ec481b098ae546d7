"""Import records (progress of a backfill import), one suite for every store adapter."""

from __future__ import annotations

import threading

import pytest

from mediadna.errors import IMPORT_NOT_FOUND, INVALID_ARGUMENT, LibraryError


def test_a_new_import_has_zero_counters_and_keeps_its_creation_time(store):
    assert store.get_import("imp-1") is None
    rec = store.put_import("imp-1", "planned", library="lib", source="s3://b/archive/", save_type="onlysave", total=3)
    assert rec["import_id"] == "imp-1" and rec["state"] == "planned" and rec["total"] == 3
    assert (rec["done"], rec["skipped"], rec["failed"]) == (0, 0, 0)
    got = store.get_import("imp-1")
    assert got == rec
    moved = store.put_import("imp-1", "running")
    assert moved["created_at"] == rec["created_at"] and moved["updated_at"] >= rec["updated_at"]
    assert (moved["library"], moved["source"], moved["save_type"], moved["total"]) == ("lib", "s3://b/archive/", "onlysave", 3)
    assert store.get_import("imp-1")["state"] == "running"


def test_progress_counts_each_item_once_and_lists_failures_in_order(store):
    store.put_import("imp-2", "running", library="lib", total=5)
    assert store.add_import_progress("imp-2", "a.mp4", "done") is True
    assert store.add_import_progress("imp-2", "b.mp4", "skipped", code="already_in") is True
    assert store.add_import_progress("imp-2", "c.txt", "failed", code="not_media", message="c.txt is not media") is True
    assert store.add_import_progress("imp-2", "d.mp4", "failed", code="corrupt_media", message="x" * 2000) is True
    # a retried task reports again: not counted twice, whatever it reports now
    assert store.add_import_progress("imp-2", "a.mp4", "skipped") is False
    assert store.add_import_progress("imp-2", "c.txt", "failed", code="not_media") is False
    rec = store.get_import("imp-2")
    assert (rec["total"], rec["done"], rec["skipped"], rec["failed"]) == (5, 1, 1, 2)
    failures, cursor = store.list_import_failures("imp-2")
    assert cursor is None
    assert [(f["item"], f["code"], f["seq"]) for f in failures] == [("c.txt", "not_media", 1), ("d.mp4", "corrupt_media", 2)]
    assert failures[0]["message"] == "c.txt is not media" and len(failures[1]["message"]) == 500
    # put_import never resets the counters
    store.put_import("imp-2", "finished")
    assert store.get_import("imp-2")["failed"] == 2


def test_failures_page(store):
    store.put_import("imp-3", "running")
    for i in range(5):
        store.add_import_progress("imp-3", f"bad-{i}", "failed", code="not_media", message=f"bad {i}")
    first, cursor = store.list_import_failures("imp-3", limit=2)
    assert [f["item"] for f in first] == ["bad-0", "bad-1"] and cursor
    second, cursor = store.list_import_failures("imp-3", limit=2, cursor=cursor)
    third, end = store.list_import_failures("imp-3", limit=2, cursor=cursor)
    assert [f["item"] for f in second + third] == ["bad-2", "bad-3", "bad-4"] and end is None
    with pytest.raises(LibraryError) as err:
        store.list_import_failures("imp-3", cursor="nonsense")
    assert err.value.code == INVALID_ARGUMENT


def test_unknown_imports_and_bad_arguments(store):
    with pytest.raises(LibraryError) as err:
        store.add_import_progress("nope", "a.mp4", "done")
    assert err.value.code == IMPORT_NOT_FOUND
    with pytest.raises(LibraryError) as err:
        store.list_import_failures("nope")
    assert err.value.code == IMPORT_NOT_FOUND
    store.put_import("imp-4", "running")
    for bad in (lambda: store.put_import("bad id!", "running"), lambda: store.put_import("imp-4", "exploded"),
                lambda: store.add_import_progress("imp-4", "a", "maybe"),
                lambda: store.add_import_progress("imp-4", "", "done"),
                lambda: store.put_import("imp-4", "running", total=-1),
                lambda: store.put_import("imp-4", "running", library="no spaces allowed")):
        with pytest.raises(LibraryError) as err:
            bad()
        assert err.value.code == INVALID_ARGUMENT
    assert store.add_import_progress("imp-4", "a", "done") is True


def test_concurrent_reports_are_exact(store):
    store.put_import("imp-5", "running", total=40)

    def report(start):
        for i in range(start, 40, 4):
            store.add_import_progress("imp-5", f"item-{i}", "failed" if i % 5 == 0 else "done", code="x")
            store.add_import_progress("imp-5", f"item-{i}", "done")  # the repeat of a retried task

    threads = [threading.Thread(target=report, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rec = store.get_import("imp-5")
    assert (rec["done"], rec["failed"]) == (32, 8)
    failures, _ = store.list_import_failures("imp-5")
    assert sorted(f["seq"] for f in failures) == list(range(1, 9))


def test_import_rows_stay_out_of_the_job_records(store):
    """DynamoDB keeps import rows in the jobs table: job lookups and listings never see them."""
    store.put_import("imp-6", "running", library="lib")
    store.add_import_progress("imp-6", "a.mp4", "failed", code="not_media")
    if hasattr(store, "list_jobs"):
        assert all(not j["job_id"].startswith("import#") for j in store.list_jobs(limit=100).items)
