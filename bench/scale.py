#!/usr/bin/env python
"""mediadna at scale: a 1,000-hour library, on paper and measured (issue #3, part 7).

    python bench/scale.py build --hours 1000 --out DIR [--store SPEC] [--file-minutes 30]
    python bench/scale.py query --out DIR [--store SPEC] [--runs 5]
    python bench/scale.py all   --hours 1000 --out DIR      (build, then query)

``build`` fills library ``scale`` of the store named by ``--store`` (any
``mediadna.store.open_store`` spec; default ``sqlite:DIR/library.sqlite3``)
through the :class:`~mediadna.store.base.LibraryStore` port (``add_file``), so
every adapter is measured on the same data.  ``query`` fingerprints two real
60 s clips, runs ``find_matches`` against the library and writes a table and
``DIR/scale.json``.  Use ``nice -n 10``: the 1,000-hour build runs for a while.

The library
-----------
* **Real references**: 12 clips of 60 s made by :mod:`mediadna.synth` (every
  content kind, two seeds each), plus the 60 s reference the copy query
  copies; fingerprinted with ``media2fingerprint`` and ingested like any file
  (``pipeline.commit``).  Clips and fingerprints are cached in ``DIR/clips``.
* **Synthetic bulk** (the rest of ``--hours``): files of ``--file-minutes``
  (30) *resampled from the 12 training clips* (a block bootstrap):

  - visual: shots of 2-12 s cut from a training clip's frame-hash track (so
    frame-to-frame correlation, static runs, flat frames and posting rate are
    real), each shot XOR-ed with a random mask of 4-10 of the 64 bits so its
    band values are new but stay near the real band-value distribution; the
    postings are the index's own (``index.fingerprint2postings``);
  - audio: 1-6 s blocks of a training clip, taking both its spectral peaks
    (stored in the fingerprint) and its landmark postings (after
    ``drop_repeated``, so the rate per minute is that of real clips), every
    block shifted by -24..+24 frequency bins (a landmark's anchor bin is its
    top 8 bits: the real dt/df structure is kept, the hash values are new),
    15 % of peaks and landmarks dropped and 10 % moved by one bin.

  Synthetic fingerprints are complete ``Fingerprint`` objects (frame hashes,
  mirrored hashes, flags, peaks), so the stored blob, and so storage per hour,
  is realistic too.  ``build.json`` reports the posting rates per minute of
  the real clips next to those of the synthetic files; ``scale.json`` the
  postings per looked-up key the queries met.  The query clips (the copy and
  the unrelated clip) are never resampled, so the bulk holds no disguised copy
  of them.  Honest limits: 12 minutes of synthetic media are the whole source
  of variety (real content is more diverse; the unrelated clip is of the same
  generator families as the library), and chance matches between bootstrap
  files do not matter here (no synthetic file is ever a query).

SQLite bulk load
----------------
Through the port every ``add_file`` is one transaction.  Each file's postings
are sorted by key, so each insert sweeps the whole posting B-tree; in WAL mode
every page it touches is written to the WAL on commit (hundreds of MB per file
once the database has grown), which makes a 1,000-hour build I/O bound.  The
build therefore sets bulk-load pragmas on the store's own connection
(``journal_mode=MEMORY``, ``synchronous=OFF``, a 2 GB page cache); the rows
written are exactly those ``add_file`` writes, only crash-safety during the
build is given up (``--no-bulk-pragmas`` to build in the default WAL mode;
``query`` reopens the file normally, in WAL mode).  The 10-hour figures for
both modes are in the report of the run that produced the committed numbers.

What ``query`` measures
-----------------------
* ``find_matches`` latency, after fingerprinting: first (cold) run and the
  median of ``--runs`` further runs; the store's share per method (a timing
  proxy wraps the store: ``lookup_visual``, ``lookup_audio``, ``get_file``,
  ``load_fingerprint``...), the keys looked up and postings returned;
* whether the copy's reference is match #1 (and a duplicate by the library's
  rule) and whether the unrelated clip gives any duplicate (a false positive);
* storage: database bytes (SQLite file + WAL) per hour of indexed media;
* DynamoDB: if the store has ``stats`` (the DynamoDB adapter counts requests
  and consumed capacity per operation), its change over one ``find_matches``;
  in any case an estimate on paper from the measured per-key posting counts
  for two layouts (see :func:`dynamo_estimate`);
* a cProfile of one ``find_matches`` of the copy (``DIR/profile_copy.txt``).

``--moto`` runs the step inside ``moto.mock_aws()`` (an in-process DynamoDB
for ``--store dynamodb:PREFIX``; use ``all`` so build and query share it).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import io
import json
import math
import os
import pstats
import signal
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from mediadna import audio as A
from mediadna import synth
from mediadna.errors import FILE_NOT_FOUND, LIBRARY_EXISTS, LibraryError
from mediadna.extract import PARAMS, media2fingerprint
from mediadna.fingerprint import AudioTrack, Fingerprint, VisualTrack
from mediadna.index import audio_query_variants, fingerprint2postings
from mediadna.pipeline import commit, duplicate_rule, find_matches
from mediadna.runtime import retain_freed_memory
from mediadna.store import FileRecord, Postings, open_store

LIBRARY = "scale"
CLIP_SECONDS = 60.0
CLIP_SIZE = (480, 270)
#: Training clips: resampled into the synthetic bulk and ingested as real references.
TRAIN = [(kind, seed) for kind in synth.VIDEO_KINDS for seed in (7101, 7102)]
#: The real reference the copy query copies (ingested, never resampled).
REFERENCE = ("scenes", 7901)
#: An unrelated 60 s clip (never ingested, never resampled).
UNRELATED = ("shapes", 7902)
VISUAL_FPS = float(PARAMS["sample_fps"])
AUDIO_FPS = float(PARAMS["audio_rate"]) / A.HOP  # peak frames per second
#: Synthetic resampling parameters (see the module docstring).
SHOT_SECONDS = (2.0, 12.0)
MASK_BITS = (4, 10)
AUDIO_BLOCK_SECONDS = (1.0, 6.0)
BIN_SHIFT = 24
PEAK_DROP = 0.15
PEAK_JITTER = 0.10


# --- synthetic fingerprints -----------------------------------------------------
def _mask(rng: np.random.Generator) -> np.uint64:
    bits = rng.choice(64, int(rng.integers(MASK_BITS[0], MASK_BITS[1] + 1)), replace=False)
    return np.uint64(sum(1 << int(b) for b in bits))


def synth_visual(pool: list[VisualTrack], duration: float, rng: np.random.Generator) -> VisualTrack:
    """A frame-hash track of ``duration`` s made of masked shots of the ``pool`` tracks."""
    pool = [v for v in pool if len(v)]
    n = int(round(duration * VISUAL_FPS))
    hashes, flipped, flags = [], [], []
    have = 0
    while have < n and pool:
        src = pool[int(rng.integers(len(pool)))]
        length = min(n - have, max(1, int(rng.uniform(*SHOT_SECONDS) * VISUAL_FPS)), len(src))
        start = int(rng.integers(0, len(src) - length + 1))
        m = _mask(rng)
        hashes.append(src.hashes[start : start + length] ^ m)
        flipped.append(src.flipped[start : start + length] ^ m)
        flags.append(src.flags[start : start + length])
        have += length
    if not hashes:
        return VisualTrack.empty()
    return VisualTrack(np.arange(n) / VISUAL_FPS, np.concatenate(hashes), np.concatenate(flipped), np.concatenate(flags))


@dataclasses.dataclass
class Pool:
    """What synthetic files are resampled from: the training clips' tracks and postings."""

    visual: list[VisualTrack]
    peaks: list[AudioTrack]
    audio_frames: list[int]  # STFT frames each clip spans
    landmarks: list[tuple[np.ndarray, np.ndarray]]  # (20-bit hashes, seconds) after drop_repeated

    @classmethod
    def from_fingerprints(cls, fps: list[Fingerprint]) -> "Pool":
        audio = [fp for fp in fps if fp.audio is not None and len(fp.audio)]
        marks = []
        for fp in audio:
            p = fingerprint2postings(fp)
            marks.append((p.audio_keys, p.audio_times))
        return cls([fp.visual for fp in fps if fp.visual is not None and len(fp.visual)], [fp.audio for fp in audio],
                   [int(fp.duration * AUDIO_FPS) for fp in audio], marks)


def synth_audio(pool: Pool, duration: float, rng: np.random.Generator) -> tuple[AudioTrack, np.ndarray, np.ndarray]:
    """Peaks and landmark postings for ``duration`` s, from shifted, thinned blocks of the pool.

    Each block takes one training clip's spectral peaks *and* its landmarks
    (after ``drop_repeated``) over the same 1-6 s, shifts both by the same
    number of frequency bins (a landmark's anchor bin is its top 8 bits), drops
    15 % of each and moves 10 % by one bin.  Returns (peaks, hashes, seconds).
    """
    n = int(duration * AUDIO_FPS)
    frames, bins, keys, times = [], [], [], []
    pos = 0
    while pos < n and pool.peaks:
        c = int(rng.integers(len(pool.peaks)))
        src, src_n = pool.peaks[c], pool.audio_frames[c]
        length = min(n - pos, max(1, int(rng.uniform(*AUDIO_BLOCK_SECONDS) * AUDIO_FPS)), src_n)
        start = int(rng.integers(0, src_n - length + 1))
        shift = int(rng.integers(-BIN_SHIFT, BIN_SHIFT + 1))
        lo, hi = np.searchsorted(src.frames, [start, start + length])
        f = src.frames[lo:hi].astype(np.int64) - start + pos
        b = src.bins[lo:hi].astype(np.int64) + shift + _jitter(rng, hi - lo)
        keep = (rng.random(len(b)) >= PEAK_DROP) & (b >= A.MIN_BIN) & (b <= A.MAX_BIN)
        frames.append(f[keep])
        bins.append(b[keep])
        hk, ht = pool.landmarks[c]
        t0, t1 = start / AUDIO_FPS, (start + length) / AUDIO_FPS
        sel = (ht >= t0) & (ht < t1)
        h = hk[sel].astype(np.int64)
        anchor = (h >> 12) + shift + _jitter(rng, len(h))
        keep = (rng.random(len(h)) >= PEAK_DROP) & (anchor >= A.MIN_BIN) & (anchor <= A.MAX_BIN)
        keys.append(((anchor << 12) | (h & 0xFFF))[keep])
        times.append((ht[sel] - t0 + pos / AUDIO_FPS)[keep])
        pos += length
    if not frames:
        return AudioTrack.empty(), np.zeros(0, np.uint32), np.zeros(0, np.float32)
    f, b = np.concatenate(frames), np.concatenate(bins)
    order = np.lexsort((b, f))
    k, t = A.drop_repeated(np.concatenate(keys).astype(np.uint32), np.concatenate(times).astype(np.float32), duration)
    return AudioTrack(f[order], b[order]), k, t


def _jitter(rng: np.random.Generator, n: int) -> np.ndarray:
    """-1/+1 for PEAK_JITTER of ``n`` values, else 0."""
    return np.where(rng.random(n) < PEAK_JITTER, rng.choice(np.array([-1, 1]), n), 0)


def synth_file(pool: Pool, duration: float, rng: np.random.Generator) -> tuple[Fingerprint, Postings]:
    """A synthetic file: its complete fingerprint and its postings (see the module docstring).

    Visual postings are ``fingerprint2postings`` of the synthetic frame hashes;
    audio postings are the resampled landmarks of :func:`synth_audio`.
    """
    peaks, ak, at = synth_audio(pool, duration, rng)
    fp = Fingerprint(
        duration=float(duration),
        sha256=rng.bytes(32).hex(),
        media_type="video",
        params=dict(PARAMS),
        visual=synth_visual(pool.visual, duration, rng),
        audio=peaks,
        source="synthetic",
    )
    vis = fingerprint2postings(dataclasses.replace(fp, audio=None))
    return fp, Postings(vis.visual_keys, vis.visual_times, ak, at)


def postings_per_minute(p: Postings, duration: float) -> tuple[float, float]:
    minutes = max(duration, 1e-9) / 60.0
    return len(p.visual_keys) / minutes, len(p.audio_keys) / minutes


# --- DynamoDB on paper ------------------------------------------------------------
#: BatchGetItem: at most 100 keys and 16 MB per request; Query pages are 1 MB.
BATCH_KEYS = 100
BATCH_BYTES = 16 * 2**20
QUERY_PAGE = 2**20
RCU_BYTES = 4096


def dynamo_estimate(posting_counts: list[np.ndarray], *, shard_postings: int = 43_000, posting_bytes: int = 8,
                    item_overhead: int = 64, consistent: bool = True, row_bytes: int = 40) -> dict:
    """DynamoDB requests and read capacity units of lookups, from per-key posting counts.

    ``posting_counts``: one array per lookup call, the number of postings of
    each key looked up (0 for a key absent from the library).  Two layouts:

    * ``term_items`` (what ``mediadna.store.dynamodb`` does): one item per
      (library, term) with its postings packed (``posting_bytes`` each), split
      into shards of ``shard_postings``; shard 0 of every key is read with
      BatchGetItem (<= 100 keys, <= 16 MB a request), then shard 1 of the keys
      that have one, and so on.  An item costs ceil(size / 4 KB) units, and so
      does a missing one (1 unit: an upper bound).
    * ``posting_items``: one item per posting (partition key = term, about
      ``row_bytes``), one Query per term, 1 MB pages; a Query rounds the total
      size it read up to 4 KB.

    Strongly consistent reads (the adapter's default) cost 1 unit per 4 KB,
    eventually consistent ones half (``consistent=False``).
    """
    factor = 1.0 if consistent else 0.5
    shard_units = math.ceil((item_overhead + posting_bytes * shard_postings) / RCU_BYTES)
    req = items = nbytes = 0
    units = 0.0
    q_req = 0
    q_units = 0.0
    for counts in posting_counts:
        counts = np.asarray(counts, np.int64)
        if not len(counts):
            continue
        full = counts // shard_postings
        rest = counts - full * shard_postings
        partial = (rest > 0) | (full == 0)  # the last, partly filled shard (or the only, maybe missing, item)
        shards = full + partial
        sizes_rest = item_overhead + posting_bytes * rest
        units += factor * float((full * shard_units).sum() + np.where(partial, np.ceil(sizes_rest / RCU_BYTES), 0).sum())
        items += int(shards.sum())
        for s in range(int(shards.max())):  # one round of BatchGetItem per shard number
            has = shards > s
            n = int(has.sum())
            level_bytes = int(np.where(full[has] > s, item_overhead + posting_bytes * shard_postings, sizes_rest[has]).sum())
            nbytes += level_bytes
            req += max(math.ceil(n / BATCH_KEYS), math.ceil(level_bytes / BATCH_BYTES))
        qb = row_bytes * counts
        q_req += int(np.maximum(1, np.ceil(qb / QUERY_PAGE)).sum())
        q_units += factor * float(np.maximum(1, np.ceil(qb / RCU_BYTES)).sum())
    return {
        "term_items": {"requests": req, "read_capacity_units": round(units, 1), "items_read": items,
                       "bytes_read": nbytes},
        "posting_items": {"requests": q_req, "read_capacity_units": round(q_units, 1)},
        "consistent_reads": consistent,
    }


# --- the store, timed ---------------------------------------------------------------
class TimedStore:
    """Delegates to a store; records time, calls, keys and hits of each port method."""

    TIMED = ("lookup_visual", "lookup_audio", "get_file", "load_fingerprint", "files_by_sha256", "get_library")

    def __init__(self, store):
        self.store = store
        self.reset()

    def reset(self) -> None:
        self.calls: dict[str, dict] = {}
        self.counts: dict[str, list[np.ndarray]] = {"lookup_visual": [], "lookup_audio": []}
        self.keys: dict[str, list[np.ndarray]] = {"lookup_visual": [], "lookup_audio": []}
        self.overhead_ms = 0.0  # this proxy's own bookkeeping, taken out of the measured times

    def __getattr__(self, name):
        target = getattr(self.store, name)
        if name not in self.TIMED:
            return target

        def timed(*args, **kwargs):
            t = time.perf_counter()
            out = target(*args, **kwargs)
            dt = time.perf_counter() - t
            c = self.calls.setdefault(name, {"calls": 0, "ms": 0.0, "keys": 0, "postings": 0})
            c["calls"] += 1
            c["ms"] += dt * 1000
            if name.startswith("lookup_"):
                keys = np.unique(np.asarray(args[1]))
                c["keys"] += len(keys)
                c["postings"] += len(out)  # decoded, within the lookup's posting budget
                self.counts[name].append(_key_counts(keys, out))  # replaced by whole lists after the run
                self.keys[name].append((keys, kwargs))
            self.overhead_ms += (time.perf_counter() - t) * 1000 - dt * 1000
            return out

        return timed


def _plain(obj):
    """A store's ``stats`` as plain nested dicts/numbers (dataclass, mapping, object)."""
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return _plain(obj.to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _plain({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if not f.name.startswith("_")})
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (int, float, np.integer, np.floating)) and not isinstance(obj, bool):
        return float(obj)
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "__dict__"):
        return _plain({k: v for k, v in vars(obj).items() if not k.startswith("_")})
    return obj


def stats_delta(before, after):
    """``after - before`` for every number in two :func:`_plain` snapshots (others: ``after``)."""
    if isinstance(after, dict):
        b = before if isinstance(before, dict) else {}
        return {k: stats_delta(b.get(k), v) for k, v in after.items()}
    if isinstance(after, float):
        d = after - (before if isinstance(before, float) else 0.0)
        return int(d) if d == int(d) else round(d, 3)
    return after


def _snapshot(store):
    stats = getattr(store, "stats", None)
    if stats is None:
        return None
    return _plain(stats() if callable(stats) else stats)


# --- real clips ------------------------------------------------------------------
def _clip(out: Path, kind: str, seed: int) -> Path:
    path = out / "clips" / f"{kind}_{seed}.mp4"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        synth.make_video(path, kind=kind, duration=CLIP_SECONDS, seed=seed, size=CLIP_SIZE)
    return path


def _copy_clip(out: Path) -> Path:
    src = _clip(out, *REFERENCE)
    dst = out / "clips" / f"copy_of_{src.stem}.mp4"
    if not dst.exists():
        synth.transform(src, dst, "reencode", crf=30, preset="veryfast")
    return dst


def _fingerprint(path: Path) -> Fingerprint:
    cached = path.with_suffix(".mdna")
    if cached.exists():
        return Fingerprint.load(cached)
    fp = media2fingerprint(path)
    fp.save(cached)
    return fp


def _training(out: Path) -> list[Fingerprint]:
    return [_fingerprint(_clip(out, kind, seed)) for kind, seed in TRAIN]


# --- build ----------------------------------------------------------------------
def _open(spec: str | None, out: Path):
    store = open_store(spec or f"sqlite:{out / 'library.sqlite3'}", out)
    if hasattr(store, "create_tables"):
        store.create_tables()
    return store


def _bulk_pragmas(store) -> bool:
    conn = getattr(store, "_conn", None)
    if conn is None or type(store).__name__ != "SQLiteStore":
        return False
    conn.execute("PRAGMA journal_mode = MEMORY").fetchone()
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -2000000")
    return True


def _db_bytes(store) -> int | None:
    path = getattr(store, "path", None)
    if not path or path == ":memory:" or type(store).__name__ != "SQLiteStore":
        return None
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


def build(out: Path, hours: float, spec: str | None, file_minutes: float, seed: int, bulk: bool) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    train = _training(out)
    ref = _fingerprint(_clip(out, *REFERENCE))
    t_clips = time.perf_counter() - t0
    store = _open(spec, out)
    bulk_on = bulk and _bulk_pragmas(store)
    try:
        store.create_library(LIBRARY)
    except LibraryError as exc:
        if exc.code != LIBRARY_EXISTS:
            raise
    real = [(f"real/{Path(fp.source).stem}", fp) for fp in [*train, ref]]
    real_seconds = sum(fp.duration for _, fp in real)
    n_syn = max(0, math.ceil((hours * 3600 - real_seconds) / (file_minutes * 60)))
    pool = Pool.from_fingerprints(train)
    totals = {"visual_postings": 0, "audio_postings": 0, "skipped_existing": 0}
    rates_real = [postings_per_minute(fingerprint2postings(fp), fp.duration) for _, fp in real]
    rates_syn = []
    t1 = time.perf_counter()
    for key, fp in real:
        commit(store, LIBRARY, fp, key, "onlysave", False)
        p = fingerprint2postings(fp)
        totals["visual_postings"] += len(p.visual_keys)
        totals["audio_postings"] += len(p.audio_keys)
    t_gen = t_add = 0.0
    progress: list[list] = []  # [synthetic files, hours, elapsed s, add_file s, db bytes]
    for i in range(n_syn):
        key = f"synthetic/{i:05d}"
        t = time.perf_counter()
        fp, post = synth_file(pool, file_minutes * 60, np.random.default_rng([seed, i]))
        record = FileRecord(key, fp.duration, fp.sha256, "video", fp.has_visual, fp.has_audio, fp.version,
                            metadata={"synthetic": True})
        t_gen += time.perf_counter() - t
        if _exists(store, key):  # a resumed build: same seed, same file
            totals["skipped_existing"] += 1
        else:
            t = time.perf_counter()
            store.add_file(LIBRARY, record, fp, post)
            t_add += time.perf_counter() - t
        totals["visual_postings"] += len(post.visual_keys)
        totals["audio_postings"] += len(post.audio_keys)
        if i < 20:
            minutes = fp.duration / 60
            rates_syn.append((len(post.visual_keys) / minutes, len(post.audio_keys) / minutes))
        if (i + 1) % 20 == 0 or i + 1 == n_syn:
            done_h = (i + 1) * file_minutes / 60
            progress.append([i + 1, round(done_h, 1), round(time.perf_counter() - t1, 1), round(t_add, 1),
                             _db_bytes(store)])
            print(f"  {i + 1}/{n_syn} synthetic files ({done_h:.0f} h): generate {t_gen:.0f} s, add_file {t_add:.0f} s, "
                  f"{(time.perf_counter() - t1) / 60:.1f} min, db {(_db_bytes(store) or 0) / 2**30:.2f} GiB", flush=True)
    elapsed = time.perf_counter() - t1
    info = {
        "store": spec or "sqlite:DIR/library.sqlite3",
        "hours": round((real_seconds + n_syn * file_minutes * 60) / 3600, 2),
        "files_real": len(real),
        "files_synthetic": n_syn,
        "file_minutes": file_minutes,
        "seed": seed,
        "bulk_pragmas": bulk_on,
        **totals,
        "postings_per_minute_real": _rate_summary(rates_real),
        "postings_per_minute_synthetic": _rate_summary(rates_syn),
        "clips_seconds": round(t_clips, 1),
        "ingest_seconds": round(elapsed, 1),
        "generate_seconds": round(t_gen, 1),
        "add_file_seconds": round(t_add, 1),
        "add_file_ms_per_hour": round(1000 * t_add / max(1e-9, n_syn * file_minutes / 60), 1) if n_syn else None,
        "db_bytes": _db_bytes(store),
        "progress": progress,
    }
    store.close()
    if not info["skipped_existing"]:
        (out / "build.json").write_text(json.dumps(info, indent=1))
    else:  # a resumed build: keep the first run's timings, refresh the totals that are known
        prev = json.loads((out / "build.json").read_text()) if (out / "build.json").exists() else {}
        prev.update({k: info[k] for k in ("hours", "files_real", "files_synthetic", "db_bytes")})
        prev.setdefault("resumed_runs", []).append(info)
        (out / "build.json").write_text(json.dumps(prev, indent=1))
    return info


def _exists(store, key: str) -> bool:
    try:
        store.get_file(LIBRARY, key)
        return True
    except LibraryError as exc:
        if exc.code != FILE_NOT_FOUND:
            raise
        return False


def _rate_summary(rates: list[tuple[float, float]]) -> dict:
    if not rates:
        return {}
    v = np.array([r[0] for r in rates])
    a = np.array([r[1] for r in rates])
    return {"visual_median": round(float(np.median(v))), "visual_range": [round(float(v.min())), round(float(v.max()))],
            "audio_median": round(float(np.median(a))), "audio_range": [round(float(a.min())), round(float(a.max()))]}


# --- query ----------------------------------------------------------------------
class Budget(Exception):
    """A find_matches run went past --budget seconds."""


@contextlib.contextmanager
def _deadline(seconds: float):
    """Raise :class:`Budget` in this thread after ``seconds`` (SIGALRM; checked between bytecodes)."""
    if not seconds or not hasattr(signal, "SIGALRM"):
        yield
        return

    def fire(signum, frame):
        raise Budget()

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _timed_run(timed: TimedStore, fp: Fingerprint, budget: float, profile: cProfile.Profile | None = None):
    """(ms or None if over budget, matches or None)."""
    timed.reset()
    t = time.perf_counter()
    try:
        with _deadline(budget):
            if profile is not None:
                profile.enable()
            try:
                matches = find_matches(timed, LIBRARY, fp)
            finally:
                if profile is not None:
                    profile.disable()
    except Budget:
        return None, None
    return (time.perf_counter() - t) * 1000 - timed.overhead_ms, matches


def _one_query(store, timed: TimedStore, name: str, path: Path, expect: str | None, lib, args,
               out: Path, profile: bool) -> dict:
    t = time.perf_counter()
    fp = media2fingerprint(path)
    fp_ms = (time.perf_counter() - t) * 1000
    prof = cProfile.Profile() if profile else None
    before = _snapshot(store)
    first_ms, matches = _timed_run(timed, fp, args.budget, prof)
    after = _snapshot(store)
    calls = {k: {**v, "ms": round(v["ms"], 1)} for k, v in timed.calls.items()}
    replay = {k: list(v) for k, v in timed.keys.items()}
    # the keys' whole posting lists (what the store seeks and reads, whatever the budget), for the
    # per-key figures: read after the measured run, outside its request counts
    counts = {k: [_key_counts(keys, getattr(store, k)(LIBRARY, keys)) for keys, _ in v] for k, v in replay.items()}
    times, per_run_store = [], []
    if first_ms is not None and first_ms < args.repeat_under * 1000:
        for _ in range(args.runs):
            ms, _m = _timed_run(timed, fp, args.budget)
            if ms is None:
                break
            times.append(ms)
            per_run_store.append({k: v["ms"] for k, v in timed.calls.items()})
    if times:
        med = statistics.median(times)
        store_ms = {k: round(statistics.median([r.get(k, 0.0) for r in per_run_store]), 1) for k in calls}
    else:  # one (first) run only: too slow to repeat, or over budget
        med = first_ms
        store_ms = {k: v["ms"] for k, v in calls.items()}
    # the store alone, with the very keys the matcher looked up (best of 3, or 1 if slow)
    lookup_only = {}
    for method, key_sets in replay.items():
        best = None
        for _ in range(3):
            t = time.perf_counter()
            for keys, kwargs in key_sets:
                getattr(store, method)(LIBRARY, keys, **kwargs)
            ms = (time.perf_counter() - t) * 1000
            best = ms if best is None else min(best, ms)
            if ms > 30_000:
                break
        lookup_only[method] = round(best or 0.0, 1)
    res = {
        "query": name,
        "file": path.name,
        "duration": round(fp.duration, 2),
        "fingerprint_ms": round(fp_ms, 1),
        "find_matches_first_ms": round(first_ms, 1) if first_ms is not None else None,
        "first_run_profiled": profile,
        "over_budget_s": args.budget if first_ms is None else None,
        "find_matches_ms_runs": [round(x, 1) for x in times],
        "find_matches_median_ms": round(med, 1) if med is not None else None,
        "store_ms": store_ms,
        "visual_lookup_ms": store_ms.get("lookup_visual", 0.0),
        "audio_lookup_ms": store_ms.get("lookup_audio", 0.0),
        "matcher_ms": round(med - sum(store_ms.values()), 1) if med is not None else None,
        "lookup_only_ms": lookup_only,
        "calls": calls,
        "keys_looked_up": sum(len(c) for v in counts.values() for c in v),
        "postings_scanned": int(sum(int(c.sum()) for v in counts.values() for c in v)),
        "postings_decoded": int(sum(v.get("postings", 0) for k, v in calls.items() if k.startswith("lookup_"))),
        "postings_per_key": {k: _per_key(v) for k, v in counts.items()},
        "expected": expect,
        "dynamodb_paper": dynamo_estimate([c for v in counts.values() for c in v]),
        "_counts": counts,
    }
    if matches is not None:
        dups = [m for m in matches if duplicate_rule(m, lib, fp.duration)]
        rank = next((i + 1 for i, m in enumerate(matches) if m.primary_key == expect), None) if expect else None
        res.update({
            "matches": [{"primary_key": m.primary_key, "similarity": round(m.similarity, 3), "modality": m.modality,
                         "duplicate": duplicate_rule(m, lib, fp.duration),
                         "segments": [s.to_dict() for s in m.segments[:3]]} for m in matches[:5]],
            "duplicates": [m.primary_key for m in dups],
            "expected_rank": rank,
            "found_at_rank_1": bool(expect) and rank == 1 and bool(dups) and dups[0].primary_key == expect,
            "false_positive": any(d.primary_key != expect for d in dups),
        })
    if before is not None or after is not None:
        res["store_stats_delta"] = stats_delta(before, after)
    # speed 1 alone (no tempo/pitch variants): what a cheaper audio lookup would read
    v1 = [v for v in audio_query_variants(fp) if v[0] == 1.0 and v[1] == 1.0]
    if v1:
        keys = np.unique(v1[0][2])
        t = time.perf_counter()
        hits = store.lookup_audio(LIBRARY, keys)
        ms = (time.perf_counter() - t) * 1000
        res["audio_speed1_only"] = {"keys": int(len(keys)), "postings": len(hits), "lookup_ms": round(ms, 1),
                                    "dynamodb_paper": dynamo_estimate([_key_counts(keys, hits)])}
    if prof is not None and first_ms is not None:
        res["profile_top_tottime"] = _profile_report(prof, out / f"profile_{name.split()[0]}.txt")
    return res


def dynamo_ingest_estimate(out: Path, results: list[dict], counts: dict[str, list[np.ndarray]], seed: int,
                           file_minutes: float) -> dict:
    """DynamoDB cost of adding one more synthetic file to this library, on paper.

    The adapter reads every term item the file posts to and writes it back
    extended (BatchGetItem, then BatchWriteItem of 25): a term item costs
    ceil(size / 1 KB) write units, so adding a file gets dearer as the library
    grows.  Current item sizes are taken from the posting counts of the keys
    the queries looked up (the same distribution the library's terms have).
    """
    pool = Pool.from_fingerprints(_training(out))
    fp, post = synth_file(pool, file_minutes * 60, np.random.default_rng([seed, 10**6]))
    per_hour = 60.0 / file_minutes
    res: dict = {"file_minutes": file_minutes}
    for kind, keys in (("visual", post.visual_keys), ("audio", post.audio_keys)):
        terms, new = np.unique(keys, return_counts=True)
        have = np.concatenate(counts.get(f"lookup_{kind}", []) or [np.zeros(1, np.int64)])
        grown = 64 + 8 * (have + float(new.mean()))
        wcu = float(np.ceil(grown / 1024).mean()) * len(terms)
        rcu = float(np.ceil((64 + 8 * have) / RCU_BYTES).mean()) * len(terms)
        res[kind] = {"terms_per_hour": round(len(terms) * per_hour), "write_units_per_hour": round(wcu * per_hour),
                     "read_units_per_hour": round(rcu * per_hour),
                     "requests_per_hour": round((math.ceil(len(terms) / BATCH_KEYS) + math.ceil(len(terms) / 25)) * per_hour)}
    return res


def _key_counts(keys: np.ndarray, hits) -> np.ndarray:
    found, per_key = np.unique(hits.keys, return_counts=True)
    counts = np.zeros(len(keys), np.int64)
    counts[np.searchsorted(keys, found)] = per_key
    return counts


def _per_key(counts: list[np.ndarray]) -> dict:
    c = np.concatenate(counts) if counts else np.zeros(0, np.int64)
    if not len(c):
        return {}
    return {"keys": int(len(c)), "mean": round(float(c.mean()), 1), "p50": int(np.median(c)),
            "p99": int(np.percentile(c, 99)), "max": int(c.max()), "zero_share": round(float((c == 0).mean()), 3)}


def _profile_report(prof: cProfile.Profile, path: Path) -> list[dict]:
    s = io.StringIO()
    st = pstats.Stats(prof, stream=s)
    st.sort_stats("cumulative").print_stats(30)
    st.sort_stats("tottime").print_stats(25)
    path.write_text(s.getvalue())
    top = sorted(st.stats.items(), key=lambda kv: -kv[1][2])[:12]  # (cc, nc, tottime, cumtime, callers)
    return [{"function": f"{Path(f[0]).name}:{f[1]}({f[2]})", "calls": v[1], "tottime_ms": round(v[2] * 1000, 1),
             "cumtime_ms": round(v[3] * 1000, 1)} for f, v in top]


def query(out: Path, spec: str | None, args) -> dict:
    store = _open(spec, out)
    timed = TimedStore(store)
    lib = store.get_library(LIBRARY)
    copy = _copy_clip(out)
    unrelated = _clip(out, *UNRELATED)
    ref_key = f"real/{Path(_clip(out, *REFERENCE)).stem}"
    results = [
        _one_query(store, timed, "copy (re-encode)", copy, ref_key, lib, args, out, profile=not args.no_profile),
        _one_query(store, timed, "unrelated", unrelated, None, lib, args, out, profile=False),
    ]
    all_counts: dict[str, list[np.ndarray]] = {}
    for r in results:
        for k, v in r.pop("_counts").items():
            all_counts.setdefault(k, []).extend(v)
    build_info = json.loads((out / "build.json").read_text()) if (out / "build.json").exists() else {}
    db = _db_bytes(store)
    hours = build_info.get("hours") or None
    report = {
        "library": {
            "store": spec or "sqlite:DIR/library.sqlite3",
            "hours": hours,
            "files": lib.file_count,
            "db_bytes": db,
            "db_mib_per_hour": round(db / 2**20 / hours, 2) if db and hours else None,
        },
        "build": {k: v for k, v in build_info.items() if k != "resumed_runs"},
        "queries": results,
        "dynamodb_paper_ingest": dynamo_ingest_estimate(out, results, all_counts, args.seed, args.file_minutes),
        "settings": {"runs": args.runs, "repeat_under_s": args.repeat_under, "budget_s": args.budget},
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "load_avg": os.getloadavg()},
        "code": _code_state(),
    }
    store.close()
    (out / "scale.json").write_text(json.dumps(report, indent=1, default=_json_default))
    print(table([report]))
    return report


def _code_state() -> dict:
    """The commit measured, and which tracked files differed from it (the matcher may be mid-change)."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--name-only", "HEAD"], cwd=root, capture_output=True, text=True).stdout.split()
    except OSError:
        return {}
    return {"commit": head, "modified": dirty}


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    return str(o)


def _ms(v) -> str:
    return "-" if v is None else (f"{v / 1000:.1f} s" if v >= 10_000 else f"{v:.0f}")


def table(reports: list[dict]) -> str:
    """Markdown tables: one row per library, one row per (library, query)."""
    lines = ["| hours | files | postings (visual + audio) | DB size | MiB per hour | build min |", "|---|---|---|---|---|---|"]
    for rep in reports:
        lib, b = rep["library"], rep.get("build", {})
        vp, ap = b.get("visual_postings") or 0, b.get("audio_postings") or 0
        db = f"{lib['db_bytes'] / 2**30:.2f} GiB" if lib.get("db_bytes") else "n/a"
        lines.append(f"| {lib['hours']} | {lib['files']} ({b.get('files_synthetic')} synthetic) | {vp + ap:,} "
                     f"({vp:,} + {ap:,}) | {db} | {lib.get('db_mib_per_hour')} | {b.get('ingest_seconds', 0) / 60:.1f} |")
    lines += ["", "| hours | query | find_matches ms (first / median) | visual lookup ms | audio lookup ms | matcher ms "
                  "| keys looked up | postings read / voted on | copy #1 | FP | DynamoDB on paper: requests / RCU |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for rep in reports:
        for q in rep["queries"]:
            d = q["dynamodb_paper"]["term_items"]
            if "found_at_rank_1" not in q:
                found = fp = "?"
            else:
                found = ("y" if q["found_at_rank_1"] else f"n (rank {q['expected_rank']})") if q["expected"] else "-"
                fp = "y" if q["false_positive"] else "n"
            first = _ms(q["find_matches_first_ms"]) if q["find_matches_first_ms"] is not None else f"> {q['over_budget_s']} s"
            lines.append(
                f"| {rep['library']['hours']} | {q['query']} | {first} / {_ms(q['find_matches_median_ms'])} "
                f"| {_ms(q['visual_lookup_ms'])} | {_ms(q['audio_lookup_ms'])} | {_ms(q['matcher_ms'])} "
                f"| {q['keys_looked_up']:,} | {q['postings_scanned']:,} / {q.get('postings_decoded', q['postings_scanned']):,} | {found} | {fp} "
                f"| {d['requests']} / {d['read_capacity_units']:,.0f} |")
    for rep in reports:
        ing = rep.get("dynamodb_paper_ingest")
        if ing:
            lines.append(f"\n{rep['library']['hours']} h, DynamoDB on paper, ingest per hour of media: "
                         + ", ".join(f"{k}: {v['requests_per_hour']:,} requests, {v['write_units_per_hour']:,} WCU, "
                                     f"{v['read_units_per_hour']:,} RCU" for k, v in ing.items() if isinstance(v, dict)))
        for q in rep["queries"]:
            if "store_stats_delta" in q:
                lines.append(f"\n{rep['library']['hours']} h, {q['query']}: store.stats over one find_matches: "
                             f"{json.dumps(q['store_stats_delta'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    retain_freed_memory()  # as the CLI and the Lambda functions do (mediadna.runtime)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("step", choices=["build", "query", "all", "report"])
    ap.add_argument("--out", type=Path, action="append", required=True,
                    help="output directory (report: repeat for several libraries)")
    ap.add_argument("--hours", type=float, default=1000.0)
    ap.add_argument("--store", default=None, help="store spec (default sqlite:OUT/library.sqlite3)")
    ap.add_argument("--file-minutes", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=5, help="repeats after the first run, for the median")
    ap.add_argument("--repeat-under", type=float, default=120.0,
                    help="repeat only when the first find_matches took less than this (s)")
    ap.add_argument("--budget", type=float, default=3600.0, help="give up a find_matches run after this (s)")
    ap.add_argument("--no-profile", action="store_true", help="do not cProfile the copy query's first run")
    ap.add_argument("--no-bulk-pragmas", action="store_true")
    ap.add_argument("--moto", action="store_true", help="run inside moto.mock_aws() (in-process DynamoDB)")
    args = ap.parse_args(argv)
    if args.step == "report":
        print(table([json.loads((d / "scale.json").read_text()) for d in args.out]))
        return 0
    out = args.out[0]
    ctx = contextlib.nullcontext()
    if args.moto:
        for k, v in (("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "testing"),
                     ("AWS_SECRET_ACCESS_KEY", "testing")):
            os.environ.setdefault(k, v)
        from moto import mock_aws

        ctx = mock_aws()
    with ctx:
        if args.step in ("build", "all"):
            t = time.perf_counter()
            info = build(out, args.hours, args.store, args.file_minutes, args.seed, not args.no_bulk_pragmas)
            print(f"build: {info['hours']} h, {info['files_real'] + info['files_synthetic']} files in "
                  f"{(time.perf_counter() - t) / 60:.1f} min")
        if args.step in ("query", "all"):
            query(out, args.store, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
