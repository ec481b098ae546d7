#!/usr/bin/env python
"""mediadna on real footage: every transformation applied to videos you bring.

    python bench/footage.py --sources DIR --out OUT [--draws 1] [--seed 1] [--jobs 2]

Every video in DIR (mp4, avi, mov, mkv, webm) is a reference; nothing else is
in the library.  Each reference of at least 8 s gets ``--draws`` copies per
standard and hard transformation of ``bench/run.py`` (parameters drawn at
random, mediadna.synth makes them), and each reference is also queried
against the others (its own entry left out) as an unrelated video.  Printed:
recall per transformation, over all copies and over the copies found by
picture alone (``video`` or ``audiovisual`` modality; copies of silent
footage can only be found that way), duplicates naming another reference,
and false positives among the references.  The corpus and ``report.json``
go to OUT.

The sources behind the README's figures are public clips, fetched from the
package registries (see README, "Real footage").  Pairs in DIR that really are
copies of each other (a trailer and a shot from it) are reported as such, not
counted as false positives, when their names start with prefixes given
together in ``--related PREFIX,PREFIX``.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from run import HARD, STANDARD  # noqa: E402

from mediadna import synth  # noqa: E402
from mediadna.pipeline import Engine  # noqa: E402
from mediadna.store import MemoryStore  # noqa: E402

VIDEO_EXT = {".mp4", ".avi", ".mov", ".mkv", ".webm"}
MIN_COPY_SECONDS = 8.0  # an embedded excerpt is 6-15 s


def _make(q: dict) -> dict:
    if not Path(q["path"]).exists():
        try:
            synth.transform(q["src"], q["path"], q["name"], **q["params"])
        except Exception as exc:  # a source the generator cannot re-encode: reported, not fatal
            return {**q, "error": f"{type(exc).__name__}: {exc}"}
    return q


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sources", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--draws", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--related", default="", help="comma-separated name prefixes whose files are copies of each other")
    a = ap.parse_args(argv)
    sources = sorted(p for p in a.sources.iterdir() if p.suffix.lower() in VIDEO_EXT)
    related = [s for s in a.related.split(",") if s]
    (a.out / "copies").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    queries = []
    for src in sources:
        if synth.probe(src).duration < MIN_COPY_SECONDS:
            continue
        for name in STANDARD + HARD:
            for k in range(a.draws):
                queries.append({"src": str(src), "ref": src.name, "name": name, "params": synth.random_params(name, rng),
                                "path": str(a.out / "copies" / f"{src.stem}__{name}{k}.mp4")})
    with ProcessPoolExecutor(a.jobs) as ex:
        queries = list(ex.map(_make, queries))

    store = MemoryStore()
    store.create_library("footage")
    engine = Engine(store)
    for src in sources:
        r = engine.process(str(src), "footage", save_type="onlysave")
        if r["status"] != "succeeded":
            print(f"  cannot ingest {src.name}: {r['error']}", file=sys.stderr)

    def kin(x: str, y: str) -> bool:
        return x == y or (any(x.startswith(p) for p in related) and any(y.startswith(p) for p in related))

    per: dict[str, list[int]] = {}
    visual: dict[str, list[int]] = {}
    rows, wrong = [], 0
    for q in queries:
        if "error" in q:
            rows.append({**q, "found": None})
            continue
        r = engine.process(q["path"], "footage", save_type="nosave")
        own = next((m for m in r["matches"] if m["primary_key"] == q["ref"]), None)  # a file is listed once
        found = bool(own and own["duplicate"])
        wrong += any(m["duplicate"] and not kin(m["primary_key"], q["ref"]) for m in r["matches"])
        per.setdefault(q["name"], []).append(int(found))
        visual.setdefault(q["name"], []).append(int(found and own["modality"] in ("video", "audiovisual")))
        rows.append({"path": q["path"], "name": q["name"], "params": q["params"], "found": found,
                     "similarity": own["similarity"] if own else 0.0, "modality": own["modality"] if found else None})
    false_pos = []
    for src in sources:  # each reference against the others
        r = engine.process(str(src), "footage", save_type="nosave")
        false_pos += [(src.name, m["primary_key"]) for m in r["matches"] if m["duplicate"] and not kin(m["primary_key"], src.name)]

    def frac(d: dict, names: list[str]) -> str:
        n = sum(len(d.get(k, [])) for k in names)
        return f"{sum(sum(d.get(k, [])) for k in names)}/{n}"

    print("| transformation | found | found by picture |\n|---|---|---|")
    for name in STANDARD + HARD:
        if name in per:
            print(f"| {name} | {frac(per, [name])} | {frac(visual, [name])} |")
    print(f"| **standard** | {frac(per, STANDARD)} | {frac(visual, STANDARD)} |")
    print(f"| **hard** | {frac(per, HARD)} | {frac(visual, HARD)} |")
    print(f"duplicates naming another reference: {wrong}; references taken for another: {len(false_pos)} {false_pos}")
    failed = [q["path"] for q in queries if "error" in q]
    if failed:
        print(f"copies the generator could not make: {len(failed)}")
    report = {"sources": [s.name for s in sources], "per_transformation": per, "by_picture": visual,
              "wrong_reference_duplicates": wrong, "false_positives": false_pos, "rows": rows}
    (a.out / "report.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
