#!/usr/bin/env python
"""Audio-excerpt benchmark: are short noisy lossy excerpts of a reference's sound found?

    python bench/audio_excerpts.py --out DIR [--refs 40] [--distractors 0] [--seed 7000] [--store memory|sqlite] [--json FILE]
    python bench/audio_excerpts.py --out DIR --recordings MUSIC_DIR [--refs 40]

Issue #2's bar: a noisy, lossy 5 s excerpt of a reference's sound is
identified >= 95 % of the time, a 2 s excerpt >= 80 %, with no false
positives on unrelated sound.

The corpus (generated once into DIR, reused by later runs) is made with
``mediadna.synth``:

* ``--refs`` references, music and speech alternating, each from its own seed,
  30-90 s long, stored as WAV or 128 kb/s AAC; plus a few ambience
  references as distractors (never queried) and ``--distractors`` more
  music and speech references, never queried either (a bigger library
  offers more chance alignments);
* per reference, two 2 s and two 5 s excerpts at random offsets, with white
  noise at 10-20 dB SNR, encoded as MP3 or AAC at 32-64 kb/s;
* unrelated queries: 2 s and 5 s excerpts, made the same way, of music and
  speech from seeds that are not in the library.

With ``--recordings DIR`` the references are real recordings instead (any
audio files at least 20 s long in DIR, sorted by name): every second file,
up to ``--refs``, is ingested whole, and the others are the unrelated
sources; excerpts are made the same way.  Nothing is downloaded: bring your
own music (Debian's ``wesnoth-1.16-music`` and ``supertuxkart-data``
packages hold GPL and CC BY-SA game soundtracks; the README has the recipe).

References (and their queries) are split by seed into a ``dev`` half (what
thresholds may be tuned on) and a ``held-out`` half (what is reported); the
unrelated queries are split the same way.  Everything goes through the
public API: ``Engine(store).process(path, library, save_type=...)``, and the
library's own duplicate rule decides.

A query counts as found when a duplicate match names its reference; "time
code" additionally needs that match's best segment to put the query's start
within 0.5 s of the true reference time.  A false positive is any duplicate
on an unrelated query; "wrong ref" counts excerpts declared duplicates of
another reference.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from mediadna import synth
from mediadna.pipeline import Engine
from mediadna.runtime import retain_freed_memory
from mediadna.store import MemoryStore, SQLiteStore

LIBRARY = "excerpts"
KINDS = ("music", "speech")
LENGTHS = (2.0, 5.0)
EXCERPTS_PER_LENGTH = 2
AMBIENCE_DISTRACTORS = 6
#: A found excerpt's time code is right when its start maps within this of the truth (s).
TIME_TOL = 0.5


def _split(i: int) -> str:
    """Pairs of consecutive indices alternate halves, so each half gets music and speech."""
    return "dev" if (i // 2) % 2 == 0 else "held-out"


def build_corpus(out: Path, refs: int, seed: int, distractors: int = 0, recordings: Path | None = None) -> dict:
    man_path = out / "manifest.json"
    if man_path.exists():
        man = json.loads(man_path.read_text())
        if (man.get("refs_n") == refs and man.get("seed") == seed and man.get("distractors_n", 0) == distractors
                and man.get("recordings") == (str(recordings) if recordings else None)):
            return man
    if recordings is not None:
        man = _recordings_corpus(out, refs, seed, recordings)
        man_path.write_text(json.dumps(man, indent=1))
        return man
    rng = np.random.default_rng(seed)
    for d in ("refs", "queries", "unrelated_src", "unrelated"):
        (out / d).mkdir(parents=True, exist_ok=True)
    library, queries = [], []
    for i in range(refs):
        kind = KINDS[i % 2]
        dur = float(rng.uniform(30, 90))
        ext, br = (".wav", None) if i % 3 == 0 else (".m4a", "128k")
        path = out / "refs" / f"ref{i:03d}_{kind}{ext}"
        if not path.exists():
            synth.make_audio(path, kind=kind, duration=dur, seed=seed + i, bitrate=br)
        library.append({"path": str(path), "kind": kind, "split": _split(i), "queried": True})
        queries += _excerpts(out, rng, seed, i, path, kind)
    for j in range(AMBIENCE_DISTRACTORS):
        path = out / "refs" / f"amb{j:03d}_noise.wav"
        dur = float(rng.uniform(30, 90))  # drawn whether or not the file exists: the stream stays the same
        if not path.exists():
            synth.make_audio(path, kind="noise", duration=dur, seed=seed + 10_000 + j)
        library.append({"path": str(path), "kind": "noise", "split": "-", "queried": False})
    drng = np.random.default_rng(seed + 1)  # its own stream: the queries do not depend on --distractors
    for j in range(distractors):  # never queried: only make the library bigger
        kind = KINDS[j % 2]
        path = out / "refs" / f"dis{j:04d}_{kind}.m4a"
        dur = float(drng.uniform(30, 90))
        if not path.exists():
            synth.make_audio(path, kind=kind, duration=dur, seed=seed + 40_000 + j, bitrate="128k")
        library.append({"path": str(path), "kind": kind, "split": "-", "queried": False})
    for j in range(refs):  # one unrelated source per reference: a 2 s and a 5 s excerpt of it
        kind = KINDS[j % 2]
        src = out / "unrelated_src" / f"src{j:03d}_{kind}.wav"
        if not src.exists():
            synth.make_audio(src, kind=kind, duration=20.0, seed=seed + 20_000 + j)
        queries += _unrelated(out, rng, seed, j, src, kind)
    man = {"seed": seed, "refs_n": refs, "distractors_n": distractors, "library": library, "queries": queries}
    man_path.write_text(json.dumps(man, indent=1))
    return man


AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac"}
#: Recordings shorter than this (s) are jingles and stings, not songs: skipped.
MIN_RECORDING_SECONDS = 20.0


def _recordings_corpus(out: Path, refs: int, seed: int, folder: Path) -> dict:
    """The corpus of :func:`build_corpus` from real recordings: every second file is a reference."""
    rng = np.random.default_rng(seed)
    files = [f for f in sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
             if (info := synth.probe(f)).has_audio and info.duration >= MIN_RECORDING_SECONDS]  # container facts: no decoding
    chosen, others = files[0::2][:refs], files[1::2][:refs]
    for d in ("queries", "unrelated"):
        (out / d).mkdir(parents=True, exist_ok=True)
    library, queries = [], []
    for i, path in enumerate(chosen):
        library.append({"path": str(path), "kind": "recording", "split": _split(i), "queried": True})
        queries += _excerpts(out, rng, seed, i, path, "recording")
    for j, src in enumerate(others):
        queries += _unrelated(out, rng, seed, j, src, "recording")
    return {"seed": seed, "refs_n": refs, "distractors_n": 0, "recordings": str(folder), "library": library, "queries": queries}


def _excerpts(out: Path, rng: np.random.Generator, seed: int, i: int, path: Path, kind: str) -> list[dict]:
    """EXCERPTS_PER_LENGTH noisy lossy excerpts of reference ``i`` per length (made once)."""
    queries = []
    for length in LENGTHS:
        for k in range(EXCERPTS_PER_LENGTH):
            q = _query_params(rng, length)
            qp = out / "queries" / f"ref{i:03d}_{int(length)}s_{k}{q.pop('ext')}"
            if not qp.exists():
                synth.transform(path, qp, "audio_only", seed=seed * 10 + i * 7 + k, **q)
            queries.append({"path": str(qp), "ref": path.name, "kind": kind, "length": length, "split": _split(i)})
    return queries


def _unrelated(out: Path, rng: np.random.Generator, seed: int, j: int, src: Path, kind: str) -> list[dict]:
    """One excerpt per length of unrelated source ``j``, made like the references' (made once)."""
    queries = []
    for length in LENGTHS:
        q = _query_params(rng, length)
        qp = out / "unrelated" / f"neg{j:03d}_{int(length)}s{q.pop('ext')}"
        if not qp.exists():
            synth.transform(src, qp, "audio_only", seed=seed * 10 + 5000 + j, **q)
        queries.append({"path": str(qp), "ref": None, "kind": kind, "length": length, "split": _split(j)})
    return queries


def _query_params(rng: np.random.Generator, length: float) -> dict:
    return {"length": length, "start_frac": float(rng.uniform(0, 1)), "snr_db": float(rng.uniform(10, 20)),
            "bitrate": str(rng.choice(["32k", "48k", "64k"])), "ext": str(rng.choice([".mp3", ".m4a"]))}


def evaluate(out: Path, man: dict, store_kind: str) -> list[dict]:
    if store_kind == "sqlite":
        db = out / "library.sqlite3"
        for p in (db, Path(str(db) + "-wal"), Path(str(db) + "-shm")):
            p.unlink(missing_ok=True)
        store = SQLiteStore(db)
    else:
        store = MemoryStore()
    store.create_library(LIBRARY)
    engine = Engine(store)
    for r in man["library"]:
        res = engine.process(r["path"], LIBRARY, save_type="onlysave")
        assert res["status"] == "succeeded", res
    rows = []
    for q in man["queries"]:
        res = engine.process(q["path"], LIBRARY, save_type="nosave")
        if res["status"] != "succeeded":
            print(f"  FAILED {q['path']}: {res['error']}", file=sys.stderr)
        dups = [m for m in res["matches"] if m["duplicate"]]
        row = {**q, "match_ms": res["timings"].get("match_ms", 0.0),
               "duplicates": [m["primary_key"] for m in dups],
               "best_other": max((m["similarity"] for m in res["matches"] if m["primary_key"] != q["ref"]), default=0.0)}
        if q["ref"] is not None:
            truth = synth.read_truth(q["path"])
            mine = [m for m in res["matches"] if m["primary_key"] == q["ref"]]
            row["similarity"] = mine[0]["similarity"] if mine else 0.0
            row["found"] = q["ref"] in row["duplicates"]
            row["wrong"] = any(k != q["ref"] for k in row["duplicates"])
            row["timecode"] = False
            if row["found"]:
                seg = max(mine[0]["segments"], key=lambda s: s["score"] * (s["query_end"] - s["query_start"]))
                predicted = seg["reference_start"] + seg["speed"] * (0.0 - seg["query_start"])
                row["timecode"] = abs(predicted - truth["reference_start"]) <= TIME_TOL
        rows.append(row)
    store.close()
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| half | excerpt | found | time code right | wrong ref | unrelated: false positives |",
             "|---|---|---|---|---|---|"]
    for half in ("dev", "held-out"):
        for length in LENGTHS:
            pos = [r for r in rows if r["split"] == half and r["length"] == length and r["ref"] is not None]
            neg = [r for r in rows if r["split"] == half and r["length"] == length and r["ref"] is None]
            f = sum(r["found"] for r in pos)
            tc = sum(r["timecode"] for r in pos)
            w = sum(r["wrong"] for r in pos)
            fp = sum(bool(r["duplicates"]) for r in neg)
            lines.append(f"| {half} | {length:.0f} s | {f}/{len(pos)} ({f / max(1, len(pos)):.1%}) | {tc}/{len(pos)} "
                         f"| {w} | {fp}/{len(neg)} |")
    return "\n".join(lines)


def detail(rows: list[dict]) -> str:
    """Per kind, and the score margins: true matches' similarity vs the best unrelated one."""
    lines = []
    for half in ("dev", "held-out"):
        for length in LENGTHS:
            pos = [r for r in rows if r["split"] == half and r["length"] == length and r["ref"] is not None]
            neg = [r for r in rows if r["split"] == half and r["length"] == length]
            kinds = sorted({r["kind"] for r in pos})
            per_kind = ", ".join(f"{k} {sum(r['found'] for r in pos if r['kind'] == k)}/{sum(r['kind'] == k for r in pos)}"
                                 for k in kinds)
            sims = np.array([r["similarity"] for r in pos]) if pos else np.zeros(1)
            other = max((r["best_other"] for r in neg), default=0.0)
            lines.append(f"{half:8s} {length:.0f} s: {per_kind}; true-match similarity median {np.median(sims):.2f}, "
                         f"10th pct {np.percentile(sims, 10):.2f}; best similarity of any wrong/unrelated match {other:.2f}")
    ms = [r["match_ms"] for r in rows]
    lines.append(f"query match time: median {np.median(ms):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms")
    return "\n".join(lines)


def main(argv=None) -> int:
    retain_freed_memory()  # as the CLI and the Lambda functions do (mediadna.runtime)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="corpus and results folder (the corpus is reused)")
    ap.add_argument("--refs", type=int, default=40)
    ap.add_argument("--distractors", type=int, default=0, help="extra music/speech library files, never queried")
    ap.add_argument("--seed", type=int, default=7000)
    ap.add_argument("--store", choices=("memory", "sqlite"), default="memory")
    ap.add_argument("--json", type=Path, help="also write per-query rows here")
    ap.add_argument("--recordings", type=Path, help="real recordings to use instead of generated music and speech")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    t = time.time()
    man = build_corpus(a.out, a.refs, a.seed, a.distractors, a.recordings)
    t1 = time.time()
    rows = evaluate(a.out, man, a.store)
    n_ref = sum(r["queried"] for r in man["library"])
    print(f"corpus {t1 - t:.0f} s, evaluation {time.time() - t1:.0f} s; library: {len(man['library'])} files "
          f"({n_ref} references + {len(man['library']) - n_ref} distractors)", file=sys.stderr)
    print(table(rows))
    print()
    print(detail(rows))
    misses = [Path(r["path"]).name for r in rows if r["ref"] is not None and not r["found"] and r["split"] == "held-out"]
    fps = [Path(r["path"]).name for r in rows if r["ref"] is None and r["duplicates"]]
    if misses:
        print("held-out misses:", " ".join(misses), file=sys.stderr)
    if fps:
        print("false positives:", " ".join(fps), file=sys.stderr)
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
