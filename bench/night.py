#!/usr/bin/env python
"""Night footage: copies whose sound was swapped, so only dim pictures can match.

    python bench/night.py --out DIR [--refs 20] [--seed 9100]

Builds (once) ``--refs`` generated night clips (the ``dark`` kind: a dark sky
over darker ground, dim moving lights, fades; 20-40 s) as the library, three
copies of each, every one a standard or hard picture edit drawn at random
followed by a sound swap, and as many unrelated night clips (12-30 s) as
negatives.  Night clips are each other's worst look-alikes, so the library
holds nothing else.  Prints recall per edit, false positives and duplicates
naming a wrong reference; writes DIR/night.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from mediadna import runtime, synth
from mediadna.pipeline import Engine
from mediadna.store import MemoryStore

#: Picture edits drawn for the copies (partial copies are bench/run.py's business).
EDITS = [t for t in synth.STANDARD_TRANSFORMS + synth.HARD_TRANSFORMS if t[0] not in ("soundswap", "embed", "pip", "combo")]
COPIES = 3


def _make(job: tuple) -> None:
    kind, args = job
    if kind == "video":
        path, seed, duration = args
        if not Path(path).exists():
            synth.make_video(path, kind="dark", duration=duration, seed=seed)
    else:
        src, dst, steps = args
        if not Path(dst).exists():
            synth.transform(src, dst, "combo", steps=steps)


def build_corpus(out: Path, n: int, seed: int, jobs: int) -> dict:
    rng = np.random.default_rng(seed)
    for d in ("refs", "q", "neg"):
        (out / d).mkdir(parents=True, exist_ok=True)
    refs = [(str(out / "refs" / f"dref{i:03d}.mp4"), seed + i, float(rng.uniform(20, 40))) for i in range(n)]
    negs = [(str(out / "neg" / f"dneg{i:03d}.mp4"), seed + 50_000 + i, float(rng.uniform(12, 30))) for i in range(n)]
    with ProcessPoolExecutor(jobs) as ex:
        list(ex.map(_make, [("video", r) for r in refs + negs]))
    queries, copies = [], []
    for i, (path, _, _) in enumerate(refs):
        for k in range(COPIES):
            name, params = EDITS[int(rng.integers(len(EDITS)))]
            dst = str(out / "q" / f"dref{i:03d}_{k}_{name}.mp4")
            steps = [(name, params), ("soundswap", {"seed": int(rng.integers(1 << 30)), "kind": "music"})]
            copies.append(("copy", (path, dst, steps)))
            queries.append({"path": dst, "ref": Path(path).name, "edit": name})
    with ProcessPoolExecutor(jobs) as ex:
        list(ex.map(_make, copies))
    queries += [{"path": p, "ref": None, "edit": "negative"} for p, _, _ in negs]
    manifest = {"seed": seed, "refs": [r[0] for r in refs], "queries": queries}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def evaluate(man: dict) -> dict:
    store = MemoryStore()
    store.create_library("night")
    engine = Engine(store)
    for path in man["refs"]:
        r = engine.process(path, "night", save_type="onlysave")
        assert r["status"] == "succeeded", r
    found, total, fp, wrong, neg, misses = Counter(), Counter(), 0, 0, 0, []
    for q in man["queries"]:
        r = engine.process(q["path"], "night", save_type="nosave")
        dups = {m["primary_key"] for m in r["matches"] if m["duplicate"]}
        if q["ref"] is None:
            neg += 1
            fp += bool(dups)
            continue
        total[q["edit"]] += 1
        found[q["edit"]] += q["ref"] in dups
        wrong += bool(dups - {q["ref"]})
        if q["ref"] not in dups:
            misses.append(Path(q["path"]).name)
    return {"found": sum(found.values()), "copies": sum(total.values()),
            "per_edit": {k: [found[k], total[k]] for k in sorted(total)},
            "false_positives": fp, "negatives": neg, "wrong_reference_duplicates": wrong, "misses": misses}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--refs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=9100)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    runtime.retain_freed_memory()
    mf = args.out / "manifest.json"
    man = json.loads(mf.read_text()) if mf.exists() else build_corpus(args.out, args.refs, args.seed, args.jobs)
    rep = evaluate(man)
    (args.out / "night.json").write_text(json.dumps(rep, indent=1))
    print(f"night copies found (sound swapped): {rep['found']}/{rep['copies']}; "
          f"false positives {rep['false_positives']}/{rep['negatives']}; wrong references {rep['wrong_reference_duplicates']}")
    print(" ".join(f"{k} {v[0]}/{v[1]}" for k, v in rep["per_edit"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
