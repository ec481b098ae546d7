"""End-to-end: an upload goes S3 -> SQS -> Lambda -> Step Functions -> result JSON + callback, all in moto.

The ``cloud`` fixture builds the whole system inside one ``mock_aws``: the
buckets (the input bucket notifies the upload queue), the queues, the result
topic with an SQS subscriber, the DynamoDB tables, one Lambda function per
handler, and the state machine from ``infra/workflow/fingerprint.asl.json``
(the file the CDK stack deploys) with the functions' ARNs substituted.

moto runs the state machine itself (``execute_state_machine``); every Lambda
invoke it makes is routed to the real handler in ``functions/``, in-process
(moto's Docker-free Lambda backend has one ``invoke`` to patch).  The one
thing emulated by hand is the SQS -> Lambda event source mapping:
:meth:`Cloud.deliver_uploads` receives the upload queue's messages and hands
them to the trigger handler as a Lambda SQS event, as the mapping would.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aws_xray_sdk.core  # noqa: F401 - before sockets are blocked: its recorder opens a UDP socket on import
import pytest
import urllib3  # noqa: F401 - before sockets are blocked: it probes IPv6 with a socket on import
from pytest_socket import disable_socket, enable_socket


@pytest.fixture(autouse=True)
def _no_network():
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()


@dataclass
class Cloud:
    s3: object
    sqs: object
    sfn: object
    input_bucket: str
    output_bucket: str
    upload_queue: str
    callback_queue: str
    topic_subscriber_queue: str
    state_machine_arn: str
    invocations: list = field(default_factory=list)

    def upload(self, key: str, path: Path | bytes) -> None:
        body = path if isinstance(path, bytes) else Path(path).read_bytes()
        self.s3.put_object(Bucket=self.input_bucket, Key=key, Body=body)

    def deliver_uploads(self, handler_event_hook=None) -> dict:
        """Hand the upload queue's messages to the trigger handler (the event source mapping's job)."""
        from functions.local import deliver_uploads

        return deliver_uploads(self.sqs, self.upload_queue, event_hook=handler_event_hook)

    def wait(self, timeout: float = 240.0) -> list[dict]:
        """Wait until no execution runs; return all executions, described."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"]
            if all(r["status"] != "RUNNING" for r in runs):
                return [self.sfn.describe_execution(executionArn=r["executionArn"]) for r in runs]
            if time.monotonic() > deadline:
                raise AssertionError(f"executions still running after {timeout} s: {runs}")
            time.sleep(0.2)

    def results(self) -> dict[str, dict]:
        out = {}
        for obj in self.s3.list_objects_v2(Bucket=self.output_bucket).get("Contents", []):
            out[obj["Key"]] = json.loads(self.s3.get_object(Bucket=self.output_bucket, Key=obj["Key"])["Body"].read())
        return out

    def drain(self, queue_url: str) -> list[dict]:
        out = []
        while True:
            got = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
            if not got.get("Messages"):
                return out
            for m in got["Messages"]:
                out.append(m)
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


@pytest.fixture
def cloud(monkeypatch, fake_aws) -> Cloud:
    from moto import mock_aws

    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "MediaDNA")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}):
        import boto3

        from functions.local import create_resources, route_lambda_invokes, serialize_dynamodb

        session = boto3.Session()
        res = create_resources(session, uuid.uuid4().hex[:6], segment_seconds=8, overlap=1)
        for key, value in res.environment.items():
            monkeypatch.setenv(key, value)
        from functions.common import aws as aws_adapters
        from functions.common.settings import settings

        settings.cache_clear()
        aws_adapters.client.cache_clear()
        aws_adapters.library_store.cache_clear()
        invocations: list = []
        route_lambda_invokes(monkeypatch.setattr, lambda name, event, error: invocations.append(name))
        serialize_dynamodb(monkeypatch.setattr)
        yield Cloud(session.client("s3"), session.client("sqs"), session.client("stepfunctions"), res.input_bucket,
                    res.output_bucket, res.upload_queue, res.callback_queue, res.topic_subscriber_queue,
                    res.state_machine_arn, invocations)
        settings.cache_clear()
        aws_adapters.client.cache_clear()
        aws_adapters.library_store.cache_clear()
