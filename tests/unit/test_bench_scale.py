"""bench/scale.py helpers: synthetic library files and the DynamoDB estimate (no media, no big data)."""

from __future__ import annotations


import numpy as np
import pytest

from mediadna import audio as A
from mediadna.fingerprint import AudioTrack, Fingerprint, VisualTrack
from mediadna.index import fingerprint2postings


@pytest.fixture(scope="module")
def scale(load_bench):
    return load_bench("scale")


def _training_fp(seed: int, seconds: float = 20.0) -> Fingerprint:
    rng = np.random.default_rng(seed)
    n = int(seconds * 5)
    shots = np.repeat(rng.integers(0, 2**63, n // 10 + 1, dtype=np.uint64), 10)[:n]
    frames = np.sort(rng.integers(0, int(seconds * 31.25), int(seconds * 40))).astype(np.uint32)
    bins = rng.integers(A.MIN_BIN, A.MAX_BIN + 1, len(frames)).astype(np.uint16)
    return Fingerprint(duration=seconds, sha256="", media_type="video", params={"audio_rate": 8000},
                       visual=VisualTrack(np.arange(n) / 5.0, shots, ~shots, np.zeros(n, np.uint8)),
                       audio=AudioTrack(frames, bins))


def test_synth_file_is_a_consistent_fingerprint_with_real_like_postings(scale):
    train = [_training_fp(s) for s in (1, 2)]
    pool = scale.Pool.from_fingerprints(train)
    fp, post = scale.synth_file(pool, 120.0, np.random.default_rng(7))
    assert fp.duration == 120.0 and len(fp.visual) == 600
    assert np.all(np.diff(fp.visual.times) > 0) and np.all(np.diff(fp.audio.frames.astype(np.int64)) >= 0)
    assert fp.audio.bins.min() >= A.MIN_BIN and fp.audio.bins.max() <= A.MAX_BIN
    assert Fingerprint.from_bytes(fp.to_bytes()) == fp
    # visual postings are the index's own postings of the synthetic frame hashes
    ref = fingerprint2postings(Fingerprint(fp.duration, "", "video", fp.params, visual=fp.visual))
    assert np.array_equal(post.visual_keys, ref.visual_keys)
    # audio postings: the pool's landmarks with the anchor bin moved, (df, dt) kept, times inside the file
    pool_low = set(np.concatenate([k for k, _ in pool.landmarks]) & 0xFFF)
    assert set((post.audio_keys & 0xFFF).tolist()) <= pool_low
    anchors = post.audio_keys >> 12
    assert anchors.min() >= A.MIN_BIN and anchors.max() <= A.MAX_BIN
    assert post.audio_times.min() >= 0 and post.audio_times.max() < 120.0
    # posting rates per minute follow the pool (less the dropped share)
    rate = len(post.audio_keys) / 2.0
    pool_rate = np.mean([len(k) / (fp_.duration / 60) for (k, _), fp_ in zip(pool.landmarks, train)])
    assert 0.6 * pool_rate < rate < 1.1 * pool_rate
    # same seed, same file; another seed, another file
    again, _ = scale.synth_file(pool, 120.0, np.random.default_rng(7))
    other, _ = scale.synth_file(pool, 120.0, np.random.default_rng(8))
    assert again == fp and other != fp


def test_dynamo_estimate_counts_batches_shards_and_units(scale):
    # 150 keys: one missing, 148 small, one of 50,000 postings (two shards of at most 43,000)
    counts = np.array([0] + [10] * 148 + [50_000])
    est = scale.dynamo_estimate([counts])["term_items"]
    assert est["items_read"] == 151
    assert est["requests"] == 2 + 1  # shard 0 of 150 keys in 2 batches, then shard 1 of one key
    small = 149  # 1 unit each (missing or under 4 KB)
    big = 84 + 14  # 43,000 x 8 + 64 bytes -> 84 units; 7,000 x 8 + 64 -> 14 units
    assert est["read_capacity_units"] == small + big
    half = scale.dynamo_estimate([counts], consistent=False)["term_items"]["read_capacity_units"]
    assert half == (small + big) / 2
    per_posting = scale.dynamo_estimate([counts])["posting_items"]
    assert per_posting["requests"] == 150 + 1  # 50,000 x 40 bytes = 2 MB: two 1 MB pages


def test_stats_delta_subtracts_numbers_recursively(scale):
    before = scale._plain({"requests": {"BatchGetItem": 3}, "read_units": 1.5, "name": "x"})
    after = scale._plain({"requests": {"BatchGetItem": 10, "GetItem": 2}, "read_units": 4.0, "name": "x"})
    assert scale.stats_delta(before, after) == {"requests": {"BatchGetItem": 7, "GetItem": 2}, "read_units": 2.5,
                                                "name": "x"}
