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


def start_dev(home, *extra):
    """``mediadna dev`` in a subprocess; returns (endpoint, session, clients, names, process) once it is up."""
    from functions.dev import free_port

    enable_socket()  # loopback only: the local endpoint
    socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MEDIADNA_"))}
    home.mkdir(parents=True, exist_ok=True)
    # files, not pipes: a chatty child must never block on a full pipe
    out, err = open(home / "dev.out", "w+"), open(home / "dev.err", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from mediadna.cli import main; sys.exit(main(sys.argv[1:]))",
         "--home", str(home), "dev", "--port", str(port), *extra],
        env=env, stdout=out, stderr=err, text=True,
    )
    proc.out_file, proc.err_file = out, err
    import boto3

    endpoint = f"http://127.0.0.1:{port}"
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    clients = {name: session.client(name, endpoint_url=endpoint) for name in ("s3", "sqs", "stepfunctions")}
    names = resource_names()
    deadline = time.monotonic() + 90
    while True:  # up once the state machine (created last) exists
        try:
            if clients["stepfunctions"].list_state_machines()["stateMachines"]:
                break
        except Exception:  # noqa: BLE001 - not up yet
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"mediadna dev did not come up: {_read(proc.err_file)[-2000:]}")
        time.sleep(0.5)
    return endpoint, session, clients, names, proc


def _read(f) -> str:
    f.flush()
    f.seek(0)
    return f.read()


def stop_dev(proc) -> tuple[int, str, str]:
    proc.send_signal(signal.SIGINT)  # Ctrl-C stops everything cleanly
    try:
        code = proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()  # never leave a server behind
        raise
    return code, _read(proc.out_file), _read(proc.err_file)


@pytest.fixture
def dev_stack(tmp_path):
    started = start_dev(tmp_path / "home")
    yield started
    proc = started[-1]
    if proc.poll() is None:
        proc.kill()


def library_store(endpoint, names, monkeypatch):
    from mediadna.store.dynamodb import DynamoDBConfig, DynamoDBStore

    for key, value in {"MEDIADNA_DYNAMODB_ENDPOINT": endpoint, "AWS_ACCESS_KEY_ID": "x",
                       "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    return DynamoDBStore(DynamoDBConfig.from_prefix(names["tables"]))


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
    store = library_store(endpoint, names, monkeypatch)
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
    s3.put_object(Bucket=names["input"], Key="input/ads/save/notes.txt", Body=b"not a video")
    bad = result_for(s3, names["output"], "input/ads/save/notes.txt")
    assert bad["status"] == "failed" and bad["error"]["code"] == "not_media"
    queue = clients["sqs"].get_queue_url(QueueName=names["callbacks"])["QueueUrl"]
    got = []
    deadline = time.monotonic() + 30
    while len(got) < 3 and time.monotonic() < deadline:
        got += clients["sqs"].receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    assert sorted(json.loads(m["Body"])["job_id"] for m in got) == sorted([first["job_id"], second["job_id"], bad["job_id"]])
    code, out, logs = stop_dev(proc)
    assert code == 0, logs[-3000:]
    assert "mediadna dev: AWS APIs at " + endpoint in out
    for step in ("Split", "Extract", "Merge", "Match", "Publish"):
        assert f"[{second['job_id']}] {step}: ok" in logs
    assert f"[{bad['job_id']}] Split: FAILED MediaError: not_media" in logs  # a failing job shows its error


def test_data_folder_keeps_libraries_and_results_across_restarts(tmp_path, ref_b, monkeypatch):
    data = tmp_path / "state"
    endpoint, session, clients, names, proc = start_dev(tmp_path / "home", "--data", str(data))
    try:
        library_store(endpoint, names, monkeypatch).create_library("kept")
        clients["s3"].put_object(Bucket=names["input"], Key="input/kept/save/b.mp4", Body=ref_b.read_bytes())
        first = result_for(clients["s3"], names["output"], "input/kept/save/b.mp4")
        assert first["stored"] is True
    finally:
        assert stop_dev(proc)[0] == 0
    endpoint, session, clients, names, proc = start_dev(tmp_path / "home", "--data", str(data))
    try:
        store = library_store(endpoint, names, monkeypatch)
        deadline = time.monotonic() + 60
        while "kept" not in [lib.name for lib in store.list_libraries()]:  # the saved state is loading
            assert time.monotonic() < deadline, "the library did not come back"
            time.sleep(0.5)
        assert [f.primary_key for f in store.list_files("kept").items] == ["b.mp4"]
        again = result_for(clients["s3"], names["output"], "input/kept/save/b.mp4", timeout=30)
        assert again["job_id"] == first["job_id"]
        # and the restored library still matches: the same upload is now a duplicate
        clients["s3"].put_object(Bucket=names["input"], Key="input/kept/nosave/b-again.mp4", Body=ref_b.read_bytes())
        third = result_for(clients["s3"], names["output"], "input/kept/nosave/b-again.mp4")
        assert third["duplicate"] is True and third["matches"][0]["primary_key"] == "b.mp4"
    finally:
        assert stop_dev(proc)[0] == 0
