"""The matcher's two stages: bounded index lookups propose candidates, stored fingerprints verify them."""

from __future__ import annotations

import numpy as np
import pytest

from mediadna import audio as A
from mediadna import index as I
from mediadna import match as M
from mediadna.fingerprint import AudioTrack, Fingerprint, VisualTrack
from mediadna.pipeline import commit
from mediadna.store.base import Hits
from mediadna.store.memory import MemoryStore

LIB = "lib"
FPS = 5.0
HOP_S = A.HOP / 8000.0
PARAMS = {"sample_fps": FPS, "audio_rate": 8000}


class CountingStore:
    """A MemoryStore that records what the matcher asks of it."""

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.inner.create_library(LIB)
        self.calls: list[tuple[str, int]] = []
        self.budgets: list[tuple[str, int | None]] = []

    def lookup_visual(self, library, keys, max_postings=None):
        self.calls.append(("lookup_visual", len(keys)))
        self.budgets.append(("lookup_visual", max_postings))
        return self.inner.lookup_visual(library, keys, max_postings)

    def lookup_audio(self, library, keys, max_postings=None):
        self.calls.append(("lookup_audio", len(keys)))
        self.budgets.append(("lookup_audio", max_postings))
        return self.inner.lookup_audio(library, keys, max_postings)

    def load_fingerprints(self, library, keys):
        self.calls.append(("load_fingerprints", len(keys)))
        return self.inner.load_fingerprints(library, keys)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def count(self, name: str) -> list[int]:
        return [n for c, n in self.calls if c == name]


def rand_peaks(rng, seconds: float, per_second: float = 40.0):
    n = int(seconds * per_second)
    key = np.unique(rng.integers(0, int(seconds / HOP_S), n) * 1000 + rng.integers(A.MIN_BIN, A.MAX_BIN + 1, n))
    return (key // 1000).astype(np.uint32), (key % 1000).astype(np.uint16)


def make_ref(rng, seconds: float) -> Fingerprint:
    n = int(seconds * FPS)
    h = rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
    f = rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
    visual = VisualTrack(np.arange(n) / FPS, h, f, np.zeros(n, np.uint8))
    return Fingerprint(seconds, "", "video", dict(PARAMS), visual, AudioTrack(*rand_peaks(rng, seconds)))


def audio_only(frames, bins, seconds: float) -> Fingerprint:
    return Fingerprint(seconds, "", "audio", dict(PARAMS), None, AudioTrack(frames, bins))


def sound_copy(rng, ref: Fingerprint, r0: float, r1: float, q0: float, seconds: float, tempo: float = 1.0) -> Fingerprint:
    """An audio-only query: unrelated peaks, with ref's sound [r0, r1) at q0, played ``tempo`` times faster."""
    lo, hi, at = int(round(r0 / HOP_S)), int(round(r1 / HOP_S)), int(round(q0 / HOP_S))
    rf, rb = ref.audio.frames, ref.audio.bins
    m = (rf >= lo) & (rf < hi)
    moved = np.rint((rf[m].astype(np.float64) - lo) / tempo).astype(np.int64) + at
    uf, ub = rand_peaks(rng, seconds)
    outside = (uf < at) | (uf > moved.max())
    f = np.concatenate([uf[outside], moved])
    b = np.concatenate([ub[outside], rb[m]])
    key = np.unique(f * 1000 + b)
    return audio_only((key // 1000).astype(np.uint32), (key % 1000).astype(np.uint16), seconds)


def test_sample_keys_is_bounded_deterministic_and_consistent():
    rng = np.random.default_rng(1)
    keys = rng.integers(0, 1 << 20, 20_000).astype(np.uint32)
    a = M._sample_keys(keys, 1500)
    assert len(a) == 1500 and np.all(np.isin(a, keys)) and np.all(np.diff(a.astype(np.int64)) > 0)
    assert np.array_equal(a, M._sample_keys(rng.permutation(keys), 1500))
    # a key sampled from a set is sampled from any subset holding it (queries that overlap share their keys)
    sub = keys[:12_000]
    b = M._sample_keys(sub, 1500)
    assert set(np.intersect1d(a, sub).tolist()) <= set(b.tolist())
    small = keys[:100]
    assert np.array_equal(M._sample_keys(small, 1500), np.unique(small))


def test_a_long_query_looks_up_a_bounded_number_of_keys_once_and_still_matches():
    rng = np.random.default_rng(2)
    store = CountingStore()
    refs = {f"r{k}": make_ref(rng, 60.0) for k in range(12)}
    for key, fp in refs.items():
        assert commit(store.inner, LIB, fp, key, "onlysave", False)
    ref = refs["r3"]
    # 240 s of unrelated picture and sound, with r3's [10, 40) s copied at 100 s
    q = make_ref(rng, 240.0)
    hv, fv = q.visual.hashes.copy(), q.visual.flipped.copy()
    hv[500:650], fv[500:650] = ref.visual.hashes[50:200], ref.visual.flipped[50:200]
    sound = sound_copy(rng, ref, 10.0, 40.0, 100.0, 240.0)
    q = Fingerprint(240.0, "", "video", dict(PARAMS), VisualTrack(q.visual.times, hv, fv, q.visual.flags), sound.audio)
    assert len(np.unique(np.concatenate([v[2] for v in I.audio_query_variants(q) if v[0] == v[1] == 1.0]))) > 3 * M.AUDIO_LOOKUP_KEYS
    (m,) = M.Matcher(store).match(LIB, q)
    assert m.primary_key == "r3" and m.modality == "audiovisual"
    (seg,) = m.segments
    assert abs(seg.query_start - 100.0) < 1.0 and abs(seg.reference_start - 10.0) < 1.0
    assert store.count("lookup_visual") and max(store.count("lookup_visual")) <= M.VISUAL_LOOKUP_KEYS
    assert len(store.count("lookup_visual")) == 1 and len(store.count("lookup_audio")) == 1
    assert store.count("lookup_audio") == [M.AUDIO_LOOKUP_KEYS]
    assert store.count("load_fingerprints") == [1]  # only the copied reference is worth reading


def test_a_file_whose_every_segment_scored_zero_is_not_listed(monkeypatch):
    """Segments at chance level (score 0: a landmark line or contour peak no
    better than chance) are no evidence: such a file is no match at all,
    while one whose segments score anything is listed, duplicate or not."""
    from dataclasses import replace

    rng = np.random.default_rng(4)
    store = CountingStore()
    refs = {f"r{k}": make_ref(rng, 60.0) for k in range(4)}
    for key, fp in refs.items():
        assert commit(store.inner, LIB, fp, key, "onlysave", False)
    fuse = M.fuse
    (m,) = M.Matcher(store).match(LIB, refs["r1"])
    assert m.primary_key == "r1" and m.similarity > 0.9
    monkeypatch.setattr(M, "fuse", lambda v, a: [replace(s, score=0.1) for s in fuse(v, a)])
    (m,) = M.Matcher(store).match(LIB, refs["r1"])
    assert m.primary_key == "r1" and 0 < m.similarity < 0.2
    monkeypatch.setattr(M, "fuse", lambda v, a: [replace(s, score=0.0) for s in fuse(v, a)])
    assert M.Matcher(store).match(LIB, refs["r1"]) == []


def test_an_unrelated_query_reads_no_stored_fingerprint():
    rng = np.random.default_rng(3)
    store = CountingStore()
    for k in range(8):
        commit(store.inner, LIB, make_ref(rng, 60.0), f"r{k}", "onlysave", False)
    assert M.Matcher(store).match(LIB, make_ref(rng, 60.0)) == []
    assert store.count("load_fingerprints") == []


def test_reference_landmarks_are_the_index_postings():
    rng = np.random.default_rng(4)
    ref = make_ref(rng, 90.0)
    keys, times = M.reference_landmarks(ref)
    p = I.fingerprint2postings(ref)
    assert np.array_equal(keys, p.audio_keys) and np.array_equal(times, p.audio_times)
    # inside windows: only landmarks anchored there
    k2, t2 = M.reference_landmarks(ref, [(20.0, 30.0)])
    assert len(k2) and t2.min() >= 20.0 and t2.max() < 30.0


def test_a_copy_deep_inside_a_long_reference_is_verified_around_its_offset():
    rng = np.random.default_rng(5)
    store = CountingStore()
    long_ref = audio_only(*rand_peaks(rng, 1500.0), 1500.0)
    assert long_ref.duration > M.WHOLE_REFERENCE_SECONDS
    commit(store.inner, LIB, long_ref, "long", "onlysave", False)
    commit(store.inner, LIB, audio_only(*rand_peaks(rng, 300.0), 300.0), "other", "onlysave", False)
    q = sound_copy(rng, long_ref, 1200.0, 1220.0, 5.0, 30.0)
    matcher = M.Matcher(store)
    cands = matcher.candidates(LIB, q)
    assert list(cands.audio) == ["long"]
    windows = M._window(long_ref, cands.offsets("long"), q.duration)
    assert windows is not None and sum(b - a for a, b in windows) < 200.0
    assert any(a <= 1200.0 and 1220.0 <= b for a, b in windows)
    (m,) = matcher.match(LIB, q)
    (seg,) = m.segments
    assert m.primary_key == "long" and abs(seg.reference_start - 1200.0) < 1.0 and abs(seg.query_start - 5.0) < 1.0


@pytest.mark.parametrize("tempo", [0.92, 1.06])
def test_a_tempo_changed_copy_is_found_from_unit_scale_lookups(tempo):
    rng = np.random.default_rng(6)
    store = CountingStore()
    refs = {f"a{k}": audio_only(*rand_peaks(rng, 60.0), 60.0) for k in range(4)}
    for key, fp in refs.items():
        commit(store.inner, LIB, fp, key, "onlysave", False)
    q = sound_copy(rng, refs["a2"], 5.0, 45.0, 3.0, 50.0, tempo=tempo)
    (m,) = M.Matcher(store).match(LIB, q)
    assert m.primary_key == "a2"
    assert abs(m.segments[0].speed - tempo) <= 0.015
    assert abs(m.segments[0].reference_start - (5.0 + tempo * 0.0)) < 1.5


def test_the_matcher_reads_the_index_within_its_posting_budgets():
    rng = np.random.default_rng(7)
    store = CountingStore()
    commit(store.inner, LIB, make_ref(rng, 60.0), "r0", "onlysave", False)
    M.Matcher(store).match(LIB, make_ref(rng, 60.0))
    assert store.budgets == [("lookup_visual", M.VISUAL_LOOKUP_POSTINGS), ("lookup_audio", M.AUDIO_LOOKUP_POSTINGS)]


def test_a_copy_is_found_when_the_budget_drops_the_library_s_frequent_keys(monkeypatch):
    """A library where some sounds recur everywhere (a jingle, a tone): a budgeted
    lookup skips those keys, reads the rare ones, and the copy still stands out."""
    rng = np.random.default_rng(8)
    store = CountingStore()
    jingle = rand_peaks(rng, 20.0)  # the same 20 s in every file, at 0 s
    refs = {}
    for k in range(10):
        f, b = rand_peaks(rng, 60.0)
        late = f > int(25.0 / HOP_S)
        key = np.unique(np.concatenate([jingle[0], f[late]]).astype(np.int64) * 1000 + np.concatenate([jingle[1], b[late]]))
        refs[f"r{k}"] = audio_only((key // 1000).astype(np.uint32), (key % 1000).astype(np.uint16), 60.0)
        commit(store.inner, LIB, refs[f"r{k}"], f"r{k}", "onlysave", False)
    q = sound_copy(rng, refs["r4"], 0.0, 55.0, 0.0, 55.0)
    keys = M._sample_keys(np.concatenate([v[2] for v in I.audio_query_variants(q, unit_only=True)]), M.AUDIO_LOOKUP_KEYS)
    full = store.inner.lookup_audio(LIB, keys)
    _, per_key = np.unique(full.keys, return_counts=True)
    budget = int(0.5 * len(full))
    monkeypatch.setattr(M, "AUDIO_LOOKUP_POSTINGS", budget)
    monkeypatch.setattr(M, "VISUAL_LOOKUP_POSTINGS", 0)
    read = store.inner.lookup_audio(LIB, keys, max_postings=budget)
    assert per_key.max() >= 10 and len(read) <= budget < len(full)
    assert np.bincount(np.unique(read.keys, return_counts=True)[1]).nonzero()[0].max() < per_key.max()  # the jingle's keys went first
    m, *others = M.Matcher(store).match(LIB, q)
    assert m.primary_key == "r4" and m.query_coverage > 0.8
    assert all(abs(s.reference_start - s.query_start) < 0.5 for s in m.segments)
    # the others share the jingle only (20 s, and the pause after it up to 25 s)
    assert all(s.query_end < 26.0 for o in others for s in o.segments)


def test_dense_and_sparse_vote_peaks_agree():
    rng = np.random.default_rng(9)
    for trial in range(30):
        n_var, span = int(rng.integers(1, 8)), int(rng.integers(3, 60))
        n = int(rng.integers(1, 300))
        key = rng.integers(0, n_var, n) * span + rng.integers(1, span - 1, n)
        assert M._dense_peaks(n_var, span, key) == M._sparse_peaks(n_var, span, key)


def test_lines_pool_neighbouring_cells_of_one_file_only():
    code = np.array([0, 0, 0, 1, 1, 2])
    cell = np.array([5, 6, 6, 7, 9, 3])
    lines = M._Lines(code, cell)
    codes, best = lines.best()
    assert codes.tolist() == [0, 1, 2] and best.tolist() == [3, 1, 1]
    # a vote unit votes once per line
    lines = M._Lines(code, cell, np.array([0, 1, 1, 0, 0, 0]))
    assert lines.best()[1].tolist() == [2, 1, 1]
    assert lines.offsets(0, 1) == [(2, 5)]


@pytest.mark.parametrize("top", [50, 1 << 20, 1 << 23])  # a table per key / few wanted terms / a wide key space
def test_expand_joins_every_posting_of_every_wanted_key(top):
    rng = np.random.default_rng(10)
    keys = rng.integers(0, top, 400).astype(np.uint32)
    hits = Hits(keys, np.zeros(400, np.int64), np.arange(400, dtype=np.float32), np.array(["f"], dtype=object))
    wanted = np.concatenate([keys[:50], rng.integers(0, top, 50).astype(np.uint32), np.array([top + 5], np.uint32)])
    qi, hi = M._expand(wanted, hits)
    got = sorted(zip(qi.tolist(), hi.tolist()))
    expected = sorted((i, j) for i, w in enumerate(wanted.tolist()) for j, k in enumerate(keys.tolist()) if k == w)
    assert got == expected and np.all(np.diff(qi) >= 0)


@pytest.mark.parametrize("scale", [1, 3_000_000, 3_000_000_000])  # int32, uint32 and int64 sort keys
def test_lines_count_the_same_whatever_width_their_keys_need(scale):
    rng = np.random.default_rng(11)
    code = np.sort(rng.integers(0, 5, 300))
    cell = rng.integers(-40, 40, 300)
    unit = rng.integers(0, 20, 300)
    for u in (None, unit):
        small = M._Lines(code, cell, u)
        big = M._Lines(code * scale, cell, u)
        codes_s, best_s = small.best()
        codes_b, best_b = big.best()
        assert (codes_b // scale).tolist() == codes_s.tolist() and best_b.tolist() == best_s.tolist()
        assert big.offsets(int(codes_b[2]), 2) == small.offsets(int(codes_s[2]), 2)


def _picture_and_sound_copy(rng, ref: Fingerprint, speed: float) -> Fingerprint:
    """ref's [5, 45) s played ``speed`` times faster (picture and sound), after 4 s of unrelated footage."""
    n = int(round(40.0 / speed * FPS))
    idx = np.rint(5.0 * FPS + np.arange(n) * speed).astype(int)
    lead = make_ref(rng, 4.0).visual
    hv = np.concatenate([lead.hashes, ref.visual.hashes[idx]])
    fv = np.concatenate([lead.flipped, ref.visual.flipped[idx]])
    seconds = 4.0 + n / FPS
    visual = VisualTrack(np.arange(len(hv)) / FPS, hv, fv, np.zeros(len(hv), np.uint8))
    sound = sound_copy(rng, ref, 5.0, 45.0, 4.0, seconds, tempo=speed)
    return Fingerprint(seconds, "", "video", dict(PARAMS), visual, sound.audio)


@pytest.mark.parametrize("speed", [0.92, 1.0, 1.08])
def test_the_sound_of_a_copy_is_verified_at_the_speed_its_picture_aligned_at(speed, monkeypatch):
    rng = np.random.default_rng(12)
    store = CountingStore()
    refs = {f"r{k}": make_ref(rng, 60.0) for k in range(6)}
    for key, fp in refs.items():
        commit(store.inner, LIB, fp, key, "onlysave", False)
    q = _picture_and_sound_copy(rng, refs["r4"], speed)
    asked = []
    real = I.audio_query_variants
    monkeypatch.setattr(I, "audio_query_variants", lambda fp, **kw: asked.append(kw) or real(fp, **kw))
    (m,) = M.Matcher(store).match(LIB, q)
    assert m.primary_key == "r4" and m.modality == "audiovisual"
    (seg,) = m.segments
    assert abs(seg.speed - speed) <= 0.015 and abs(seg.query_start - 4.0) < 1.0 and abs(seg.reference_start - 5.0) < 1.0
    # the sound is heard near the picture's speed only, not at all 21 speeds
    verified = [kw["speeds"] for kw in asked if "speeds" in kw]
    assert len(verified) == 1 and verified[0]
    assert all(abs(s - speed) <= M.VISUAL_SPEED_SLACK + 0.011 for s in verified[0])


def test_verify_speeds_follow_the_picture_else_the_candidate_lines():
    c = M.Candidates()
    c.audio["a"], c.audio_speeds["a"] = [0.0], [1.07]
    c.visual["v"] = [0.0]
    c.audio["av"], c.audio_speeds["av"] = [0.0], [0.93, 1.0, 1.07]
    seg = M.Segment(0.0, 10.0, 0.0, 9.5, 0.9, "video", speed=0.95)
    assert M.verify_speeds(c, {}, ["a"]) == [1.03, 1.04, 1.05, 1.06, 1.07, 1.08, 1.09, 1.1]
    assert M.verify_speeds(c, {"v": [seg]}, ["v"]) == [0.93, 0.94, 0.95, 0.96, 0.97]
    # the picture's speed decides where it aligned, even when every line voted
    assert M.verify_speeds(c, {"av": [seg]}, ["av"]) == [0.93, 0.94, 0.95, 0.96, 0.97]
    assert M.verify_speeds(c, {}, ["av"]) == [float(x) for x in M.SPEEDS]


def test_a_file_only_the_picture_proposed_is_not_heard_when_its_picture_does_not_align(monkeypatch):
    rng = np.random.default_rng(13)
    store = CountingStore()
    refs = {f"r{k}": make_ref(rng, 60.0) for k in range(3)}
    for key, fp in refs.items():
        commit(store.inner, LIB, fp, key, "onlysave", False)
    q = make_ref(rng, 30.0)
    # r1 proposed by the picture (a chance line), r2 by the sound; neither is copied
    chance = M.Candidates()
    chance.visual["r1"] = [10.0]
    chance.audio["r2"], chance.audio_speeds["r2"] = [0.0], [1.0]
    matcher = M.Matcher(store)
    monkeypatch.setattr(matcher, "candidates", lambda *a, **k: chance)
    heard = []
    real_hits = matcher.audio_hits
    monkeypatch.setattr(matcher, "audio_hits", lambda refs, *a: heard.append(sorted(refs)) or real_hits(refs, *a))
    assert matcher.match(LIB, q) == []
    assert heard == [["r2"]]
    # with no file left to hear, the query's tempo/pitch variants are never made
    chance.audio.clear()
    made = []
    monkeypatch.setattr(I, "audio_query_variants", lambda *a, **k: made.append(k) or [])
    assert matcher.match(LIB, q) == [] and heard == [["r2"]]
    assert all(k.get("unit_only") for k in made)


class PostingStore:
    """A store whose audio index holds exactly the given postings: {file: [(key, reference time)]}."""

    def __init__(self, postings: dict[str, list[tuple[int, float]]]):
        names = np.array(list(postings), dtype=object)
        rows = [(k, c, t) for c, f in enumerate(postings) for k, t in postings[f]]
        self.hits = Hits(np.array([r[0] for r in rows], np.uint32), np.array([r[1] for r in rows], np.int64),
                         np.array([r[2] for r in rows], np.float32), names)

    def lookup_audio(self, library, keys, max_postings=None):
        m = np.isin(self.hits.keys, keys)
        return Hits(self.hits.keys[m], self.hits.codes[m], self.hits.times[m], self.hits.names)


def test_audio_candidates_count_query_events_not_hits(monkeypatch):
    """One held note of the query meeting a reference that holds it too piles up
    hits (every posting of every landmark of that note's track); it is one event.
    A reference sharing a few of the query's events on one line is the candidate."""
    rng = np.random.default_rng(12)
    q = audio_only(*rand_peaks(rng, 3.0), 3.0)
    ((_, _, h, qt, anchors, _),) = I.audio_query_variants(q, unit_only=True)
    tracks = np.unique(anchors)
    by_track = {t: np.flatnonzero(anchors == t) for t in tracks}
    held = max(by_track, key=lambda t: len(by_track[t]))  # the track with the most landmarks
    others = [by_track[t][0] for t in tracks if t != held][:30]  # one landmark each of 30 other events
    pile = [(int(h[i]), 40.0 + float(qt[i]) + 0.05 * k) for i in by_track[held] for k in range(12)]
    copy = [(int(h[i]), 20.0 + float(qt[i])) for i in others]
    assert len(pile) > 2 * len(copy)
    monkeypatch.setattr(M, "MAX_AUDIO_CANDIDATES", 1)
    cands = M.Matcher(PostingStore({"pile": pile, "copy": copy})).candidates(LIB, q)
    assert list(cands.audio) == ["copy"]
    assert any(abs(o - 20.0) <= M.CANDIDATE_BIN for o in cands.audio["copy"])


@pytest.mark.parametrize("seconds, expected", [(5.0, {"smear", "copy"}), (12.0, {"smear", "copy"}), (20.0, {"smear"})])
def test_a_short_query_also_votes_in_fine_offset_bins(seconds, expected, monkeypatch):
    """A short query's copy puts its events on one offset; an unrelated song
    sharing chords meets more of them, but smeared over a few seconds of
    offset.  In 2 s bins pooled over +-1 (6 s) the smear outvotes the copy.
    A query up to EVENT_VOTE_SECONDS also votes in SHORT_CANDIDATE_BIN bins,
    where the copy is the best line, at its offset: each bin size proposes
    its own best files.  A longer query votes in coarse bins alone."""
    rng = np.random.default_rng(31)
    q = audio_only(*rand_peaks(rng, seconds), seconds)
    ((_, _, h, qt, anchors, _),) = I.audio_query_variants(q, unit_only=True)
    first = {t: np.flatnonzero(anchors == t)[0] for t in np.unique(anchors)}  # one landmark per event
    events = list(first.values())
    rng.shuffle(events)
    n = len(events) // 4
    copy = [(int(h[i]), 20.0 + float(qt[i])) for i in events[:n]]
    smear = [(int(h[i]), 60.0 + float(qt[i]) + float(rng.uniform(0.0, 4.5))) for i in events[n : 3 * n]]
    assert len(smear) >= 2 * len(copy) >= 8
    monkeypatch.setattr(M, "MAX_AUDIO_CANDIDATES", 1)
    cands = M.Matcher(PostingStore({"smear": smear, "copy": copy})).candidates(LIB, q)
    assert set(cands.audio) == expected
    if "copy" in expected:
        assert any(abs(o - 20.0) <= M.SHORT_CANDIDATE_BIN for o in cands.audio["copy"])
