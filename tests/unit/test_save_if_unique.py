"""match_and_commit: save-if-unique re-checks when the library moved under it."""

from __future__ import annotations

import threading

import pytest

from mediadna.pipeline import Engine, find_matches, match_and_commit
from mediadna.store import MemoryStore, SQLiteStore

NEAR_COPY = ("reencode", {"crf": 36})


@pytest.fixture(scope="module")
def fps(ref_a, make_copy, fingerprint_of):
    name, params = NEAR_COPY
    return fingerprint_of(ref_a), fingerprint_of(make_copy(name, **params))


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    s = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "lib.sqlite3")
    s.create_library("lib")
    yield s
    s.close()


def test_stale_matches_are_redone_before_saving(store, fps):
    ref, copy = fps
    revision = store.library_revision("lib")
    stale = find_matches(store, "lib", copy)  # nothing yet
    assert stale == []
    Engine(store).process(ref, "lib", save_type="onlysave", primary_key="ref")  # lands meanwhile
    decision = match_and_commit(store, store.get_library("lib"), copy, "copy", "save", matches=stale, revision=revision)
    assert decision.duplicate and not decision.stored
    assert decision.matches[0].primary_key == "ref"
    assert [f.primary_key for f in store.list_files("lib").items] == ["ref"]


def test_fresh_matches_are_trusted(store, fps):
    ref, _ = fps
    revision = store.library_revision("lib")
    store.lookup_visual = store.lookup_audio = None  # matching again would fail: the revision did not move
    decision = match_and_commit(store, store.get_library("lib"), ref, "ref", "save", matches=[], revision=revision)
    assert decision.stored and not decision.duplicate


@pytest.mark.parametrize("save_type, stored", [("nosave", False), ("forcesave", True), ("onlysave", True)])
def test_other_save_types(store, fps, save_type, stored):
    ref, copy = fps
    Engine(store).process(ref, "lib", save_type="onlysave", primary_key="ref")
    decision = match_and_commit(store, store.get_library("lib"), copy, "copy", save_type)
    assert decision.stored is stored
    assert decision.duplicate is (save_type != "onlysave")  # onlysave does not search


def test_two_simultaneous_saves_store_one(store, fps):
    ref, copy = fps
    barrier = threading.Barrier(2)
    results = {}

    def run(key, fp):
        barrier.wait()
        results[key] = Engine(store).process(fp, "lib", save_type="save", primary_key=key)

    threads = [threading.Thread(target=run, args=(k, f)) for k, f in (("a", ref), ("b", copy))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r["stored"] for r in results.values()) == [False, True]
    assert store.get_library("lib").file_count == 1
