"""Fingerprint value objects: exact binary / JSON round-trips, corruption handling.

Pure numpy: no media is decoded here.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediadna.errors import BAD_FINGERPRINT, MediaError
from mediadna.fingerprint import (
    CONTAINER_VERSION,
    FINGERPRINT_NAME,
    FINGERPRINT_VERSION,
    FLAG_FLAT,
    MAGIC,
    AudioTrack,
    Fingerprint,
    FrameHash,
    VisualTrack,
)


# --- builders -------------------------------------------------------------------
def random_visual(rng: np.random.Generator, n: int) -> VisualTrack:
    return VisualTrack(
        # irregular float32 times (not multiples of 0.2 that survive any rounding)
        np.cumsum(rng.uniform(0.05, 0.4, n)).astype(np.float32),
        # full 64-bit range, top bit included: a signed/float detour would show
        rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True),
        rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True),
        rng.integers(0, 2, n).astype(np.uint8) * FLAG_FLAT,
    )


def random_audio(rng: np.random.Generator, n: int) -> AudioTrack:
    return AudioTrack(
        np.sort(rng.integers(0, 2**32 - 1, n, dtype=np.uint64, endpoint=True)).astype(np.uint32),
        rng.integers(0, 2**16 - 1, n, endpoint=True).astype(np.uint16),
    )


def make_fp(seed: int = 0, n_visual: int | None = 120, n_audio: int | None = 400, **kw) -> Fingerprint:
    rng = np.random.default_rng(seed)
    args = dict(
        duration=float(rng.uniform(1, 3600)),  # arbitrary binary float: repr round-trip must be exact
        sha256=bytes(rng.integers(0, 256, 32, dtype=np.uint8)).hex(),
        media_type="video",
        params={"sample_fps": 5.0, "frame_hash": "dct64", "hop": 256, "flat_std": 7.0, "nested": {"a": [1, 2.5]}},
        visual=random_visual(rng, n_visual) if n_visual is not None else None,
        audio=random_audio(rng, n_audio) if n_audio is not None else None,
        source="clip ünïcödé ✓.mp4",
        meta={"width": 1920, "height": 1080, "codecs": ["h264", "aac"], "rotation": None},
    )
    args.update(kw)
    return Fingerprint(**args)


def assert_identical(a: Fingerprint, b: Fingerprint) -> None:
    """Field by field (not only __eq__, which a bug could make too lenient)."""
    assert a == b
    for name in ("duration", "sha256", "media_type", "params", "name", "version", "source", "meta"):
        assert getattr(a, name) == getattr(b, name), name
    assert type(a.duration) is float and type(b.duration) is float
    for track in ("visual", "audio"):
        ta, tb = getattr(a, track), getattr(b, track)
        assert (ta is None) == (tb is None), track
    if a.visual is not None:
        for f in ("times", "hashes", "flipped", "flags"):
            x, y = getattr(a.visual, f), getattr(b.visual, f)
            assert x.dtype == y.dtype and x.dtype.isnative, f
            assert x.tobytes() == y.tobytes(), f  # bit-exact, float32 included
    if a.audio is not None:
        for f in ("frames", "bins"):
            x, y = getattr(a.audio, f), getattr(b.audio, f)
            assert x.dtype == y.dtype and x.dtype.isnative, f
            assert x.tobytes() == y.tobytes(), f
    assert sorted(a.shifted) == sorted(b.shifted)
    for offset in a.shifted:
        for f in ("frames", "bins"):
            x, y = getattr(a.shifted[offset], f), getattr(b.shifted[offset], f)
            assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), (offset, f)


CASES = {
    "full": dict(),
    "visual_only": dict(n_audio=None, media_type="video"),
    "audio_only": dict(n_visual=None, media_type="audio"),
    "empty_tracks": dict(n_visual=0, n_audio=0),
    "no_tracks": dict(n_visual=None, n_audio=None),
    "single_frame": dict(n_visual=1, n_audio=1, media_type="image"),
}


# --- round-trips ------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(CASES))
def test_bytes_round_trip_is_exact(case):
    fp = make_fp(seed=zlib.crc32(case.encode()) % 1000, **CASES[case])
    data = fp.to_bytes()
    assert data[:4] == MAGIC and data[4] == CONTAINER_VERSION
    back = Fingerprint.from_bytes(data)
    assert_identical(fp, back)
    # canonical: re-serialising gives the very same bytes
    assert back.to_bytes() == data


@pytest.mark.parametrize("case", sorted(CASES))
def test_json_round_trip_is_exact(case):
    fp = make_fp(seed=zlib.crc32(case.encode()) % 1000 + 1, **CASES[case])
    text = fp.to_json()
    json.loads(text)  # valid JSON
    back = Fingerprint.from_json(text)
    assert_identical(fp, back)
    assert back.to_json() == text
    # binary and JSON agree with each other
    assert_identical(Fingerprint.from_bytes(fp.to_bytes()), back)


def test_shifted_audio_grids_round_trip():
    """A short input's peaks on sub-hop shifted STFT grids survive both forms
    exactly, keyed by their offset; they count for equality."""
    rng = np.random.default_rng(5)
    shifted = {64: random_audio(rng, 30), 128: random_audio(rng, 0), 192: random_audio(rng, 7)}
    fp = make_fp(seed=6, shifted=shifted)
    for back in (Fingerprint.from_bytes(fp.to_bytes()), Fingerprint.from_json(fp.to_json())):
        assert_identical(fp, back)
        assert sorted(back.shifted) == [64, 128, 192] and len(back.shifted[128]) == 0
    assert Fingerprint.from_bytes(fp.to_bytes()).to_bytes() == fp.to_bytes()
    assert make_fp(seed=6) != fp  # the same without the grids
    assert Fingerprint.from_bytes(make_fp(seed=6).to_bytes()).shifted == {}


def test_empty_tracks_stay_distinct_from_missing_tracks():
    empty = Fingerprint.from_bytes(make_fp(n_visual=0, n_audio=0).to_bytes())
    missing = Fingerprint.from_bytes(make_fp(n_visual=None, n_audio=None).to_bytes())
    assert empty.visual is not None and len(empty.visual) == 0 and not empty.has_visual
    assert empty.audio is not None and len(empty.audio) == 0 and not empty.has_audio
    assert missing.visual is None and missing.audio is None
    assert empty != missing


def test_zoom_views_round_trip_and_old_fingerprints_have_none():
    rng = np.random.default_rng(11)
    fp = make_fp(seed=11)
    v = fp.visual
    zoom = rng.integers(0, 2**64 - 1, (len(v), 2), dtype=np.uint64, endpoint=True)
    fp.visual = VisualTrack(v.times, v.hashes, v.flipped, v.flags, zoom)
    for back in (Fingerprint.from_bytes(fp.to_bytes()), Fingerprint.from_json(fp.to_json())):
        assert back == fp
        assert np.array_equal(back.visual.zoom, zoom)
        assert np.array_equal(back.visual.views, np.concatenate([v.hashes[:, None], zoom], axis=1))
        assert np.array_equal(back.visual.select(back.visual.informative).zoom, zoom[v.informative])
    old = Fingerprint.from_bytes(make_fp(seed=11).to_bytes())  # made before zoom views existed
    assert old.visual.zoom.shape == (len(v), 0)
    assert np.array_equal(old.visual.views[:, 0], v.hashes)
    assert old != fp


def test_audio_contour_round_trips_and_old_fingerprints_have_none():
    """The band-energy contour of the main grid and of each shifted grid
    survives both forms bit for bit; a fingerprint made before the contour
    existed reads with an empty one (its peaks unchanged)."""
    rng = np.random.default_rng(13)

    def with_contour(track: AudioTrack, n: int) -> AudioTrack:
        frames = np.sort(rng.choice(50_000, n, replace=False)).astype(np.uint32)
        return AudioTrack(track.frames, track.bins, frames, rng.integers(0, 2**32 - 1, n, dtype=np.uint64, endpoint=True).astype(np.uint32))

    base = make_fp(seed=13)
    fp = make_fp(seed=13, audio=with_contour(base.audio, 300), shifted={64: with_contour(random_audio(rng, 20), 40)})
    for back in (Fingerprint.from_bytes(fp.to_bytes()), Fingerprint.from_json(fp.to_json())):
        assert back == fp
        for got, want in ((back.audio, fp.audio), (back.shifted[64], fp.shifted[64])):
            assert got.contour.dtype == np.uint32 and got.contour.tobytes() == want.contour.tobytes()
            assert got.contour_frames.tobytes() == want.contour_frames.tobytes()
    old = Fingerprint.from_bytes(base.to_bytes())
    assert len(old.audio.contour) == len(old.audio.contour_frames) == 0
    assert np.array_equal(old.audio.frames, fp.audio.frames)
    assert old != make_fp(seed=13, audio=with_contour(base.audio, 300))


def test_contour_that_does_not_fit_its_frames_raises_bad_fingerprint():
    a = make_fp(seed=14).audio
    with pytest.raises(MediaError) as ei:
        AudioTrack(a.frames, a.bins, np.arange(5, dtype=np.uint32), np.zeros(4, np.uint32))
    assert ei.value.code == BAD_FINGERPRINT
    fp = make_fp(seed=14, audio=AudioTrack(a.frames, a.bins, np.arange(5, dtype=np.uint32), np.zeros(5, np.uint32)))
    doc = json.loads(fp.to_json())
    doc["arrays"]["a.contour"]["data"] = base64.b64encode(np.zeros(4, "<u4").tobytes()).decode()
    with pytest.raises(MediaError) as ei:
        Fingerprint.from_json(json.dumps(doc))
    assert ei.value.code == BAD_FINGERPRINT


def test_zoom_views_that_do_not_fit_the_frames_raise_bad_fingerprint():
    v = make_fp(seed=12).visual
    with pytest.raises(MediaError) as ei:
        VisualTrack(v.times, v.hashes, v.flipped, v.flags, np.zeros((len(v) - 1, 2), np.uint64))
    assert ei.value.code == BAD_FINGERPRINT
    fp = make_fp(seed=12)
    fp.visual = VisualTrack(v.times, v.hashes, v.flipped, v.flags, np.zeros((len(v), 2), np.uint64))
    doc = json.loads(fp.to_json())
    doc["arrays"]["v.zoom"]["data"] = base64.b64encode(np.zeros(len(v) * 2 - 1, "<u8").tobytes()).decode()
    with pytest.raises(MediaError) as ei:
        Fingerprint.from_json(json.dumps(doc))
    assert ei.value.code == BAD_FINGERPRINT


def test_round_trip_keeps_name_and_version():
    fp = make_fp(name="other", version=FINGERPRINT_VERSION + 7)
    back = Fingerprint.from_bytes(fp.to_bytes())
    assert (back.name, back.version) == ("other", FINGERPRINT_VERSION + 7)
    assert not back.compatible_with(make_fp())
    assert make_fp(seed=1).compatible_with(make_fp(seed=2))
    assert make_fp().name == FINGERPRINT_NAME and make_fp().version == FINGERPRINT_VERSION


def test_equality_sees_a_single_changed_hash():
    a, b = make_fp(seed=3), make_fp(seed=3)
    assert a == b
    b.visual.hashes[17] ^= np.uint64(1)
    assert a != b
    assert Fingerprint.from_bytes(b.to_bytes()) != a


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_visual=st.one_of(st.none(), st.integers(0, 60)),
    n_audio=st.one_of(st.none(), st.integers(0, 200)),
)
def test_round_trips_property(seed, n_visual, n_audio):
    fp = make_fp(seed=seed, n_visual=n_visual, n_audio=n_audio)
    assert_identical(fp, Fingerprint.from_bytes(fp.to_bytes()))
    assert_identical(fp, Fingerprint.from_json(fp.to_json()))


# --- corrupt input ----------------------------------------------------------------
def _raises_bad(fn, data):
    with pytest.raises(MediaError) as ei:
        fn(data)
    assert ei.value.code == BAD_FINGERPRINT
    assert "\n" not in str(ei.value)


@pytest.mark.parametrize(
    "data",
    [b"", b"M", b"MDNA", b"MDNA\x01", b"MDNA\x01\xff\xff\xff\xff", b"garbage bytes, not a fingerprint" * 3, bytes(64), b"\x89PNG\r\n\x1a\n" + bytes(40)],
)
def test_garbage_bytes_raise_bad_fingerprint(data):
    _raises_bad(Fingerprint.from_bytes, data)


def test_every_truncation_raises_bad_fingerprint():
    data = make_fp(n_visual=40, n_audio=100).to_bytes()
    for k in range(len(data)):
        _raises_bad(Fingerprint.from_bytes, data[:k])


@pytest.mark.parametrize("tail", [b"\x00", b"garbage", None])
def test_trailing_bytes_raise_bad_fingerprint(tail):
    data = make_fp(n_visual=20, n_audio=30).to_bytes()
    tail = data if tail is None else tail  # None: two fingerprints concatenated
    _raises_bad(Fingerprint.from_bytes, data + tail)


def test_unknown_container_version_raises():
    data = bytearray(make_fp().to_bytes())
    data[4] = CONTAINER_VERSION + 1
    _raises_bad(Fingerprint.from_bytes, bytes(data))


def test_single_bit_flips_in_framing_and_payload_never_pass_silently():
    """Magic, version, header length and the (zlib, checksummed) payload:
    a flipped bit either raises or, for the few padding bits deflate ignores,
    decodes to the very same fingerprint -- never to a different one."""
    fp = make_fp(seed=5, n_visual=30, n_audio=60)
    data = fp.to_bytes()
    hlen = struct.unpack_from("<I", data, 5)[0]
    positions = list(range(9)) + list(range(9 + hlen, len(data)))
    raised = 0
    for pos in positions:
        for bit in range(8):
            c = bytearray(data)
            c[pos] ^= 1 << bit
            try:
                back = Fingerprint.from_bytes(bytes(c))
            except MediaError as exc:
                assert exc.code == BAD_FINGERPRINT
                raised += 1
            else:
                assert_identical(fp, back)
    assert raised >= 0.95 * 8 * len(positions)


def _container(header: dict, payload: bytes) -> bytes:
    h = json.dumps(header).encode()
    return MAGIC + struct.pack("<BI", CONTAINER_VERSION, len(h)) + h + zlib.compress(payload)


def _parts(fp: Fingerprint) -> tuple[dict, bytes]:
    data = fp.to_bytes()
    hlen = struct.unpack_from("<I", data, 5)[0]
    return json.loads(data[9 : 9 + hlen]), zlib.decompress(data[9 + hlen :])


def test_well_formed_container_is_accepted():  # the helpers above are faithful
    fp = make_fp(seed=6, n_visual=10, n_audio=10)
    header, payload = _parts(fp)
    assert_identical(fp, Fingerprint.from_bytes(_container(header, payload)))


@pytest.mark.parametrize(
    "tamper",
    [
        "array_longer_than_payload",
        "arrays_of_unequal_length",
        "payload_longer_than_arrays",
        "missing_header_key",
        "unknown_dtype",
        "header_not_an_object",
        "arrays_missing",
    ],
)
def test_inconsistent_container_raises_bad_fingerprint(tamper):
    fp = make_fp(seed=7, n_visual=10, n_audio=10)
    header, payload = _parts(fp)
    if tamper == "array_longer_than_payload":
        header["arrays"][-1][2] += 1
    elif tamper == "arrays_of_unequal_length":
        # v.hashes one shorter, v.flipped one longer: payload size still matches
        names = [a[0] for a in header["arrays"]]
        header["arrays"][names.index("v.hashes")][2] -= 1
        header["arrays"][names.index("v.flipped")][2] += 1
    elif tamper == "payload_longer_than_arrays":
        payload += bytes(16)
    elif tamper == "missing_header_key":
        del header["duration"]
    elif tamper == "unknown_dtype":
        header["arrays"][0][1] = "<q9"
    elif tamper == "header_not_an_object":
        header = [1, 2, 3]
    elif tamper == "arrays_missing":
        del header["arrays"]
    _raises_bad(Fingerprint.from_bytes, _container(header, payload))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "[]",
        "null",
        '{"arrays": {}}',
        "not json at all",
    ],
)
def test_garbage_json_raises_bad_fingerprint(text):
    _raises_bad(Fingerprint.from_json, text)


@pytest.mark.parametrize("tamper", ["bad_base64", "partial_item", "unequal_lengths", "missing_key", "bad_dtype"])
def test_tampered_json_raises_bad_fingerprint(tamper):
    doc = json.loads(make_fp(seed=8, n_visual=10, n_audio=10).to_json())
    arrays = doc["arrays"]
    if tamper == "bad_base64":
        arrays["v.hashes"]["data"] = "***not base64***"
    elif tamper == "partial_item":  # 7 bytes for a uint64 array
        arrays["v.hashes"]["data"] = base64.b64encode(bytes(7)).decode()
    elif tamper == "unequal_lengths":
        raw = base64.b64decode(arrays["a.bins"]["data"])
        arrays["a.bins"]["data"] = base64.b64encode(raw[:-2]).decode()
    elif tamper == "missing_key":
        del doc["sha256"]
    elif tamper == "bad_dtype":
        arrays["v.flags"]["dtype"] = "nonsense"
    _raises_bad(Fingerprint.from_json, json.dumps(doc))


def test_tracks_reject_unequal_lengths():
    with pytest.raises(MediaError) as ei:
        VisualTrack(np.zeros(3), np.zeros(3), np.zeros(2), np.zeros(3))
    assert ei.value.code == BAD_FINGERPRINT
    with pytest.raises(MediaError) as ei:
        AudioTrack(np.zeros(3), np.zeros(4))
    assert ei.value.code == BAD_FINGERPRINT


# --- FrameHash ------------------------------------------------------------------
def test_frame_hash_distance():
    a = FrameHash(0)
    assert a.distance(a) == 0
    assert a.distance(FrameHash(2**64 - 1)) == 64
    assert FrameHash(0b1011).distance(FrameHash(0b0110)) == 3
    rng = np.random.default_rng(9)
    for _ in range(200):
        x, y = (int(v) for v in rng.integers(0, 2**64 - 1, 2, dtype=np.uint64, endpoint=True))
        d = FrameHash(x).distance(FrameHash(y))
        assert d == FrameHash(y).distance(FrameHash(x)) == sum(((x ^ y) >> k) & 1 for k in range(64))


def test_frame_hash_hex_round_trip():
    for value in (0, 1, 0xABC, 2**63, 2**64 - 1, 0x0123456789ABCDEF):
        text = str(FrameHash(value))
        assert len(text) == 16 and text == text.lower()
        assert FrameHash.from_hex(text) == FrameHash(value)
    assert str(FrameHash(0xABC)) == "0000000000000abc"
    assert FrameHash.from_hex("FFFFFFFFFFFFFFFF").value == 2**64 - 1


# --- files ------------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(CASES))
def test_save_load_binary(tmp_path, case):
    fp = make_fp(seed=11, **CASES[case])
    path = tmp_path / "clip.mdna"
    fp.save(path)
    assert path.read_bytes() == fp.to_bytes()
    assert_identical(fp, Fingerprint.load(path))
    assert_identical(fp, Fingerprint.load(str(path)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_load_json_file(tmp_path, case):
    fp = make_fp(seed=12, **CASES[case])
    path = tmp_path / "clip.mdna"
    path.write_text(fp.to_json(), encoding="utf-8")
    assert_identical(fp, Fingerprint.load(path))


@pytest.mark.parametrize(
    "content",
    [b"", b"MDNA", b"{not json", b'{"arrays": 1}', b"\xff\xfe garbage", b"{\xff\xfe}"],
)
def test_load_corrupt_file_raises_bad_fingerprint(tmp_path, content):
    path = tmp_path / "bad.mdna"
    path.write_bytes(content)
    _raises_bad(Fingerprint.load, path)


def test_load_truncated_file_raises_bad_fingerprint(tmp_path):
    fp = make_fp(seed=13)
    path = tmp_path / "cut.mdna"
    path.write_bytes(fp.to_bytes()[:-10])
    _raises_bad(Fingerprint.load, path)
    path.write_text(fp.to_json()[:-10])
    _raises_bad(Fingerprint.load, path)
