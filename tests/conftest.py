"""Shared media fixtures: small synthetic clips, generated once per test session.

Everything is made with :mod:`mediadna.synth` into one session directory:

* ``ref_a``: ``scenes`` video, 20 s, music soundtrack (the clip copies are made of);
* ``ref_b``: ``talk`` video, 20 s, speech;
* ``unrelated``: ``shapes`` video, 20 s, music (another kind and seed; same
  soundtrack family as ref_a on purpose: a harder negative for audio);
* ``make_copy(name, **params)``: a transformed copy of ref_a (or of
  ``source=``), cached per session by (source, name, params); its ground truth is
  ``synth.read_truth(path)``;
* ``fingerprint_of(path)``: a fingerprint per file, computed once per session
  (a fresh copy each call, so a test can't spoil it for the next).

Clips are 320x180 and copies are encoded with x264 ``ultrafast``: a copy costs
about 1.3 s, a reference about 1.5 s (one core).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mediadna import synth
from mediadna.fingerprint import Fingerprint

SIZE = (320, 180)
REF_SECONDS = 20.0
#: Encoding preset of the copies (the transforms' own default is veryfast):
#: tests pay for decoding + encoding every copy, and the matcher must cope
#: with ultrafast's blockier output anyway.
COPY_PRESET = "ultrafast"


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def ref_a(media_dir: Path) -> Path:
    return synth.make_video(media_dir / "ref_a.mp4", kind="scenes", duration=REF_SECONDS, seed=1, size=SIZE, audio="music")


@pytest.fixture(scope="session")
def ref_b(media_dir: Path) -> Path:
    return synth.make_video(media_dir / "ref_b.mp4", kind="talk", duration=REF_SECONDS, seed=2, size=SIZE, audio="speech")


@pytest.fixture(scope="session")
def unrelated(media_dir: Path) -> Path:
    return synth.make_video(media_dir / "unrelated.mp4", kind="shapes", duration=REF_SECONDS, seed=3, size=SIZE, audio="music")


@pytest.fixture(scope="session")
def make_copy(media_dir: Path, ref_a: Path):
    """``make_copy(name, *, ext=".mp4", source=None, **params) -> Path``: ``synth.transform``, cached.

    ``source`` defaults to ref_a; ``ext`` picks the container (``.mp3``/``.m4a``
    for ``audio_only``).  The ``.truth.json`` sidecar sits next to the copy.
    """
    cache: dict[str, Path] = {}
    out = media_dir / "copies"
    out.mkdir(exist_ok=True)

    def make(name: str, *, ext: str = ".mp4", source: str | Path | None = None, **params) -> Path:
        src = Path(source) if source is not None else ref_a
        params.setdefault("preset", COPY_PRESET)
        key = json.dumps([str(src), name, ext, params], sort_keys=True, default=str)
        if key not in cache:
            digest = hashlib.sha1(key.encode()).hexdigest()[:10]
            cache[key] = synth.transform(src, out / f"{src.stem}-{name}-{digest}{ext}", name, **params)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def fingerprint_of():
    """``fingerprint_of(path) -> Fingerprint``, extracted once per file and session."""
    from mediadna.pipeline import load_input

    cache: dict[str, bytes] = {}

    def get(path: str | Path) -> Fingerprint:
        key = str(Path(path).resolve())
        if key not in cache:
            cache[key] = load_input(path).to_bytes()
        return Fingerprint.from_bytes(cache[key])

    return get


@pytest.fixture
def bad_inputs(tmp_path: Path) -> dict[str, Path]:
    """Inputs that must fail cleanly: name -> path (``missing`` does not exist)."""
    d = tmp_path / "bad"
    d.mkdir()
    empty = d / "empty.mp4"
    empty.write_bytes(b"")
    text = d / "notes.mp4"
    text.write_text("these are meeting notes, not a video\n" * 50)
    return {"missing": d / "missing.mp4", "empty": empty, "not_media": text}


@pytest.fixture(scope="session")
def silent_audio(media_dir: Path) -> Path:
    """A valid audio-only file holding nothing but silence (nothing to fingerprint)."""
    return synth.make_audio(media_dir / "silence.wav", kind="silence", duration=3.0, seed=0)


@pytest.fixture
def fake_aws(monkeypatch) -> None:
    """Never a real account: fixed fake credentials and region, no profile, no custom endpoint."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "MEDIADNA_DYNAMODB_ENDPOINT"):
        monkeypatch.delenv(key, raising=False)
