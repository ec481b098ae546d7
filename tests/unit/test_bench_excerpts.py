"""bench/audio_excerpts.py on real recordings (--recordings): which files are references, which are unrelated."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediadna import synth


@pytest.fixture(scope="module")
def excerpts(load_bench):
    return load_bench("audio_excerpts")


def test_recordings_corpus_alternates_references_and_unrelated_sources_and_skips_jingles(excerpts, tmp_path):
    rec = tmp_path / "rec"
    rec.mkdir()
    for i, kind in enumerate(("music", "speech", "music", "speech")):
        synth.make_audio(rec / f"song{i}.wav", kind=kind, duration=21.0, seed=300 + i)
    synth.make_audio(rec / "jingle.wav", kind="music", duration=5.0, seed=399)  # too short: skipped
    (rec / "notes.txt").write_text("not audio")
    man = excerpts.build_corpus(tmp_path / "out", refs=40, seed=11, recordings=rec)
    assert [Path(r["path"]).name for r in man["library"]] == ["song0.wav", "song2.wav"]
    assert all(r["queried"] for r in man["library"])
    pos = [q for q in man["queries"] if q["ref"] is not None]
    neg = [q for q in man["queries"] if q["ref"] is None]
    assert len(pos) == 2 * len(excerpts.LENGTHS) * excerpts.EXCERPTS_PER_LENGTH and len(neg) == 2 * len(excerpts.LENGTHS)
    for q in pos:
        truth = synth.read_truth(q["path"])
        assert Path(truth["reference"]).name == q["ref"]
        assert truth["reference_end"] - truth["reference_start"] == pytest.approx(q["length"], abs=0.05)
    assert {Path(synth.read_truth(q["path"])["reference"]).name for q in neg} == {"song1.wav", "song3.wav"}
    # the manifest is reused for the same folder, and rebuilt for generated audio
    assert excerpts.build_corpus(tmp_path / "out", refs=40, seed=11, recordings=rec) == man
