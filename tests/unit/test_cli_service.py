"""CLI parity with the HTTP API (docs/api.md): ``library get``, ``files get``, ``jobs submit|list|get``
on the embedded SQLite store (a submitted job runs in-process and is recorded)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mediadna.cli import main
from mediadna.fingerprint import AudioTrack, Fingerprint, VisualTrack


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MEDIADNA_HOME", str(tmp_path / "env-home"))
    monkeypatch.delenv("MEDIADNA_STORE", raising=False)


@pytest.fixture
def run(tmp_path, capsys):
    store = f"sqlite:{tmp_path / 'lib.sqlite3'}"

    def cli(*argv) -> tuple[int, str, str]:
        try:
            rc = main(["--home", str(tmp_path / "home"), "--store", store, *map(str, argv)])
        except SystemExit as exc:
            rc = exc.code
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return rc, out, err

    return cli


@pytest.fixture
def mdna(tmp_path) -> Path:
    rng = np.random.default_rng(1)
    n = 40
    fp = Fingerprint(duration=20.0, sha256="ab" * 32, media_type="video", params={"fps": 2, "hop": 512},
                     visual=VisualTrack(np.sort(rng.random(n) * 20), rng.integers(0, 2**64, n, dtype=np.uint64),
                                        rng.integers(0, 2**64, n, dtype=np.uint64), rng.integers(0, 2, n)),
                     audio=AudioTrack(rng.integers(0, 5000, 3 * n), rng.integers(0, 1024, 3 * n)))
    path = tmp_path / "clip.mp4.mdna"
    fp.save(path)
    return path


def test_library_get(run):
    assert run("library", "create", "news", "--threshold", "0.7")[0] == 0
    rc, out, _ = run("library", "get", "news", "--json")
    assert rc == 0 and json.loads(out)["threshold"] == 0.7 and json.loads(out)["file_count"] == 0
    rc, out, _ = run("library", "get", "news")
    assert rc == 0 and out.startswith("news\t0 files")
    rc, _, err = run("library", "get", "ghost")
    assert rc == 1 and "library_not_found" in err


def test_jobs_submit_runs_in_process_and_is_recorded(run, mdna):
    run("library", "create", "lib")
    rc, out, _ = run("jobs", "submit", mdna, "--library", "lib", "--key", "clip-1", "--json")
    assert rc == 0
    job = json.loads(out)
    assert job["state"] == "succeeded" and job["kind"] == "fingerprint" and job["library"] == "lib"
    rc, out, _ = run("files", "get", "clip-1", "--library", "lib", "--json")
    assert rc == 0 and json.loads(out)["primary_key"] == "clip-1" and json.loads(out)["duration"] == 20.0
    rc, out, _ = run("jobs", "get", job["job_id"], "--json")
    assert rc == 0 and json.loads(out) == job
    rc, out, err = run("jobs", "submit", mdna, "--library", "lib", "--key", "clip-1", "--json")  # the same file again
    assert rc == 0 and json.loads(out)["job_id"] == job["job_id"] and "submitted before" in err
    rc, out, _ = run("jobs", "submit", mdna, "--library", "lib", "--save-type", "nosave")  # human output
    assert rc == 0 and "DUPLICATE" in out


def test_jobs_submit_failures(run, mdna, tmp_path):
    run("library", "create", "lib")
    rc, _, err = run("jobs", "submit", tmp_path / "missing.mp4", "--library", "lib")
    assert rc == 1 and "input_not_found" in err
    rc, _, err = run("jobs", "submit", mdna, "--library", "ghost")
    assert rc == 1 and "library_not_found" in err
    rc, _, err = run("jobs", "submit", "http://example.com/a.mp4", "--library", "lib")
    assert rc == 1 and "https" in err
    bad = tmp_path / "bad.mp4"
    bad.write_text("not media")
    rc, out, _ = run("jobs", "submit", bad, "--library", "lib", "--json")
    assert rc == 1 and json.loads(out)["state"] == "failed" and json.loads(out)["error_code"] == "not_media"


def test_jobs_list_filters_and_pages(run, mdna):
    run("library", "create", "a")
    run("library", "create", "b")
    for lib, key in (("a", "k1"), ("b", "k2"), ("a", "k3")):
        assert run("jobs", "submit", mdna, "--library", lib, "--key", key, "--save-type", "forcesave")[0] == 0
    rc, out, _ = run("jobs", "list", "--json")
    jobs = [json.loads(line) for line in out.splitlines()]
    assert rc == 0 and len(jobs) == 3 and [j["library"] for j in jobs] == ["a", "b", "a"]
    rc, out, _ = run("jobs", "list", "--library", "a", "--state", "succeeded", "--json")
    assert len(out.splitlines()) == 2
    rc, out, err = run("jobs", "list", "--limit", "2", "--json")
    assert len(out.splitlines()) == 2 and "more: --cursor " in err
    cursor = err.split("--cursor ")[1].split()[0]
    rc, out, err = run("jobs", "list", "--limit", "2", "--cursor", cursor, "--json")
    assert len(out.splitlines()) == 1 and "more:" not in err
    rc, out, _ = run("jobs", "list", "--since", "2999-01-01T00:00:00Z")
    assert rc == 0 and out == ""
    rc, _, err = run("jobs", "list", "--since", "tomorrow")
    assert rc == 1 and "invalid_argument" in err


def test_ingest_records_a_job_too(run, mdna):
    run("library", "create", "lib")
    assert run("ingest", mdna, "--library", "lib")[0] == 0
    rc, out, _ = run("jobs", "list", "--json")
    (job,) = [json.loads(line) for line in out.splitlines()]
    assert job["state"] == "succeeded" and job["input_key"] == mdna.name


def test_files_get_not_found(run):
    run("library", "create", "lib")
    rc, _, err = run("files", "get", "nope", "--library", "lib")
    assert rc == 1 and "file_not_found" in err
    rc, _, err = run("jobs", "get", "nope")
    assert rc == 1 and "job_not_found" in err
