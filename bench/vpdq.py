#!/usr/bin/env python
"""Meta's vPDQ on the dev corpus, with its published matching rule: the yardstick of issue #2.

    pip install pdqhash                 # the PDQ reference implementation's Python binding (builds with a C++ compiler)
    python bench/vpdq.py --out DIR      # DIR: a corpus made by `python bench/run.py corpus --out DIR`

vPDQ (facebook/ThreatExchange, vpdq/README.md) hashes one frame per second
with PDQ (256 bits, with a 0-100 quality), and compares two videos by brute
force: frames of quality < 50 are dropped and equal hashes de-duplicated;
``query_match_percent`` is the share of the query's hashes within 31 bits of
any of the reference's, ``compared_match_percent`` the other way round; the
python-threatexchange signal type calls it a match when both reach 80 %
(``VPDQ_CONFIDENT_DISTANCE_THRESHOLD = 31``, ``VPDQ_CONFIDENT_QUALITY_THRESHOLD
= 50``, ``VPDQ_CONFIDENT_MATCH_THRESHOLD = 80.0``).  It reports no time codes.

Frames are decoded here with PyAV at the file's own size (the first frame at or
after each whole second, as vpdq's decoder does at 1 frame/s) and hashed with
``pdqhash.compute``.  Every video query of the corpus (standard, hard,
negatives) is compared with every library file; recall counts a query whose
true reference matches, a false positive any negative that matches anything.
Writes DIR/vpdq.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import av
import numpy as np

QUALITY = 50  # frames below this PDQ quality are not compared
DISTANCE = 31  # bits (of 256) within which two frame hashes match
MATCH_PERCENT = 80.0  # both directions must reach this


def video2vpdq(path: str) -> np.ndarray:
    """(n, 4) uint64: de-duplicated PDQ hashes of 1 frame/s with quality >= QUALITY."""
    import pdqhash

    hashes = []
    with av.open(path) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        next_t = 0.0
        for frame in c.decode(stream):
            if frame.time is None or frame.time < next_t:
                continue
            next_t = np.floor(frame.time) + 1.0
            bits, quality = pdqhash.compute(frame.to_ndarray(format="rgb24"))
            if quality >= QUALITY:
                hashes.append(np.packbits(bits.astype(np.uint8)).view(">u8").astype(np.uint64))
    if not hashes:
        return np.zeros((0, 4), np.uint64)
    return np.unique(np.stack(hashes), axis=0)


def _popcount(x: np.ndarray) -> np.ndarray:
    return np.unpackbits(x.view(np.uint8), axis=-1).sum(axis=-1)


def match_percents(q: np.ndarray, r: np.ndarray) -> tuple[float, float]:
    """(query_match_percent, compared_match_percent) by brute force."""
    if not len(q) or not len(r):
        return 0.0, 0.0
    d = _popcount(q[:, None, :] ^ r[None, :, :])
    close = d <= DISTANCE
    return 100.0 * close.any(1).mean(), 100.0 * close.any(0).mean()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    man = json.loads((a.out / "manifest.json").read_text())
    t0 = time.time()
    lib = {Path(p).name: video2vpdq(p) for p in man["refs"] + man["distractors"]}
    per: dict[str, list[int]] = {}
    fp = 0
    for q in man["queries"]:
        if q["category"] not in ("standard", "hard", "negative"):
            continue
        h = video2vpdq(q["path"])
        hits = {k for k, r in lib.items() if min(match_percents(h, r)) >= MATCH_PERCENT}
        if q["category"] == "negative":
            fp += bool(hits)
            per.setdefault("negative (no match)", []).append(int(not hits))
            continue
        ok = int(q["ref"] in hits)
        per.setdefault(q["name"], []).append(ok)
        per.setdefault(f"[{q['category']}]", []).append(ok)
    rep = {"recall": {k: round(sum(v) / len(v), 3) for k, v in sorted(per.items())},
           "counts": {k: len(v) for k, v in sorted(per.items())},
           "false_positives": fp, "seconds": round(time.time() - t0, 1),
           "rule": {"quality": QUALITY, "distance": DISTANCE, "match_percent": MATCH_PERCENT}}
    (a.out / "vpdq.json").write_text(json.dumps(rep, indent=1))
    print("| transformation | vPDQ recall | n |\n|---|---|---|")
    for k, v in rep["recall"].items():
        print(f"| {k} | {v:.3f} | {rep['counts'][k]} |")
    print(f"\nfalse positives: {fp}; {rep['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
