"""``mediadna dev`` driven over HTTP, as a user would: a subprocess serving the local cloud."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from pytest_socket import enable_socket, socket_allow_hosts

from functions.local import resource_names


@pytest.fixture
def dev_stack(tmp_path):
    from functions.dev import free_port

    enable_socket()  # loopback only: the local endpoint
    socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MEDIADNA_"))}
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from mediadna.cli import main; sys.exit(main(sys.argv[1:]))",
         "--home", str(tmp_path / "home"), "dev", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    import boto3

    endpoint = f"http://127.0.0.1:{port}"
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    clients = {name: session.client(name, endpoint_url=endpoint) for name in ("s3", "sqs")}
    names = resource_names()
    deadline = time.monotonic() + 90
    while True:  # up when the state machine exists (created last)
        try:
            if names["output"] in [b["Name"] for b in clients["s3"].list_buckets()["Buckets"]]:
                sfn = session.client("stepfunctions", endpoint_url=endpoint)
                if sfn.list_state_machines()["stateMachines"]:
                    break
        except Exception:  # noqa: BLE001 - not up yet
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"mediadna dev did not come up: {proc.stderr.read()[-2000:]}")
        time.sleep(0.5)
    yield endpoint, session, clients, names, proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def result_for(s3, bucket: str, key: str, timeout: float = 240.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            doc = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            if doc["input"]["key"] == key:
                return doc
        time.sleep(0.5)
    raise AssertionError(f"no result for {key} within {timeout} s")


def test_uploads_over_http_become_results_and_callbacks(dev_stack, ref_a, make_copy, monkeypatch):
    endpoint, session, clients, names, proc = dev_stack
    from mediadna.store.dynamodb import DynamoDBConfig, DynamoDBStore

    monkeypatch.setenv("MEDIADNA_DYNAMODB_ENDPOINT", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    store = DynamoDBStore(DynamoDBConfig.from_prefix(names["tables"]))
    store.create_library("ads")
    s3 = clients["s3"]
    s3.put_object(Bucket=names["input"], Key="input/ads/save/ref.mp4", Body=ref_a.read_bytes())
    first = result_for(s3, names["output"], "input/ads/save/ref.mp4")
    assert first["status"] == "succeeded" and first["stored"] is True
    copy = make_copy("reencode", crf=36)
    s3.put_object(Bucket=names["input"], Key="input/ads/nosave/copy.mp4", Body=copy.read_bytes())
    second = result_for(s3, names["output"], "input/ads/nosave/copy.mp4")
    assert second["duplicate"] is True and second["matches"][0]["primary_key"] == "ref.mp4"
    seg = second["matches"][0]["segments"][0]
    assert abs(seg["query_start"] - seg["reference_start"]) < 1.0
    queue = clients["sqs"].get_queue_url(QueueName=names["callbacks"])["QueueUrl"]
    got = []
    deadline = time.monotonic() + 30
    while len(got) < 2 and time.monotonic() < deadline:
        got += clients["sqs"].receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    assert sorted(json.loads(m["Body"])["job_id"] for m in got) == sorted([first["job_id"], second["job_id"]])
    proc.send_signal(signal.SIGINT)  # Ctrl-C stops everything cleanly
    code = proc.wait(timeout=20)
    logs = proc.stderr.read()
    assert code == 0, logs[-3000:]
    out = proc.stdout.read()
    assert "mediadna dev: AWS APIs at " + endpoint in out
    for step in ("Split", "Extract", "Merge", "Match", "Publish"):
        assert f"[{second['job_id']}] {step}: ok" in logs
