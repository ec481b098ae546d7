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

import importlib
import io
import json
import time
import traceback
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import aws_xray_sdk.core  # noqa: F401 - before sockets are blocked: its recorder opens a UDP socket on import
import pytest
import urllib3  # noqa: F401 - before sockets are blocked: it probes IPv6 with a socket on import
from pytest_socket import disable_socket, enable_socket

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "infra" / "workflow" / "fingerprint.asl.json"
REGION = "us-east-1"
#: function name -> handler module (the CDK stack uses the same names for its substitutions)
FUNCTIONS = {
    "Trigger": "functions.trigger.handler",
    "Split": "functions.split.handler",
    "Extract": "functions.extract.handler",
    "Merge": "functions.merge.handler",
    "Match": "functions.match.handler",
    "Publish": "functions.publish.handler",
    "Failure": "functions.failure.handler",
}


@pytest.fixture(autouse=True)
def _no_network():
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()


def lambda_context(name: str) -> SimpleNamespace:
    return SimpleNamespace(
        function_name=name, function_version="$LATEST", memory_limit_in_mb=1024,
        invoked_function_arn=f"arn:aws:lambda:{REGION}:123456789012:function:{name}",
        aws_request_id=str(uuid.uuid4()), log_group_name=f"/aws/lambda/{name}", log_stream_name="e2e",
        get_remaining_time_in_millis=lambda: 300_000,
    )


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
        from functions.trigger.handler import handler

        messages = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.upload_queue, MaxNumberOfMessages=10,
                                           AttributeNames=["All"], MessageAttributeNames=["All"])
            if not got.get("Messages"):
                break
            messages += got["Messages"]
        if not messages:
            return {"batchItemFailures": []}
        event = {"Records": [sqs_record(m, self.upload_queue) for m in messages]}
        if handler_event_hook:
            event = handler_event_hook(event)
        response = handler(event, lambda_context("Trigger"))
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        for m in messages:
            if m["MessageId"] not in failed:
                self.sqs.delete_message(QueueUrl=self.upload_queue, ReceiptHandle=m["ReceiptHandle"])
        return response

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


def sqs_record(message: dict, queue_url: str) -> dict:
    """A received SQS message as the Lambda SQS event shapes it."""
    name = queue_url.rsplit("/", 1)[-1]
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000",
            "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1700000000000",
        },
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:{name}",
        "awsRegion": REGION,
    }


def _route_invokes(monkeypatch, invocations: list) -> None:
    """moto's Lambda invoke -> the real handler, in-process (both of moto's Lambda backends)."""
    from moto.awslambda.models import LambdaBackend
    from moto.awslambda_simple.models import LambdaSimpleBackend

    def invoke(self, function_name, qualifier, body, headers, response_headers):
        name = function_name.rsplit(":", 1)[-1] if function_name.startswith("arn:") else function_name
        module = importlib.import_module(FUNCTIONS[name.split("-", 1)[-1]])
        event = json.loads(body) if body else {}
        invocations.append(name)
        try:
            result = module.handler(event, lambda_context(name))
            payload = json.dumps(result)
        except Exception as exc:  # what the Lambda runtime reports for an unhandled exception
            response_headers["x-amz-function-error"] = "Unhandled"
            payload = json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__,
                                  "stackTrace": traceback.format_exception(exc)[-3:]})
        response_headers["Content-Length"] = str(len(payload))
        return payload.encode("utf-8")

    monkeypatch.setattr(LambdaBackend, "invoke", invoke)
    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buf.getvalue()


@pytest.fixture
def cloud(monkeypatch) -> Cloud:
    from moto import mock_aws

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "POWERTOOLS_METRICS_NAMESPACE": "MediaDNA",
        "POWERTOOLS_TRACE_DISABLED": "1", "POWERTOOLS_DEV": "0",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}):
        import boto3

        s3, sqs, sns = boto3.client("s3"), boto3.client("sqs"), boto3.client("sns")
        sfn, lam, iam = boto3.client("stepfunctions"), boto3.client("lambda"), boto3.client("iam")
        tag = uuid.uuid4().hex[:6]
        buckets = {name: f"mediadna-{name}-{tag}" for name in ("input", "output", "work")}
        for bucket in buckets.values():
            s3.create_bucket(Bucket=bucket)
        queues = {}
        for name in ("uploads", "callbacks", "topic-subscriber"):
            queues[name] = sqs.create_queue(QueueName=f"mediadna-{name}-{tag}")["QueueUrl"]
        upload_arn = sqs.get_queue_attributes(QueueUrl=queues["uploads"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        s3.put_bucket_notification_configuration(
            Bucket=buckets["input"],
            NotificationConfiguration={"QueueConfigurations": [{"QueueArn": upload_arn, "Events": ["s3:ObjectCreated:*"]}]},
        )
        topic = sns.create_topic(Name=f"mediadna-results-{tag}")["TopicArn"]
        sub_arn = sqs.get_queue_attributes(QueueUrl=queues["topic-subscriber"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=sub_arn, Attributes={"RawMessageDelivery": "true"})

        from mediadna.store.dynamodb import DynamoDBConfig, DynamoDBStore

        tables = DynamoDBConfig.from_prefix(f"mediadna-{tag}")
        DynamoDBStore(tables).create_tables()
        for what in ("libraries", "files", "visual", "audio", "jobs"):
            monkeypatch.setenv(f"MEDIADNA_TABLE_{what.upper()}", getattr(tables, f"{what}_table"))

        role = iam.create_role(RoleName=f"fn-{tag}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        arns = {}
        for name in FUNCTIONS:
            arns[name] = lam.create_function(
                FunctionName=f"{tag}-{name}", Runtime="python3.12", Role=role, Handler="handler.handler",
                Code={"ZipFile": _zip()},
            )["FunctionArn"]
        definition = WORKFLOW.read_text()
        for name, arn in arns.items():
            definition = definition.replace("${%sFunctionArn}" % name, arn)
        assert "${" not in definition
        machine = sfn.create_state_machine(name=f"mediadna-{tag}", definition=definition, roleArn=role)["stateMachineArn"]

        env = {
            "STATE_MACHINE_ARN": machine, "WORK_BUCKET": buckets["work"], "OUTPUT_BUCKET": buckets["output"],
            "CALLBACK_QUEUE_URL": queues["callbacks"], "RESULT_TOPIC_ARN": topic, "MEDIADNA_STORE": "dynamodb:",
            "MEDIA_ACCESS": "download", "SEGMENT_SECONDS": "8", "SEGMENT_OVERLAP": "1",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        from functions.common import aws as aws_adapters
        from functions.common.settings import settings

        settings.cache_clear()
        aws_adapters.client.cache_clear()
        aws_adapters.library_store.cache_clear()
        invocations: list = []
        _route_invokes(monkeypatch, invocations)
        yield Cloud(s3, sqs, sfn, buckets["input"], buckets["output"], queues["uploads"], queues["callbacks"],
                    queues["topic-subscriber"], machine, invocations)
        settings.cache_clear()
        aws_adapters.client.cache_clear()
        aws_adapters.library_store.cache_clear()
