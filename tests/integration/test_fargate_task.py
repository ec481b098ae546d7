"""The Fargate task's entry point (python -m functions.fargate) against S3 in moto."""

from __future__ import annotations

import json

import aws_xray_sdk.core  # noqa: F401 - before sockets are blocked: its recorder opens a UDP socket on import
import boto3

from mediadna.fingerprint import Fingerprint
from mediadna.jobs import job_from_object


def run_task(monkeypatch, bucket: str, key: str) -> tuple[int, object]:
    from functions import fargate
    from functions.common import aws as adapters
    from functions.common.settings import settings

    job = job_from_object(bucket, key, "", "e")
    monkeypatch.setenv("MEDIADNA_JOB", json.dumps(job.to_dict()))
    monkeypatch.setenv("MEDIADNA_SHA256", "f" * 64)
    monkeypatch.setenv("WORK_BUCKET", "work-bucket")
    monkeypatch.setenv("MEDIA_ACCESS", "download")
    settings.cache_clear()
    adapters.client.cache_clear()
    return fargate.main(), job


def test_whole_input_fingerprint_lands_where_merge_puts_it(aws, monkeypatch, ref_a):
    s3 = boto3.client("s3")
    for b in ("in-bucket", "work-bucket"):
        s3.create_bucket(Bucket=b)
    s3.put_object(Bucket="in-bucket", Key="input/ads/save/long.mp4", Body=ref_a.read_bytes())
    code, job = run_task(monkeypatch, "in-bucket", "input/ads/save/long.mp4")
    assert code == 0
    blob = s3.get_object(Bucket="work-bucket", Key=f"jobs/{job.job_id}/fingerprint.mdna")["Body"].read()
    fp = Fingerprint.from_bytes(blob)
    assert fp.sha256 == "f" * 64 and fp.source == job.key and 19 < fp.duration < 21


def test_bad_media_exits_non_zero(aws, monkeypatch, capsys):
    s3 = boto3.client("s3")
    for b in ("in-bucket", "work-bucket"):
        s3.create_bucket(Bucket=b)
    s3.put_object(Bucket="in-bucket", Key="input/ads/save/notes.txt", Body=b"not a video")
    code, _ = run_task(monkeypatch, "in-bucket", "input/ads/save/notes.txt")
    assert code == 1
    assert "not_media" in capsys.readouterr().err
