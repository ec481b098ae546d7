"""``mediadna``: the command line.

    mediadna [--home DIR] [--store SPEC] COMMAND ...

Commands (verb first, stable names for scripts): ``compare``, ``fingerprint``,
``library create|list|delete``, ``ingest``, ``query``, ``files list|delete``,
``import`` (``import status``), ``rescan``.
Exit status: 0 all inputs succeeded, 1 any input failed (the others are still
processed), 2 usage error.  Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import __version__
from .errors import MediaDnaError
from .pipeline import SAVE_TYPES, Engine, compare, load_input
from .runtime import retain_freed_memory
from .store import DEFAULT_MIN_SEGMENT_SECONDS, DEFAULT_THRESHOLD, open_store

DEFAULT_LIBRARY = "default"


def default_home() -> Path:
    return Path(os.environ.get("MEDIADNA_HOME") or Path.home() / ".mediadna")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mediadna", description="Media fingerprinting: find copies of videos and audio, with the time codes of copied segments.")
    p.add_argument("--version", action="version", version=f"mediadna {__version__}")
    p.add_argument("--home", type=Path, default=None, help="state directory (default: $MEDIADNA_HOME or ~/.mediadna)")
    p.add_argument("--store", default=None, help="library store: sqlite:PATH, memory: or dynamodb:PREFIX (default: $MEDIADNA_STORE, else SQLite in the home)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    c = sub.add_parser("compare", help="compare two files (video, audio or image)")
    c.add_argument("source")
    c.add_argument("target")
    c.add_argument("--json", action="store_true", help="print the compare envelope as JSON")

    d = sub.add_parser("demo", help="generate sample videos and show a copy being found (no input needed)")
    d.add_argument("--dir", type=Path, default=None, help="where to write the samples (default: <home>/demo)")

    dv = sub.add_parser("dev", help="run the whole cloud flow locally (S3, SQS, SNS, DynamoDB, Step Functions on moto)")
    dv.add_argument("--port", type=int, default=0, help="port of the local AWS endpoint (default: a free one)")
    dv.add_argument("--data", default=None, metavar="DIR", help="keep tables and results across restarts in DIR")
    dv.add_argument("--demo", action="store_true", help="upload an original and a disguised copy, print the verdict, stop")
    dv.add_argument("--demo-dir", default=None, metavar="DIR", help="where --demo writes its sample videos")

    f = sub.add_parser("fingerprint", help="fingerprint a file once, to ingest or query later (.mdna)")
    f.add_argument("file")
    f.add_argument("-o", "--output", type=Path, default=None, help="output path (default: FILE.mdna)")
    f.add_argument("--format", choices=("binary", "json"), default="binary")

    lib = sub.add_parser("library", help="create, list or delete libraries")
    ls = lib.add_subparsers(dest="action", metavar="ACTION", required=True)
    lc = ls.add_parser("create", help="create a library")
    lc.add_argument("name")
    lc.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help=f"similarity at or above which a match is a duplicate (default {DEFAULT_THRESHOLD})")
    lc.add_argument("--min-segment", type=float, default=DEFAULT_MIN_SEGMENT_SECONDS, help=f"shortest copied segment that makes a duplicate, seconds (default {DEFAULT_MIN_SEGMENT_SECONDS})")
    ll = ls.add_parser("list", help="list libraries")
    ll.add_argument("--json", action="store_true")
    ld = ls.add_parser("delete", help="delete a library and every file in it")
    ld.add_argument("name")
    lg = ls.add_parser("get", help="show one library (GET /libraries/NAME)")
    lg.add_argument("name")
    lg.add_argument("--json", action="store_true")

    for name, help_ in (("ingest", "fingerprint files and store them in a library (by save type)"), ("query", "find what files copy from a library (stores nothing)")):
        q = sub.add_parser(name, help=help_)
        q.add_argument("files", nargs="+", metavar="FILE", help="media files, http(s) URLs or .mdna fingerprints")
        q.add_argument("--library", default=DEFAULT_LIBRARY)
        q.add_argument("--json", action="store_true", help="one result document per input, JSON Lines")
        if name == "ingest":
            q.add_argument("--save-type", choices=SAVE_TYPES, default="save", help="nosave | save (default: store unless a duplicate) | forcesave | onlysave")
            q.add_argument("--key", default=None, help="primary key (default: the file name; one file only)")

    fl = sub.add_parser("files", help="list or delete library files")
    fs = fl.add_subparsers(dest="action", metavar="ACTION", required=True)
    fll = fs.add_parser("list", help="list files in a library")
    fll.add_argument("--library", default=DEFAULT_LIBRARY)
    fll.add_argument("--limit", type=int, default=100)
    fll.add_argument("--cursor", default=None, help="continue after this cursor (printed by a previous page)")
    fll.add_argument("--json", action="store_true")
    fld = fs.add_parser("delete", help="delete a file by primary key")
    fld.add_argument("key")
    fld.add_argument("--library", default=DEFAULT_LIBRARY)
    flg = fs.add_parser("get", help="show one file by primary key (GET /libraries/NAME/file?key=)")
    flg.add_argument("key")
    flg.add_argument("--library", default=DEFAULT_LIBRARY)
    flg.add_argument("--json", action="store_true")

    jb = sub.add_parser("jobs", help="submit, list or show jobs (the HTTP API's /jobs)")
    js = jb.add_subparsers(dest="action", metavar="ACTION", required=True)
    jsub = js.add_parser("submit", help="run a fingerprint job for a file or https URL (in-process on an embedded store)")
    jsub.add_argument("input", metavar="FILE_OR_URL")
    jsub.add_argument("--library", default=DEFAULT_LIBRARY)
    jsub.add_argument("--save-type", choices=SAVE_TYPES, default="save")
    jsub.add_argument("--key", default=None, help="primary key (default: the file name, or the URL)")
    jsub.add_argument("--client-token", default="", help="a new token runs the same input and options again")
    jsub.add_argument("--json", action="store_true", help="print the job record as JSON")
    jl = js.add_parser("list", help="list jobs, newest first")
    jl.add_argument("--library", default=None)
    jl.add_argument("--state", default=None, choices=("queued", "running", "succeeded", "failed"))
    jl.add_argument("--since", default=None, help="ISO-8601 time, inclusive")
    jl.add_argument("--until", default=None, help="ISO-8601 time, exclusive")
    jl.add_argument("--limit", type=int, default=100)
    jl.add_argument("--cursor", default=None, help="continue after this cursor (printed by a previous page)")
    jl.add_argument("--json", action="store_true")
    jg = js.add_parser("get", help="show one job")
    jg.add_argument("job_id")
    jg.add_argument("--json", action="store_true")
    from .cli_imports import add_parsers as add_import_parsers  # import, import status, rescan

    add_import_parsers(sub, DEFAULT_LIBRARY)
    return p


def _err(msg: str) -> None:
    print(f"mediadna: error: {msg}", file=sys.stderr)


def _fmt_t(t: float) -> str:
    m, s = divmod(max(0.0, t), 60)
    h, m = divmod(int(m), 60)
    return f"{h}:{m:02d}:{s:06.3f}" if h else f"{m:02d}:{s:06.3f}"


def _print_result(r: dict) -> None:
    key = r["input"]["key"]
    if r["status"] != "succeeded":
        print(f"{key}: FAILED {r['error']['code']}: {r['error']['message']}")
        return
    verdict = "DUPLICATE" if r["duplicate"] else ("matches" if r["matches"] else "no match")
    stored = f", stored as {r['primary_key']!r}" if r["stored"] else ""
    print(f"{key}: {verdict}{stored}")
    for m in r["matches"]:
        print(f"  {m['primary_key']}  similarity {m['similarity']:.2f}  query {m['query_coverage']:.0%}  reference {m['reference_coverage']:.0%}  {m['modality']}")
        for s in m["segments"]:
            extra = f"  speed {s['speed']:.2f}" if abs(s["speed"] - 1) >= 0.015 else ""
            extra += "  mirrored" if s.get("flipped") else ""
            print(f"    query {_fmt_t(s['query_start'])}-{_fmt_t(s['query_end'])}  ~  reference {_fmt_t(s['reference_start'])}-{_fmt_t(s['reference_end'])}  score {s['score']:.2f}  {s['modality']}{extra}")


def _run_inputs(args, store, save_type: str) -> int:
    from tqdm import tqdm

    if getattr(args, "key", None) and len(args.files) > 1:
        _err("--key names one file; give one FILE with it")
        return 2
    engine = Engine(store)
    if save_type != "nosave" and args.library == DEFAULT_LIBRARY:
        try:
            store.get_library(DEFAULT_LIBRARY)
        except MediaDnaError:
            store.create_library(DEFAULT_LIBRARY)
    failed = 0
    bar = tqdm(args.files, unit="file", file=sys.stderr, disable=None if len(args.files) > 1 else True, leave=False)
    for path in bar:
        r = engine.process(path, args.library, save_type=save_type, primary_key=getattr(args, "key", None))
        failed += r["status"] != "succeeded"
        if args.json:
            bar.write(json.dumps(r, sort_keys=True), file=sys.stdout)
        else:
            bar.clear()
            _print_result(r)
        if r["status"] != "succeeded" and not args.json:
            _err(f"{r['input']['key']}: {r['error']['code']}: {r['error']['message']}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    retain_freed_memory()
    home = args.home or default_home()
    try:
        if args.command == "compare":
            env = compare(args.source, args.target)
            if args.json:
                print(json.dumps(env, sort_keys=True))
            elif env["status"] != "succeeded":
                _err(f"{env['error']['code']}: {env['error']['message']}")
            else:
                print(f"{'MATCH' if env['match'] else 'no match'}  similarity {env['similarity_score']:.2f} ({env['confidence']})  {env['media_type']}  {env['processing_time_ms']:.0f} ms")
                for s in env["matched_segments"]:
                    print(f"  source {_fmt_t(s['source_start'])}-{_fmt_t(s['source_end'])}  ~  target {_fmt_t(s['target_start'])}-{_fmt_t(s['target_end'])}  score {s['score']:.2f}")
            return 0 if env["status"] == "succeeded" else 1
        if args.command == "demo":
            return _demo(args.dir or home / "demo")
        if args.command == "dev":
            try:
                from functions.dev import run as run_dev  # the cloud side: needs the [aws,dev] extras
            except ImportError as exc:
                _err(f"invalid_argument: mediadna dev needs the cloud extras (pip install -e '.[dev]'): {exc}")
                return 2
            return run_dev(args.port, args.data, args.demo, args.demo_dir)
        if args.command == "fingerprint":
            fp = load_input(args.file)
            out = args.output or Path(str(args.file) + ".mdna")
            if args.format == "json":
                Path(out).write_text(fp.to_json())
            else:
                fp.save(out)
            print(out)
            return 0
        store = open_store(args.store or os.environ.get("MEDIADNA_STORE"), home)
        try:
            return _store_command(args, store)
        finally:
            store.close()
    except MediaDnaError as exc:
        _err(str(exc))
        return 1
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
        return 0


def _demo(folder: Path) -> int:
    """Make an original, two disguised copies and an unrelated clip; ingest and query."""
    from . import synth
    from .store import SQLiteStore

    folder.mkdir(parents=True, exist_ok=True)
    original = folder / "original.mp4"
    unrelated = folder / "unrelated.mp4"
    vertical = folder / "reupload_vertical.mp4"
    clip = folder / "clip_in_other_footage.mp4"
    print(f"generating sample videos in {folder} ...", file=sys.stderr, flush=True)
    if not original.exists():
        synth.make_video(original, kind="scenes", duration=30.0, seed=7)
    if not unrelated.exists():
        synth.make_video(unrelated, kind="scenes", duration=20.0, seed=8)
    if not vertical.exists():  # 9:16 blurred fill, mirrored, colour-graded, sped up 5 %
        synth.transform(original, vertical, "combo", steps=[("blurfill916", {"caption": "WAIT FOR IT"}), ("hflip", {}),
                                                             ("colorgrade", {"contrast": 1.2, "saturation": 1.3}), ("speed", {"factor": 1.05})])
    if not clip.exists():  # 10 s of the original inside 20 s of other footage
        synth.transform(original, clip, "embed", start=12.0, length=10.0, at=6.0, host_seed=9, host_kind="talk")
    store = SQLiteStore(folder / "demo-library.sqlite3")
    try:
        try:
            store.get_library("demo")
        except MediaDnaError:
            store.create_library("demo")
        engine = Engine(store)
        print("$ mediadna ingest --library demo original.mp4", flush=True)
        _print_result(engine.process(original, "demo", save_type="save"))
        failed = 0
        for q in (vertical, clip, unrelated):
            print(f"\n$ mediadna query --library demo {q.name}")
            r = engine.process(q, "demo")
            failed += r["status"] != "succeeded"
            _print_result(r)
    finally:
        store.close()
    return 1 if failed else 0


def _store_command(args, store) -> int:
    if args.command in ("import", "rescan"):
        from .cli_imports import run as run_import_command

        return run_import_command(args, store)
    if args.command == "library":
        if args.action == "create":
            lib = store.create_library(args.name, threshold=args.threshold, min_segment_seconds=args.min_segment)
            print(f"created library {lib.name} (threshold {lib.threshold}, min segment {lib.min_segment_seconds} s)")
        elif args.action == "list":
            libs = store.list_libraries()
            if args.json:
                for lib in libs:
                    print(json.dumps(lib.to_dict(), sort_keys=True))
            else:
                for lib in libs:
                    print(f"{lib.name}\t{lib.file_count} files\tthreshold {lib.threshold}\tmin segment {lib.min_segment_seconds} s")
        elif args.action == "get":
            lib = store.get_library(args.name)
            print(json.dumps(lib.to_dict(), sort_keys=True) if args.json else
                  f"{lib.name}\t{lib.file_count} files\tthreshold {lib.threshold}\tmin segment {lib.min_segment_seconds} s\tcreated {lib.created_at}")
        else:
            store.delete_library(args.name)
            print(f"deleted library {args.name}")
        return 0
    if args.command == "jobs":
        return _jobs_command(args, store)
    if args.command == "ingest":
        return _run_inputs(args, store, args.save_type)
    if args.command == "query":
        return _run_inputs(args, store, "nosave")
    if args.command == "files":
        if args.action == "list":
            page = store.list_files(args.library, limit=args.limit, cursor=args.cursor)
            for rec in page.items:
                if args.json:
                    print(json.dumps(rec.to_dict(), sort_keys=True))
                else:
                    print(f"{rec.primary_key}\t{rec.duration:.1f} s\t{rec.media_type}\t{rec.sha256[:12]}")
            if page.next_cursor:
                print(f"more: --cursor {page.next_cursor}", file=sys.stderr)
        elif args.action == "get":
            rec = store.get_file(args.library, args.key)
            print(json.dumps(rec.to_dict(), sort_keys=True) if args.json else
                  f"{rec.primary_key}\t{rec.duration:.1f} s\t{rec.media_type}\t{rec.sha256}\tcreated {rec.created_at}")
        else:
            store.delete_file(args.library, args.key)
            print(f"deleted {args.key}")
        return 0
    raise AssertionError(args.command)


def _print_job(job: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(job, sort_keys=True))
        return
    error = f"\t{job['error_code']}" if job.get("error_code") else ""
    print(f"{job['job_id']}\t{job['state']}\t{job['kind']}\t{job.get('library') or '-'}\t{job['created_at']}\t"
          f"{job.get('input_key') or ''}{error}")


def _jobs_command(args, store) -> int:
    """``mediadna jobs``: the service the HTTP API uses; on an embedded store submit runs the job here."""
    from .service import InlineLauncher, Service
    from .decode import is_url

    launcher = InlineLauncher(store)
    service = Service(store, launcher=launcher)
    if args.action == "list":
        page = service.list_jobs(library=args.library, state=args.state, since=args.since, until=args.until,
                                 limit=args.limit, cursor=args.cursor)
        for job in page.items:
            _print_job(job, args.json)
        if page.next_cursor:
            print(f"more: --cursor {page.next_cursor}", file=sys.stderr)
        return 0
    if args.action == "get":
        _print_job(service.get_job(args.job_id), args.json)
        return 0
    if args.library == DEFAULT_LIBRARY:
        try:
            store.get_library(DEFAULT_LIBRARY)
        except MediaDnaError:
            store.create_library(DEFAULT_LIBRARY)
    url = is_url(args.input)
    submitted = service.submit_job(args.library, key=None if url else args.input, source_url=args.input if url else None,
                                   save_type=args.save_type, primary_key=args.key, client_token=args.client_token)
    job = submitted.job
    _print_job(job, args.json)
    result = launcher.results.get(job["job_id"])
    if not args.json and result is not None:
        _print_result(result)
    if not submitted.created:
        print(f"job {job['job_id']} was submitted before ({job['state']})", file=sys.stderr)
    return 0 if job["state"] != "failed" else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
