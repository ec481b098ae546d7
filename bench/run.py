#!/usr/bin/env python
"""mediadna benchmark: build a varied dev corpus, ingest, query, measure.

    python bench/run.py corpus  [--out bench/out] [--refs 12] [--seed 1000] [--jobs 2]
    python bench/run.py eval    [--out bench/out]
    python bench/run.py all     (both)
    python bench/run.py memory  (peak memory: 1-minute vs 10-minute input)
    python bench/run.py speed   (extraction vs decoding at 270p, 720p, 1080p)

The corpus is generated (mediadna.synth): references of every content kind
at several sizes and frame rates, a copy of each reference per standard and
hard transformation (parameters drawn at random per copy, so thresholds are
not tuned to fixed edits), 5 s and 2 s noisy lossy audio excerpts, unrelated
negatives of the same kinds, and unrelated distractors stored in the library.
``eval`` prints recall per transformation, false-positive rate, segment
precision/recall/F1 (VCSL-style: overlap on both time axes), extraction speed
(x realtime, and as a ratio to pure decoding of the same files) and query
latency, and writes bench/out/report.json and bench/out/report.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from mediadna import synth
from mediadna.decode import decode_timing
from mediadna.pipeline import Engine
from mediadna.runtime import retain_freed_memory
from mediadna.store import SQLiteStore

STANDARD = ["reencode", "resize", "crop", "letterbox", "pillarbox", "border", "blurfill916", "hflip",
            "colorgrade", "grayscale", "noise", "watermark", "speed", "fps"]
HARD = ["embed", "pip", "soundswap"]
SIZES = [((480, 270), 25.0), ((640, 360), 30.0), ((320, 240), 24.0), ((426, 240), 25.0)]
REF_SECONDS = 30.0


# --- corpus -------------------------------------------------------------------
def _job(spec: dict) -> dict:
    kind = spec["kind"]
    if kind == "video":
        if not Path(spec["path"]).exists():
            synth.make_video(spec["path"], kind=spec["content"], duration=spec["duration"], seed=spec["seed"],
                             size=tuple(spec["size"]), fps=spec["fps"])
    elif kind == "transform":
        if not Path(spec["path"]).exists():
            synth.transform(spec["src"], spec["path"], spec["name"], **spec["params"])
    return spec


def build_corpus(out: Path, refs: int, seed: int, jobs: int) -> dict:
    rng = np.random.default_rng(seed)
    c = out / "corpus"
    for d in ("refs", "distractors", "negatives", "copies", "audio"):
        (c / d).mkdir(parents=True, exist_ok=True)
    kinds = list(synth.VIDEO_KINDS)
    videos, refs_l, distractors, negatives = [], [], [], []
    for i in range(refs):
        size, fps = SIZES[i % len(SIZES)]
        s = {"kind": "video", "content": kinds[i % len(kinds)], "seed": seed + i, "size": size, "fps": fps,
             "duration": REF_SECONDS, "path": str(c / "refs" / f"ref{i:03d}_{kinds[i % len(kinds)]}.mp4")}
        videos.append(s)
        refs_l.append(s)
    for i in range(refs):
        size, fps = SIZES[(i + 1) % len(SIZES)]
        k = kinds[(i + 3) % len(kinds)]
        s = {"kind": "video", "content": k, "seed": seed + 5000 + i, "size": size, "fps": fps, "duration": REF_SECONDS,
             "path": str(c / "distractors" / f"dis{i:03d}_{k}.mp4")}
        videos.append(s)
        distractors.append(s)
    for i in range(2 * refs):
        size, fps = SIZES[(i + 2) % len(SIZES)]
        k = kinds[i % len(kinds)]
        s = {"kind": "video", "content": k, "seed": seed + 9000 + i, "size": size, "fps": fps,
             "duration": float(rng.uniform(12, 40)), "path": str(c / "negatives" / f"neg{i:03d}_{k}.mp4")}
        videos.append(s)
        negatives.append(s)
    with ProcessPoolExecutor(jobs) as ex:
        list(ex.map(_job, videos))
    queries = []
    for r in refs_l:
        stem = Path(r["path"]).stem
        for name in STANDARD + HARD:
            params = synth.random_params(name, rng)
            queries.append({"kind": "transform", "src": r["path"], "name": name, "params": params,
                            "category": "hard" if name in HARD else "standard", "ref": Path(r["path"]).name,
                            "path": str(c / "copies" / f"{stem}__{name}.mp4")})
        for length in (5.0, 2.0):
            params = {"length": length, "start_frac": float(rng.uniform(0, 1)), "snr_db": float(rng.uniform(5, 20)),
                      "bitrate": str(rng.choice(["32k", "64k", "128k"]))}
            ext = str(rng.choice([".mp3", ".m4a", ".wav"]))
            queries.append({"kind": "transform", "src": r["path"], "name": "audio_only", "params": params,
                            "category": f"audio{int(length)}s", "ref": Path(r["path"]).name,
                            "path": str(c / "audio" / f"{stem}__audio{int(length)}s{ext}")})
    with ProcessPoolExecutor(jobs) as ex:
        list(ex.map(_job, queries))
    for n in negatives:
        queries.append({"category": "negative", "name": "unrelated", "ref": None, "path": n["path"]})
    manifest = {"seed": seed, "refs": [r["path"] for r in refs_l], "distractors": [d["path"] for d in distractors],
                "queries": queries}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


# --- evaluation ---------------------------------------------------------------
def _overlap(a0, a1, b0, b1) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def segment_pr(pred: list[dict], truth: dict) -> tuple[float, float, float, float]:
    """(overlap, predicted length, truth length) summed over both time axes."""
    ov = pl = 0.0
    for s in pred:
        ov += _overlap(s["query_start"], s["query_end"], truth["query_start"], truth["query_end"])
        ov += _overlap(s["reference_start"], s["reference_end"], truth["reference_start"], truth["reference_end"])
        pl += (s["query_end"] - s["query_start"]) + (s["reference_end"] - s["reference_start"])
    tl = (truth["query_end"] - truth["query_start"]) + (truth["reference_end"] - truth["reference_start"])
    return ov, pl, tl, 0.0


def evaluate(out: Path) -> dict:
    manifest = json.loads((out / "manifest.json").read_text())
    db = out / "library.sqlite3"
    for p in (db, Path(str(db) + "-wal"), Path(str(db) + "-shm")):
        p.unlink(missing_ok=True)
    store = SQLiteStore(db)
    store.create_library("bench")
    engine = Engine(store)
    ingest_times = []
    for p in manifest["refs"] + manifest["distractors"]:
        r = engine.process(p, "bench", save_type="onlysave")
        assert r["status"] == "succeeded", r
        ingest_times.append(r["timings"]["fingerprint_ms"] / 1000)
    per: dict[str, list[int]] = {}
    rows = []
    seg_ov = seg_pl = seg_tl = 0.0
    fp_neg = 0
    wrong: list[str] = []
    fps_times, match_times, media_seconds = [], [], 0.0
    t_dec = t_fp = 0.0
    for q in manifest["queries"]:
        video_query = q["category"] in ("standard", "hard", "negative")
        if video_query:  # pure decoding of the same file, right before, under the same load
            t_dec += decode_timing(q["path"])
        r = engine.process(q["path"], "bench", save_type="nosave")
        if video_query:
            t_fp += r["timings"].get("fingerprint_ms", 0) / 1000
        if r["status"] != "succeeded":
            print(f"  FAILED {q['path']}: {r['error']}", file=sys.stderr)
        fps_times.append(r["timings"].get("fingerprint_ms", 0) / 1000)
        match_times.append(r["timings"].get("match_ms", 0))
        media_seconds += r["input"]["duration"] or 0.0
        dups = [m for m in r["matches"] if _is_dup(m, r)]
        if q["category"] == "negative":
            fp_neg += bool(dups)
            per.setdefault("negative (no duplicate)", []).append(int(not dups))
            rows.append((q["path"], "negative", bool(dups)))
            continue
        hit = [m for m in dups if m["primary_key"] == q["ref"]]
        others = [m["primary_key"] for m in dups if m["primary_key"] != q["ref"]]
        if others:
            wrong.append(f"{q['path']} -> {', '.join(others)}")
        key = q["name"] if q["category"] in ("standard", "hard") else q["category"]
        per.setdefault(key, []).append(int(bool(hit)))
        if q["category"].startswith("audio"):  # split by the reference's soundtrack family
            kind = Path(q["ref"]).stem.split("_", 1)[1]
            sound = "ambience" if synth.AUTO_AUDIO[kind] == "noise" else "music/speech"
            per.setdefault(f"{q['category']} ({sound})", []).append(int(bool(hit)))
        if q["name"] == "pip":  # did the inset's picture match, whatever the sound did?
            per.setdefault("pip (by picture)", []).append(int(bool(hit) and hit[0]["modality"] != "audio"))
        per.setdefault(f"[{q['category']}]", []).append(int(bool(hit)))
        truth = synth.read_truth(q["path"])
        pred = hit[0]["segments"] if hit else []
        ov, pl, tl, _ = segment_pr(pred, truth)
        seg_ov += ov
        seg_pl += pl
        seg_tl += tl
        rows.append((q["path"], key, bool(hit)))
    prec = seg_ov / seg_pl if seg_pl else 0.0
    rec = seg_ov / seg_tl if seg_tl else 0.0
    report = {
        "recall": {k: round(sum(v) / len(v), 3) for k, v in sorted(per.items())},
        "counts": {k: len(v) for k, v in sorted(per.items())},
        "false_positive_rate_negatives": round(fp_neg / max(1, len(per.get("negative (no duplicate)", []))), 4),
        "wrong_reference_duplicates": len(wrong),
        "segment_precision": round(prec, 3),
        "segment_recall": round(rec, 3),
        "segment_f1": round(2 * prec * rec / (prec + rec), 3) if prec + rec else 0.0,
        "extraction_x_realtime": round(media_seconds / max(1e-9, sum(fps_times)), 1),
        "extraction_vs_decode": round(t_dec / max(1e-9, t_fp), 3),
        "query_latency_ms_median": round(statistics.median(match_times), 1),
        "query_latency_ms_p95": round(float(np.percentile(match_times, 95)), 1),
        "library_files": len(manifest["refs"]) + len(manifest["distractors"]),
        "queries": len(manifest["queries"]),
        "misses": [r[0] for r in rows if r[1] != "negative" and not r[2]],
        "false_positives": [r[0] for r in rows if r[1] == "negative" and r[2]],
        "wrong_references": wrong,
    }
    store.close()
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "report.md").write_text(to_markdown(report))
    return report


def _is_dup(match: dict, result: dict) -> bool:
    """The library's own rule, as the pipeline applied it to this match."""
    return bool(match["duplicate"])


def to_markdown(rep: dict) -> str:
    lines = ["| transformation | recall | n |", "|---|---|---|"]
    for k, v in rep["recall"].items():
        lines.append(f"| {k} | {v:.3f} | {rep['counts'][k]} |")
    lines += ["", "| metric | value |", "|---|---|"]
    for k in ("false_positive_rate_negatives", "wrong_reference_duplicates", "segment_precision", "segment_recall",
              "segment_f1", "extraction_x_realtime", "extraction_vs_decode", "query_latency_ms_median",
              "query_latency_ms_p95", "library_files", "queries"):
        lines.append(f"| {k} | {rep[k]} |")
    return "\n".join(lines) + "\n"


def memory(out: Path) -> dict:
    """Peak RSS of fingerprinting a 1-minute and a 10-minute video (each in a fresh process)."""
    import subprocess

    res = {}
    for minutes in (1, 10):
        path = out / f"long_{minutes}min.mp4"
        if not path.exists():
            synth.make_video(path, kind="scenes", duration=60.0 * minutes, seed=77, size=(640, 360))
        # VmHWM (the peak of this process's own memory map) where there is one: ru_maxrss is
        # inherited across exec, so a child of this process (which may just have synthesised a
        # 10-minute video) would report the parent's peak.
        code = ("import resource, time, re; from mediadna.extract import media2fingerprint as f; t=time.perf_counter(); "
                f"fp=f({str(path)!r}); s=time.perf_counter()-t\n"
                "try: kb=int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
                "except OSError: kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
                "print(s, kb)")
        secs, rss_kb = subprocess.check_output([sys.executable, "-c", code], text=True).split()
        res[f"{minutes}min"] = {"peak_rss_mb": round(int(rss_kb) / 1024, 1), "seconds": round(float(secs), 1),
                                "x_realtime": round(60 * minutes / float(secs), 1)}
    (out / "memory.json").write_text(json.dumps(res, indent=1))
    return res


def speed(out: Path) -> dict:
    """Extraction vs pure decoding at several resolutions (30 s clips, best of 3)."""
    res = {}
    for w, h in ((480, 270), (1280, 720), (1920, 1080)):
        path = out / f"speed_{w}x{h}.mp4"
        if not path.exists():
            synth.make_video(path, kind="scenes", duration=30.0, seed=78, size=(w, h), fps=30.0)
        from mediadna.extract import media2fingerprint

        dec = min(decode_timing(path) for _ in range(3))
        ext = []
        for _ in range(3):
            t = time.perf_counter()
            media2fingerprint(path)
            ext.append(time.perf_counter() - t)
        res[f"{w}x{h}"] = {"decode_s": round(dec, 3), "extract_s": round(min(ext), 3),
                           "x_realtime": round(30.0 / min(ext), 1), "vs_decode": round(dec / min(ext), 2)}
    (out / "speed.json").write_text(json.dumps(res, indent=1))
    return res


def main(argv=None) -> int:
    retain_freed_memory()  # as the CLI and the Lambda functions do (mediadna.runtime)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=("corpus", "eval", "all", "memory", "speed"))
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    ap.add_argument("--refs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    if a.step in ("corpus", "all"):
        t = time.time()
        m = build_corpus(a.out, a.refs, a.seed, a.jobs)
        print(f"corpus: {len(m['queries'])} queries in {time.time() - t:.0f} s", file=sys.stderr)
    if a.step == "speed":
        print(json.dumps(speed(a.out), indent=1))
    if a.step == "memory":
        print(json.dumps(memory(a.out), indent=1))
    if a.step in ("eval", "all"):
        rep = evaluate(a.out)
        print(to_markdown(rep))
        if rep["misses"]:
            print("misses:", *rep["misses"], sep="\n  ", file=sys.stderr)
        if rep["wrong_references"]:
            print("duplicates of another reference:", *rep["wrong_references"], sep="\n  ", file=sys.stderr)
        if rep["false_positives"]:
            print("false positives:", *rep["false_positives"], sep="\n  ", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
