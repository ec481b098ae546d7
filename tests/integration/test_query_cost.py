"""What a query costs against DynamoDB: a bounded number of batched requests, however long the query."""

from __future__ import annotations

import numpy as np

from mediadna import audio as A
from mediadna import match as M
from mediadna.fingerprint import AudioTrack, Fingerprint, VisualTrack
from mediadna.pipeline import commit, find_matches
from tests.sounds import harmonic_song, sound_fingerprint

LIB = "cost"
FPS = 5.0
HOP_S = A.HOP / 8000.0
PARAMS = {"sample_fps": FPS, "audio_rate": 8000}
#: BatchGetItem takes 100 keys: the lookup budget's requests, plus the library
#: reads, the SHA-256 query, the directory and one batched fingerprint read.
MAX_REQUESTS = (M.VISUAL_LOOKUP_KEYS + M.AUDIO_LOOKUP_KEYS) // 100 + 12


def peaks(rng, seconds: float):
    n = int(seconds * 40)
    key = np.unique(rng.integers(0, int(seconds / HOP_S), n) * 1000 + rng.integers(A.MIN_BIN, A.MAX_BIN + 1, n))
    return (key // 1000).astype(np.uint32), (key % 1000).astype(np.uint16)


def clip(rng, seconds: float) -> Fingerprint:
    n = int(seconds * FPS)
    h, f = (rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True) for _ in range(2))
    visual = VisualTrack(np.arange(n) / FPS, h, f, np.zeros(n, np.uint8))
    return Fingerprint(seconds, "", "video", dict(PARAMS), visual, AudioTrack(*peaks(rng, seconds)))


def with_copy(rng, ref: Fingerprint, r0: float, r1: float, q0: float, seconds: float) -> Fingerprint:
    """``seconds`` of unrelated picture and sound with ref's [r0, r1) at q0."""
    q = clip(rng, seconds)
    a, b, at = int(r0 * FPS), int(r1 * FPS), int(q0 * FPS)
    hv, fv = q.visual.hashes.copy(), q.visual.flipped.copy()
    hv[at : at + b - a], fv[at : at + b - a] = ref.visual.hashes[a:b], ref.visual.flipped[a:b]
    lo, hi, sh = int(round(r0 / HOP_S)), int(round(r1 / HOP_S)), int(round(q0 / HOP_S))
    m = (ref.audio.frames >= lo) & (ref.audio.frames < hi)
    keep = (q.audio.frames < sh) | (q.audio.frames >= sh + hi - lo)
    fr = np.concatenate([q.audio.frames[keep].astype(np.int64), ref.audio.frames[m].astype(np.int64) - lo + sh])
    bi = np.concatenate([q.audio.bins[keep], ref.audio.bins[m]])
    o = np.lexsort((bi, fr))
    return Fingerprint(seconds, "", "video", dict(PARAMS), VisualTrack(q.visual.times, hv, fv, q.visual.flags),
                       AudioTrack(fr[o], bi[o]))


def test_a_60s_query_costs_a_few_dozen_requests(open_dynamodb):
    rng = np.random.default_rng(7)
    store = open_dynamodb()
    store.create_library(LIB)
    refs = {f"r{k}": clip(rng, 120.0) for k in range(5)}
    for key, fp in refs.items():
        assert commit(store, LIB, fp, key, "onlysave", False)
    copy = with_copy(rng, refs["r2"], 30.0, 70.0, 10.0, 60.0)
    unrelated = clip(rng, 60.0)
    for query, expect in ((copy, ["r2"]), (unrelated, [])):
        store = open_dynamodb()  # a fresh worker: nothing cached
        store.stats.reset()
        found = find_matches(store, LIB, query)
        assert [m.primary_key for m in found] == expect
        assert store.stats.total <= MAX_REQUESTS, store.stats.to_dict()
        batch = store.stats.requests["BatchGetItem"]
        assert batch <= (M.VISUAL_LOOKUP_KEYS + M.AUDIO_LOOKUP_KEYS) // 100 + 4, store.stats.to_dict()
    (m,) = find_matches(store, LIB, copy)
    (seg,) = m.segments
    assert m.modality == "audiovisual" and abs(seg.query_start - 10.0) < 1.0 and abs(seg.reference_start - 30.0) < 1.0


def test_a_2s_query_with_its_contour_cohort_costs_a_few_requests_more(open_dynamodb, monkeypatch):
    """A 2 s excerpt in a library big enough for the cohort check (mediadna.match,
    COHORT_*): found through it, and the cohort costs one page of the file list
    and one batched fingerprint read more than the same query without it.  The
    contour check at the proposed offsets (4b) is left out both times: the
    fine audio vote bin proposes this excerpt's offset, where 4b finds it
    without the cohort."""
    store = open_dynamodb()
    store.create_library(LIB)
    songs = {f"s{k:02d}": harmonic_song(50 + k, 12.0) for k in range(M.COHORT_FILES + 4)}
    for key, x in songs.items():
        assert commit(store, LIB, sound_fingerprint(x), key, "onlysave", False)
    x = songs["s07"][int(5.3 * 8000) : int(7.3 * 8000)]
    query = sound_fingerprint(x + 0.1 * np.std(x) * np.random.default_rng(1).standard_normal(len(x)).astype(np.float32), A.SHIFTS)
    cohort = M.Matcher.cohort
    monkeypatch.setattr(M, "contour_segments", lambda *a, **k: {})
    cost = {}
    for use in (False, True):
        monkeypatch.setattr(M.Matcher, "cohort", cohort if use else (lambda self, *a, **k: []))
        store = open_dynamodb()  # a fresh worker: nothing cached
        store.stats.reset()
        found = find_matches(store, LIB, query)
        cost[use] = store.stats.to_dict()
        if use:
            # a duplicate only by the cohort check
            assert [m.primary_key for m in found][:1] == ["s07"] and found[0].similarity >= 0.5
            seg = found[0].segments[0]
            assert abs(seg.reference_start - seg.query_start - 5.3) < 0.1
        else:
            assert all(m.similarity < 0.5 for m in found)
    # the file list: the library item, one Query; the fingerprints: the library item, records, chunks
    assert cost[True]["total_requests"] <= cost[False]["total_requests"] + 5, cost
    assert cost[True]["requests"]["Query"] <= cost[False]["requests"].get("Query", 0) + 1, cost
