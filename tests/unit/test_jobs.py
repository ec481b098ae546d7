"""The cloud job steps as plain functions: options from keys, names, templates, split/extract/merge."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import av
import numpy as np
import pytest

from mediadna import synth
from mediadna.errors import INTERNAL, MediaDnaError
from mediadna.extract import media2fingerprint
from mediadna.fingerprint import Fingerprint
from mediadna.jobs import (
    DEFAULT_RESULT_TEMPLATE,
    Job,
    JobDefaults,
    error_from_state,
    execution_name,
    extract_step,
    failure_result,
    job_from_object,
    merge_step,
    result_key,
    split_step,
)
from mediadna.schemas import validate


class DictParts:
    def __init__(self):
        self.items: dict[str, bytes] = {}

    def put_bytes(self, key: str, data: bytes) -> None:
        self.items[key] = data

    def get_bytes(self, key: str) -> bytes:
        return self.items[key]


# -- options, names, templates -------------------------------------------------------
@pytest.mark.parametrize(
    "key, library, save_type, primary_key",
    [
        ("input/ads/forcesave/2026/spot.mp4", "ads", "forcesave", "2026/spot.mp4"),
        ("input/ads/spot.mp4", "ads", "save", "spot.mp4"),
        ("input/ads/clips/spot.mp4", "ads", "save", "clips/spot.mp4"),  # 'clips' is no save type
        ("elsewhere/spot.mp4", "default", "save", "elsewhere/spot.mp4"),
        ("spot.mp4", "default", "save", "spot.mp4"),
    ],
)
def test_job_options_come_from_the_key(key, library, save_type, primary_key):
    job = job_from_object("bucket", key, "", '"etag"')
    assert (job.library, job.save_type, job.primary_key) == (library, save_type, primary_key)


def test_overrides_and_defaults():
    job = job_from_object("b", "input/ads/save/x.mp4", "", "e", JobDefaults("lib2", "nosave"),
                          {"Save-Type": "onlysave", "primary_key": "campaign-7"})
    assert (job.library, job.save_type, job.primary_key) == ("ads", "onlysave", "campaign-7")
    assert job_from_object("b", "x.mp4", "", "e", JobDefaults("lib2", "nosave")).save_type == "nosave"


@pytest.mark.parametrize("key", ["input/bad name!/save/x.mp4", "input/ads/", "", "input/ads/save/a\x01b.mp4"])
def test_bad_keys_are_refused_with_a_clear_error(key):
    with pytest.raises(MediaDnaError) as e:
        job_from_object("b", key, "", "e")
    assert e.value.code == "invalid_argument"


def test_execution_name_is_deterministic_and_valid():
    a = execution_name("b", "input/ads/save/Spot #1 (final).mp4", "v1")
    assert a == execution_name("b", "input/ads/save/Spot #1 (final).mp4", "v1")  # a repeat maps to the same job
    assert a != execution_name("b", "input/ads/save/Spot #1 (final).mp4", "v2")  # a new version is a new job
    assert a != execution_name("c", "input/ads/save/Spot #1 (final).mp4", "v1")
    assert 1 <= len(a) <= 80 and all(c.isalnum() or c in "-_" for c in a)
    long = execution_name("b", "x" * 1000 + ".mp4", "")
    assert len(long) <= 80


def test_job_round_trips_through_the_state_payload():
    job = job_from_object("b", "input/ads/save/x.mp4", "v", "e")
    assert Job.from_dict(job.to_dict() | {"unknown": 1}) == job
    with pytest.raises(MediaDnaError):
        Job.from_dict({"job_id": "x"})


def test_result_key_template():
    result = {"input": {"key": "input/ads/save/My Spot.MOV"}, "library": "ads", "job_id": "j1"}
    when = datetime(2026, 3, 4, tzinfo=timezone.utc)
    assert result_key(DEFAULT_RESULT_TEMPLATE, result, when) == "results/ads/2026-03-04/My Spot-j1.json"
    assert result_key("{library}/{inputFormat}/{inputName}.json", result, when) == "ads/mov/My Spot.json"
    hostile = {"input": {"key": "../../etc/pa\x00ss/..\\x.mp4"}, "library": "..", "job_id": "a/b"}
    key = result_key(DEFAULT_RESULT_TEMPLATE, hostile, when)
    assert "/../" not in f"/{key}/" and "\x00" not in key and key.count("/") == DEFAULT_RESULT_TEMPLATE.count("/")
    with pytest.raises(MediaDnaError):
        result_key("{nope}", result, when)


def test_errors_caught_by_the_workflow_keep_their_code():
    cause = '{"errorMessage": "corrupt_media: clip.mp4 is truncated", "errorType": "MediaError"}'
    err = error_from_state({"Error": "MediaError", "Cause": cause})
    assert (err.code, err.message) == ("corrupt_media", "clip.mp4 is truncated")
    timeout = error_from_state({"Error": "States.Timeout", "Cause": "Task timed out after 900 seconds"})
    assert timeout.code == INTERNAL and "States.Timeout" in timeout.message
    assert error_from_state(None).code == INTERNAL
    job = job_from_object("b", "input/ads/save/x.mp4", "", "e")
    result = failure_result(job, err)
    validate(result, "result")
    assert result["status"] == "failed" and result["error"]["code"] == "corrupt_media"
    assert failure_result(job.to_dict(), err) == result | {"timings": result["timings"]}


# -- split / extract / merge -----------------------------------------------------------
def _loop(src: Path, dst: Path, times: int) -> Path:
    """``src`` played ``times`` times in a row (remuxed, no re-encode): a long input made cheaply."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams if s.type in ("video", "audio")}
        length = {i: None for i in streams}
        packets = [p for p in inp.demux() if p.stream.index in streams and p.pts is not None]
        for s in inp.streams:
            if s.index in streams:
                last = max(p.pts + (p.duration or 0) for p in packets if p.stream.index == s.index)
                length[s.index] = last
        for k in range(times):
            for p in packets:
                offset = k * length[p.stream.index]
                p2 = av.Packet(bytes(p))
                p2.pts, p2.dts = p.pts + offset, (p.dts if p.dts is not None else p.pts) + offset
                p2.duration, p2.time_base, p2.is_keyframe = p.duration, p.time_base, p.is_keyframe
                p2.stream = streams[p.stream.index]
                out.mux(p2)
    return dst


@pytest.fixture(scope="module")
def thirty_minutes(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("long")
    clip = synth.make_video(folder / "clip.mp4", kind="scenes", duration=60.0, seed=31, size=(128, 72), fps=5,
                            preset="ultrafast")
    return _loop(clip, folder / "thirty.mkv", 30)


def test_a_30_minute_video_split_in_segments_merges_to_the_whole(thirty_minutes):
    plan = split_step(thirty_minutes, segment_seconds=60.0, overlap=2.0)
    assert 1790 < plan["duration"] < 1810
    assert len(plan["segments"]) == 30
    assert all(a["end"] > b["start"] for a, b in zip(plan["segments"], plan["segments"][1:]))  # overlapping
    parts = DictParts()
    job = job_from_object("b", "input/lib/save/thirty.mkv", "", "e")
    keys = [extract_step(thirty_minutes, job.job_id, seg, parts)["part"] for seg in reversed(plan["segments"])]
    merged_key = merge_step(job, keys, parts, sha256="s", duration=plan["duration"])["fingerprint"]  # any order

    merged = Fingerprint.from_bytes(parts.get_bytes(merged_key))
    whole = media2fingerprint(thirty_minutes)
    # the same frames at the same times with the same hashes (windows start with a lead-in
    # and cut content-box chunks on the same time grid as the whole pass)
    assert np.array_equal(merged.visual.times, whole.visual.times)
    assert (merged.visual.hashes == whole.visual.hashes).mean() > 0.99
    assert (merged.visual.flags == whole.visual.flags).mean() > 0.99
    # the same audio peaks, but for a few at window edges
    a = set(zip(merged.audio.frames.tolist(), merged.audio.bins.tolist()))
    b = set(zip(whole.audio.frames.tolist(), whole.audio.bins.tolist()))
    assert len(a & b) / len(a | b) > 0.98


def test_inputs_of_unknown_duration_go_to_fargate(monkeypatch, ref_a):
    from mediadna import decode as D

    plan = split_step(ref_a)
    assert plan["runner"] == "lambda"
    real = D.probe

    def no_duration(source):
        info = real(source)
        info.duration = 0.0
        return info

    monkeypatch.setattr(D, "probe", no_duration)
    plan = split_step(ref_a)
    assert plan["runner"] == "fargate" and len(plan["segments"]) == 1


def test_whole_step_writes_the_fingerprint_where_merge_would(ref_a):
    from mediadna.jobs import whole_step

    parts = DictParts()
    job = job_from_object("b", "input/lib/save/a.mp4", "", "e")
    out = whole_step(ref_a, job, parts, sha256="abc")
    assert out["fingerprint"] == f"jobs/{job.job_id}/fingerprint.mdna"
    fp = Fingerprint.from_bytes(parts.get_bytes(out["fingerprint"]))
    assert fp.sha256 == "abc" and fp.source == job.key and len(fp.visual) > 50
