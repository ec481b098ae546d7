"""The Split step for an uploaded fingerprint (mediadna.jobs.fingerprint_upload_step)."""

from __future__ import annotations

import dataclasses

import pytest

from mediadna.errors import BAD_FINGERPRINT, VERSION_MISMATCH, MediaError
from mediadna.fingerprint import Fingerprint, looks_like_fingerprint
from mediadna.jobs import Job, fingerprint_upload_step


class Parts(dict):
    def put_bytes(self, key, data):
        self[key] = data

    def get_bytes(self, key):
        return self[key]


JOB = Job("job-1", "bucket", "input/ads/nosave/client/clip.bin", "", "", "ads", "nosave", "client/clip.bin")


def test_binary_and_json_fingerprints_are_recognised_by_their_bytes(fingerprint_of, ref_b):
    fp = fingerprint_of(ref_b)
    for data in (fp.to_bytes(), fp.to_json().encode(), b"  \n" + fp.to_json().encode()):
        assert looks_like_fingerprint(data[:64])
        parts = Parts()
        out = fingerprint_upload_step(data, JOB, parts)
        assert out["runner"] == "fingerprint" and out["segments"] == [] and out["duration"] == fp.duration
        assert out["fingerprint"] == "jobs/job-1/fingerprint.mdna" and out["sha256"] == fp.sha256
        assert Fingerprint.from_bytes(parts[out["fingerprint"]]) == dataclasses.replace(fp, source=fp.source or "clip.bin")
    for other in (b"\x00\x00\x00\x18ftypisom", b"ID3\x03", b'{"name": "x"}', b"", b"MDN"):
        assert not looks_like_fingerprint(other)


def test_corrupt_or_foreign_fingerprints_fail_clearly(fingerprint_of, ref_b):
    fp = fingerprint_of(ref_b)
    data = fp.to_bytes()
    for bad in (data[:20], data[:-10], data + b"junk", fp.to_json()[:-30].encode()):
        with pytest.raises(MediaError) as err:
            fingerprint_upload_step(bad, JOB, Parts())
        assert err.value.code == BAD_FINGERPRINT
    newer = dataclasses.replace(fp, version=fp.version + 1)
    with pytest.raises(MediaError) as err:
        fingerprint_upload_step(newer.to_bytes(), JOB, Parts())
    assert err.value.code == VERSION_MISMATCH
