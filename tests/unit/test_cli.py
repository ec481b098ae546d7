"""The command-line contract (README): command names, options, exit codes,
JSON Lines output and one-line errors.

``mediadna.cli.main`` is called in-process with ``--home tmp_path`` (state
never leaks into the real home); one test runs the real program in a
subprocess.  Most ingests use ``.mdna`` fingerprints of the shared clips
(fast); real media goes through where the media path matters.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mediadna.cli import main
from mediadna.fingerprint import Fingerprint
from mediadna.pipeline import load_input
from mediadna.schemas import validate

NEAR_COPY = ("reencode", {"crf": 36})  # as in test_pipeline / test_transforms: one cached copy


# --- helpers ------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """No test reads or writes the real ~/.mediadna or a store picked by the environment."""
    monkeypatch.setenv("MEDIADNA_HOME", str(tmp_path / "env-home"))
    monkeypatch.delenv("MEDIADNA_STORE", raising=False)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def cli(capsys, *argv, home: Path | None = None) -> tuple[int, str, str]:
    """Run ``mediadna [--home HOME] ARGV...``: (exit code, stdout, stderr)."""
    args = (["--home", str(home)] if home is not None else []) + [str(a) for a in argv]
    try:
        rc = main(args)
    except SystemExit as exc:  # argparse: usage errors, --help, --version
        rc = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return rc, out, err


def json_lines(out: str, schema: str | None = "result") -> list[dict]:
    """Every stdout line is one JSON document (JSON Lines), valid against ``schema``."""
    docs = [json.loads(line) for line in out.splitlines()]
    for d in docs:
        if schema:
            validate(d, schema)
    return docs


def error_lines(err: str) -> list[str]:
    lines = err.strip().splitlines()
    for line in lines:
        assert line.startswith("mediadna: error: "), line
    return lines


@pytest.fixture(scope="module")
def mdna(tmp_path_factory, fingerprint_of, ref_a, ref_b, unrelated) -> dict[str, Path]:
    """.mdna fingerprints of the shared references (named like the clips)."""
    d = tmp_path_factory.mktemp("mdna")
    out = {}
    for src in (ref_a, ref_b, unrelated):
        p = d / f"{src.stem}.mdna"
        fingerprint_of(src).save(p)
        out[src.stem] = p
    return out


@pytest.fixture(scope="module")
def near_copy(make_copy) -> Path:
    name, params = NEAR_COPY
    return make_copy(name, **params)


@pytest.fixture
def library(capsys, home, mdna) -> str:
    """A library "ads" (threshold 0.6) holding ref_a, ref_b and unrelated."""
    rc, _, _ = cli(capsys, "library", "create", "ads", "--threshold", "0.6", home=home)
    assert rc == 0
    rc, out, _ = cli(capsys, "ingest", "--library", "ads", "--json", mdna["ref_a"], mdna["ref_b"], mdna["unrelated"], home=home)
    assert rc == 0
    assert [d["stored"] for d in json_lines(out)] == [True, True, True]
    return "ads"


def listed_keys(capsys, home, library) -> list[str]:
    rc, out, _ = cli(capsys, "files", "list", "--library", library, "--json", home=home)
    assert rc == 0
    return [json.loads(line)["primary_key"] for line in out.splitlines()]


# --- the program itself ------------------------------------------------------------------
def test_help_runs_as_a_real_program(tmp_path):
    env = {**os.environ, "MEDIADNA_HOME": str(tmp_path / "h")}
    p = subprocess.run([sys.executable, "-m", "mediadna.cli", "--help"], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("usage: mediadna")
    for command in ("compare", "fingerprint", "library", "ingest", "query", "files"):
        assert command in p.stdout
    # a failing run of the real program: exit 1, one line on stderr, no traceback
    p = subprocess.run([sys.executable, "-m", "mediadna.cli", "--home", str(tmp_path / "h"), "query", "--library", "nope", str(tmp_path / "x.mp4")],
                       capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 1
    assert "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines() == [p.stderr.strip()] and p.stderr.startswith("mediadna: error: ")


@pytest.mark.parametrize(
    "argv, words",
    [
        ([], ["compare", "fingerprint", "library", "ingest", "query", "files"]),
        (["library"], ["create", "list", "delete"]),
        (["library", "create"], ["--threshold", "--min-segment"]),
        (["library", "list"], ["--json"]),
        (["ingest"], ["--library", "--save-type", "--key", "--json"]),
        (["query"], ["--library", "--json"]),
        (["files"], ["list", "delete"]),
        (["files", "list"], ["--library", "--limit", "--cursor", "--json"]),
        (["files", "delete"], ["--library"]),
        (["compare"], ["--json"]),
        (["fingerprint"], ["-o"]),
    ],
)
def test_command_names_and_options(capsys, argv, words):
    rc, out, _ = cli(capsys, *argv, "--help")
    assert rc == 0
    for w in words:
        assert w in out, (argv, w)


def test_version(capsys):
    rc, out, _ = cli(capsys, "--version")
    assert rc == 0 and out.startswith("mediadna ")


# --- usage errors: exit 2 -------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["frobnicate"],
        [],
        ["query", "--bogus", "x.mp4"],
        ["query", "--library", "ads"],  # no FILE
        ["ingest", "--save-type", "keep", "x.mp4"],
        ["library", "create", "ads", "--threshold", "high"],
        ["library", "rename", "ads"],
        ["files", "list", "--limit", "ten"],
        ["compare", "only-one.mp4"],
    ],
)
def test_usage_errors_exit_2(capsys, home, argv):
    rc, out, err = cli(capsys, *argv, home=home)
    assert rc == 2
    # argparse: usage, then "mediadna[ SUBCOMMAND]: error: ..." as the last line
    assert re.match(r"mediadna( [a-z]+)*: error: ", err.strip().splitlines()[-1]), err
    assert not home.exists() or not any(home.iterdir())  # nothing was created


def test_key_with_two_files_is_a_usage_error_and_stores_nothing(capsys, home, library, mdna):
    before = listed_keys(capsys, home, library)
    rc, out, err = cli(capsys, "ingest", "--library", library, "--key", "k", mdna["ref_a"], mdna["ref_b"], home=home)
    assert rc == 2
    assert out == ""
    assert len(error_lines(err)) == 1 and "--key" in err
    assert listed_keys(capsys, home, library) == before


# --- home and store selection ---------------------------------------------------------------
def test_home_option_and_environment(capsys, tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli(capsys, "library", "create", "in-a", home=a)[0] == 0
    assert (a / "library.sqlite3").exists()
    monkeypatch.setenv("MEDIADNA_HOME", str(b))
    assert cli(capsys, "library", "create", "in-b")[0] == 0  # no --home: $MEDIADNA_HOME
    assert (b / "library.sqlite3").exists()
    rc, out, _ = cli(capsys, "library", "list", "--json", home=a)
    assert rc == 0 and [json.loads(l)["name"] for l in out.splitlines()] == ["in-a"]
    rc, out, _ = cli(capsys, "library", "list", "--json")
    assert rc == 0 and [json.loads(l)["name"] for l in out.splitlines()] == ["in-b"]
    # --home wins over the environment
    rc, out, _ = cli(capsys, "library", "list", home=a)
    assert "in-a" in out and "in-b" not in out


def test_unknown_store_is_one_line_error(capsys, home):
    rc, out, err = cli(capsys, "--store", "nosuch:thing", "library", "list", home=home)
    assert rc == 1
    (line,) = error_lines(err)
    assert "invalid_argument" in line


# --- library ---------------------------------------------------------------------------------
def test_library_create_list_delete(capsys, home):
    rc, out, err = cli(capsys, "library", "create", "ads", "--threshold", "0.6", "--min-segment", "4", home=home)
    assert rc == 0 and "ads" in out and err == ""
    assert cli(capsys, "library", "create", "news", home=home)[0] == 0
    rc, out, _ = cli(capsys, "library", "list", "--json", home=home)
    assert rc == 0
    libs = {d["name"]: d for d in json_lines(out, schema=None)}
    assert set(libs) == {"ads", "news"}
    assert libs["ads"]["threshold"] == 0.6 and libs["ads"]["min_segment_seconds"] == 4.0 and libs["ads"]["file_count"] == 0
    assert libs["news"]["threshold"] == 0.5  # the default
    rc, out, _ = cli(capsys, "library", "list", home=home)
    assert rc == 0 and len(out.splitlines()) == 2 and "ads" in out
    # errors: one line, exit 1
    rc, _, err = cli(capsys, "library", "create", "ads", home=home)
    assert rc == 1 and "library_exists" in error_lines(err)[0]
    rc, _, err = cli(capsys, "library", "create", "bad name!", home=home)
    assert rc == 1 and "invalid_argument" in error_lines(err)[0]
    rc, _, err = cli(capsys, "library", "create", "x", "--threshold", "1.5", home=home)
    assert rc in (1, 2) and "threshold" in err and len(err.strip().splitlines()) >= 1
    # delete
    rc, out, _ = cli(capsys, "library", "delete", "ads", home=home)
    assert rc == 0
    rc, out, _ = cli(capsys, "library", "list", "--json", home=home)
    assert [json.loads(l)["name"] for l in out.splitlines()] == ["news"]
    rc, _, err = cli(capsys, "library", "delete", "ads", home=home)
    assert rc == 1 and "library_not_found" in error_lines(err)[0]


# --- ingest and query ------------------------------------------------------------------------------
def test_ingest_and_query_json_lines(capsys, home, library, near_copy, mdna):
    # a near-identical copy (real media) is a duplicate of ref_a: save does not store it
    rc, out, err = cli(capsys, "ingest", "--library", library, "--json", near_copy, home=home)
    assert rc == 0 and err == ""
    (doc,) = json_lines(out)
    assert doc["status"] == "succeeded" and doc["save_type"] == "save"  # the default save type
    assert doc["duplicate"] and not doc["stored"]
    assert doc["matches"][0]["primary_key"] == "ref_a.mdna"
    assert doc["threshold"] == 0.6
    assert sorted(listed_keys(capsys, home, library)) == ["ref_a.mdna", "ref_b.mdna", "unrelated.mdna"]

    # query: one document per input, in order; nothing stored
    rc, out, err = cli(capsys, "query", "--library", library, "--json", near_copy, mdna["ref_b"], home=home)
    assert rc == 0 and err == ""
    docs = json_lines(out)
    assert [d["input"]["key"] for d in docs] == [near_copy.name, "ref_b.mdna"]
    assert [d["save_type"] for d in docs] == ["nosave", "nosave"]
    assert docs[0]["duplicate"] and docs[0]["matches"][0]["primary_key"] == "ref_a.mdna"
    assert docs[1]["matches"][0]["exact"] and docs[1]["matches"][0]["primary_key"] == "ref_b.mdna"
    assert not any(d["stored"] for d in docs)
    assert len(listed_keys(capsys, home, library)) == 3


def test_ingest_save_types_and_key(capsys, home, library, near_copy):
    rc, out, _ = cli(capsys, "ingest", "--library", library, "--save-type", "forcesave", "--key", "copies/a", "--json", near_copy, home=home)
    assert rc == 0
    (doc,) = json_lines(out)
    assert doc["stored"] and doc["primary_key"] == "copies/a" and doc["duplicate"]
    rc, out, _ = cli(capsys, "ingest", "--library", library, "--save-type", "onlysave", "--key", "copies/b", "--json", near_copy, home=home)
    (doc,) = json_lines(out)
    assert rc == 0 and doc["stored"] and doc["matches"] == []
    rc, out, _ = cli(capsys, "ingest", "--library", library, "--save-type", "nosave", "--key", "copies/c", "--json", near_copy, home=home)
    (doc,) = json_lines(out)
    assert rc == 0 and not doc["stored"] and doc["matches"]
    # the same bytes under the same key again: a no-op that succeeds
    rc, out, _ = cli(capsys, "ingest", "--library", library, "--save-type", "onlysave", "--key", "copies/b", "--json", near_copy, home=home)
    (doc,) = json_lines(out)
    assert rc == 0 and doc["status"] == "succeeded" and doc["stored"]
    assert sorted(listed_keys(capsys, home, library)) == ["copies/a", "copies/b", "ref_a.mdna", "ref_b.mdna", "unrelated.mdna"]


def test_human_output(capsys, home, library, near_copy, mdna):
    rc, out, err = cli(capsys, "query", "--library", library, near_copy, mdna["ref_b"], home=home)
    assert rc == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith(f"{near_copy.name}: DUPLICATE")
    assert any("ref_a.mdna" in line and "similarity" in line for line in lines)
    assert any(line.strip().startswith("query 00:00") and "reference 00:" in line for line in lines)
    assert any(line.startswith("ref_b.mdna: DUPLICATE") for line in lines)


def test_failed_inputs_exit_1_and_the_others_are_still_processed(capsys, home, library, bad_inputs, mdna):
    files = [mdna["ref_a"], bad_inputs["missing"], bad_inputs["empty"], mdna["ref_b"], bad_inputs["not_media"]]
    rc, out, err = cli(capsys, "query", "--library", library, "--json", *files, home=home)
    assert rc == 1
    docs = json_lines(out)
    assert len(docs) == len(files)  # exactly one document per input, in order
    assert [d["input"]["key"] for d in docs] == [Path(f).name for f in files]
    assert [d["status"] for d in docs] == ["succeeded", "failed", "failed", "succeeded", "failed"]
    assert [d["error"]["code"] for d in docs if d["error"]] == ["input_not_found", "input_empty", "not_media"]
    assert docs[3]["matches"][0]["primary_key"] == "ref_b.mdna"

    # without --json: a line per input on stdout, one error line per failure on stderr
    rc, out, err = cli(capsys, "ingest", "--library", library, *files, home=home)
    assert rc == 1
    errs = error_lines(err)
    assert len(errs) == 3
    for line, (name, code) in zip(errs, [("missing.mp4", "input_not_found"), ("empty.mp4", "input_empty"), ("notes.mp4", "not_media")]):
        assert name in line and code in line
    assert sum("FAILED" in line for line in out.splitlines()) == 3
    # all succeeded: exit 0
    rc, _, _ = cli(capsys, "query", "--library", library, mdna["ref_a"], home=home)
    assert rc == 0


def test_unknown_library_exits_1(capsys, home, mdna):
    cli(capsys, "library", "create", "ads", home=home)
    rc, out, err = cli(capsys, "query", "--library", "nope", "--json", mdna["ref_a"], home=home)
    assert rc == 1
    (doc,) = json_lines(out)
    assert doc["status"] == "failed" and doc["error"]["code"] == "library_not_found"
    rc, out, err = cli(capsys, "ingest", "--library", "nope", mdna["ref_a"], home=home)
    assert rc == 1 and "library_not_found" in error_lines(err)[0]


def test_ingest_without_library_uses_the_default_library(capsys, home, mdna):
    rc, out, _ = cli(capsys, "query", "--json", mdna["ref_a"], home=home)
    assert rc == 1 and json_lines(out)[0]["error"]["code"] == "library_not_found"  # query creates nothing
    rc, out, _ = cli(capsys, "ingest", "--json", mdna["ref_a"], home=home)
    assert rc == 0 and json_lines(out)[0]["library"] == "default"
    assert listed_keys(capsys, home, "default") == ["ref_a.mdna"]


# --- files ---------------------------------------------------------------------------------------
def test_files_list_pages_and_delete(capsys, home, library):
    rc, out, err = cli(capsys, "files", "list", "--library", library, "--limit", "2", "--json", home=home)
    assert rc == 0
    page1 = [json.loads(l) for l in out.splitlines()]
    assert [r["primary_key"] for r in page1] == ["ref_a.mdna", "ref_b.mdna"]
    assert all(r["media_type"] == "video" and len(r["sha256"]) == 64 and r["duration"] > 19 for r in page1)
    assert err.startswith("more: --cursor ")
    cursor = err.split("--cursor", 1)[1].strip()
    rc, out, err = cli(capsys, "files", "list", "--library", library, "--limit", "2", "--cursor", cursor, "--json", home=home)
    assert rc == 0 and [json.loads(l)["primary_key"] for l in out.splitlines()] == ["unrelated.mdna"]
    assert err == ""  # last page
    rc, out, _ = cli(capsys, "files", "list", "--library", library, home=home)
    assert rc == 0 and len(out.splitlines()) == 3 and "ref_b.mdna" in out

    rc, out, _ = cli(capsys, "files", "delete", "--library", library, "ref_b.mdna", home=home)
    assert rc == 0
    assert listed_keys(capsys, home, library) == ["ref_a.mdna", "unrelated.mdna"]
    rc, _, err = cli(capsys, "files", "delete", "--library", library, "ref_b.mdna", home=home)
    assert rc == 1 and "file_not_found" in error_lines(err)[0]
    rc, _, err = cli(capsys, "files", "list", "--library", library, "--cursor", "garbage", home=home)
    assert rc == 1 and "invalid_argument" in error_lines(err)[0]
    rc, _, err = cli(capsys, "files", "list", "--library", "nope", home=home)
    assert rc == 1 and "library_not_found" in error_lines(err)[0]


# --- fingerprint ------------------------------------------------------------------------------------
def test_fingerprint_to_mdna_then_query_with_it(capsys, home, library, near_copy, tmp_path):
    out_path = tmp_path / "upload.mdna"
    rc, out, err = cli(capsys, "fingerprint", near_copy, "-o", out_path, home=home)
    assert rc == 0 and out.strip() == str(out_path)
    fp = Fingerprint.load(out_path)
    assert fp == load_input(near_copy)
    rc, out_media, _ = cli(capsys, "query", "--library", library, "--json", near_copy, home=home)
    rc2, out_mdna, _ = cli(capsys, "query", "--library", library, "--json", out_path, home=home)
    assert rc == rc2 == 0
    (m,), (f,) = json_lines(out_media), json_lines(out_mdna)
    assert f["matches"] == m["matches"] and f["matches"][0]["primary_key"] == "ref_a.mdna"
    assert f["duplicate"] == m["duplicate"] is True
    # JSON format, and a failure
    json_path = tmp_path / "upload.json"
    rc, _, _ = cli(capsys, "fingerprint", out_path, "-o", json_path, "--format", "json", home=home)
    assert rc == 0 and Fingerprint.load(json_path) == fp
    rc, out, err = cli(capsys, "fingerprint", tmp_path / "missing.mp4", "-o", tmp_path / "m.mdna", home=home)
    assert rc == 1 and "input_not_found" in error_lines(err)[0]
    assert not (tmp_path / "m.mdna").exists()


# --- compare ------------------------------------------------------------------------------------------
def test_compare_json_and_text(capsys, home, mdna, near_copy, bad_inputs):
    rc, out, err = cli(capsys, "compare", mdna["ref_a"], near_copy, "--json", home=home)
    assert rc == 0 and err == ""
    (env,) = json_lines(out, schema="compare")
    assert env["match"] is True and env["media_type"] == "video" and env["matched_segments"]
    rc, out, err = cli(capsys, "compare", mdna["ref_a"], mdna["unrelated"], home=home)
    assert rc == 0 and out.startswith("no match")
    rc, out, err = cli(capsys, "compare", mdna["ref_a"], mdna["ref_a"], home=home)
    assert rc == 0 and out.startswith("MATCH") and "source 00:00" in out
    # a bad input: exit 1; --json still prints the (failed) envelope
    rc, out, err = cli(capsys, "compare", mdna["ref_a"], bad_inputs["empty"], "--json", home=home)
    assert rc == 1
    (env,) = json_lines(out, schema="compare")
    assert env["status"] == "failed" and env["error"]["code"] == "input_empty"
    rc, out, err = cli(capsys, "compare", bad_inputs["missing"], mdna["ref_a"], home=home)
    assert rc == 1 and out == "" and "input_not_found" in error_lines(err)[0]
