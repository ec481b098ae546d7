"""``mediadna import`` and ``mediadna rescan``: the command-line side of :mod:`mediadna.imports`.

    mediadna import --library L DIR_OR_MANIFEST [--save-type onlysave|forcesave|save] [--id ID] [--json]
    mediadna import status ID [--json]
    mediadna rescan --library REFERENCES --queries UPLOADS [--since TIME] [--json] [--all]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .imports import (
    DEFAULT_IMPORT_SAVE_TYPE,
    IMPORT_SAVE_TYPES,
    get_import,
    items_from_folder,
    items_from_manifest_file,
    run_import,
)


def add_parsers(sub, default_library: str) -> None:
    im = sub.add_parser("import", help="import a folder or a manifest into a library (a re-run skips what is in); "
                                       "`import status ID` shows an import's progress and failures")
    im.add_argument("target", nargs="+", metavar="DIR_OR_MANIFEST",
                    help="a folder (every file under it; primary key = relative path), or a manifest: JSON Lines, "
                         "CSV or JSON array of keys with optional primary keys; or `status ID`")
    im.add_argument("--library", default=default_library)
    im.add_argument("--save-type", choices=IMPORT_SAVE_TYPES, default=DEFAULT_IMPORT_SAVE_TYPE,
                    help="onlysave (default: store without matching), forcesave (match and store), "
                         "save (store unless a copy is in; slower)")
    im.add_argument("--id", default=None, help="the import's id (default: a new one)")
    im.add_argument("--failures", type=int, default=100, help="failed items listed by `import status` (default 100)")
    im.add_argument("--json", action="store_true", help="one JSON line per item, then the import record")

    rs = sub.add_parser("rescan", help="check kept uploads (a query library) against a reference library again")
    rs.add_argument("--library", default=default_library, help="the references to check against")
    rs.add_argument("--queries", required=True, metavar="LIBRARY", help="the library of kept uploads to re-check")
    rs.add_argument("--json", action="store_true", help="one result document per upload that matches, JSON Lines")
    rs.add_argument("--all", action="store_true", help="report every upload, matching or not")
    rs.add_argument("--since", default=None, metavar="TIME", help="only references added at or after TIME (ISO-8601)")


def _err(msg: str) -> None:
    print(f"mediadna: error: {msg}", file=sys.stderr)


def _summary(rec: dict) -> str:
    return (f"import {rec['import_id']} ({rec['state']}): {rec['done']} done, {rec['skipped']} skipped, "
            f"{rec['failed']} failed of {rec['total']}")


def run(args, store) -> int:
    if args.command == "rescan":
        return _rescan(args, store)
    target = args.target
    if target[0] == "status":
        if len(target) != 2:
            _err("usage: mediadna import status ID")
            return 2
        view = get_import(store, target[1], failures=args.failures)
        if args.json:
            print(json.dumps(view, sort_keys=True))
        else:
            print(_summary(view))
            for f in view["failures"]:
                print(f"  FAILED {f['item']}: {f['code']}: {f['message']}")
            if view["failures_cursor"]:
                print(f"  ... more failures (use --failures N or --json)", file=sys.stderr)
        return 0
    if len(target) != 1:
        _err("give one folder or manifest (or `status ID`)")
        return 2
    path = Path(target[0])
    if path.is_dir():
        items = items_from_folder(path)
    elif path.is_file():
        items = items_from_manifest_file(path)
    else:
        _err(f"input_not_found: no such folder or manifest: {path}")
        return 1
    return _run(args, store, items, str(path))


def _run(args, store, items, source: str) -> int:
    from tqdm import tqdm

    counts = {"done": 0, "skipped": 0, "failed": 0}
    bar = tqdm(total=len(items), unit="file", file=sys.stderr, disable=None, leave=False)

    def on_item(outcome) -> None:
        counts[outcome.outcome] += 1
        bar.update(1)
        bar.set_postfix(counts, refresh=False)
        if args.json:
            bar.write(json.dumps(outcome.to_dict(), sort_keys=True), file=sys.stdout)
        elif outcome.outcome == "failed":
            bar.write(f"{outcome.item}: FAILED {outcome.code}: {outcome.message}", file=sys.stderr)

    try:
        rec = run_import(store, args.library, items, source=source, save_type=args.save_type, import_id=args.id,
                         on_item=on_item)
    finally:
        bar.close()
    if args.json:
        print(json.dumps(rec, sort_keys=True))
    else:
        print(_summary(rec))
    return 1 if rec["failed"] else 0


def _rescan(args, store) -> int:
    from .rescan import rescan

    found = 0
    for result in rescan(store, args.queries, args.library, since=args.since, include_unmatched=args.all):
        found += bool(result["matches"])
        if args.json:
            print(json.dumps(result, sort_keys=True))
        else:
            from .cli import _print_result  # the same lines as query and ingest

            _print_result(result)
    if not args.json:
        print(f"{found} upload(s) of {args.queries!r} match {args.library!r}", file=sys.stderr)
    return 0
