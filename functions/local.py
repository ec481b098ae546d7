"""The cloud flow on one machine: moto's server plus the real handlers and workflow definition.

Used by ``mediadna dev`` and by the end-to-end tests (which drive moto
in-process).  Resources get the names of the CDK constructs
(``infra/config.py``); the state machine is ``infra/workflow/fingerprint.asl.json``
with the local functions' ARNs substituted; every Lambda invoke moto makes is
routed to the handler in ``functions/`` in this process; a consumer thread plays
the SQS -> Lambda event source mapping of the upload queue.
"""

from __future__ import annotations

import importlib
import io
import json
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace

from infra.config import (
    FUNCTIONS,
    IMPORT_BUCKET_PLACEHOLDER,
    IMPORT_FUNCTIONS,
    IMPORT_SUBSTITUTIONS,
    IMPORT_WORKFLOW_FILE,
    STATEFUL_STACK,
    WORKFLOW_FARGATE_PLACEHOLDERS,
    WORKFLOW_FILE,
    WORKFLOW_SUBSTITUTIONS,
)

REGION = "us-east-1"
ACCOUNT = "123456789012"


def lambda_context(name: str) -> SimpleNamespace:
    """What the Lambda runtime passes as ``context`` (the fields Powertools reads)."""
    return SimpleNamespace(
        function_name=name, function_version="$LATEST",
        memory_limit_in_mb={**FUNCTIONS, **IMPORT_FUNCTIONS}.get(name, ("", 1024))[1],
        invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
        aws_request_id=str(uuid.uuid4()), log_group_name=f"/aws/lambda/{name}", log_stream_name="local",
        get_remaining_time_in_millis=lambda: 300_000,
    )


def handler_of(name: str) -> Callable:
    module, _, attr = {**FUNCTIONS, **IMPORT_FUNCTIONS}[name][0].rpartition(".")
    return getattr(importlib.import_module(module), attr)


_DYNAMODB_LOCK = threading.RLock()


def serialize_dynamodb(patch: Callable[[object, str, object], None]) -> None:
    """Make moto apply DynamoDB requests one at a time, as the real service does per item.

    moto's DynamoDB backend keeps items in plain dicts: a Query iterating a
    partition while another thread writes to it raises ``dictionary changed
    size during iteration`` (a moto artefact, seen in the concurrency tests).
    DynamoDB applies every request atomically, so serialising them in the
    emulator is faithful.  ``patch`` as in :func:`route_lambda_invokes`.
    """
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action
    if getattr(original, "_serialized", False):
        return

    def call_action(self):
        with _DYNAMODB_LOCK:
            return original(self)

    call_action._serialized = True  # type: ignore[attr-defined]
    patch(DynamoHandler, "call_action", call_action)


def route_lambda_invokes(patch: Callable[[object, str, object], None],
                         on_invoke: Callable[[str, dict, str | None], None] | None = None) -> None:
    """Make moto's Lambda backends run the real handlers in-process.

    ``patch(obj, attribute, value)`` installs the replacement (pytest's
    ``monkeypatch.setattr`` in tests, ``setattr`` for ``mediadna dev``);
    ``on_invoke(function, event, error)`` hears of every invocation after it ran.
    """
    from moto.awslambda.models import LambdaBackend
    from moto.awslambda_simple.models import LambdaSimpleBackend

    def invoke(self, function_name, qualifier, body, headers, response_headers):
        name = function_name.rsplit(":", 1)[-1] if function_name.startswith("arn:") else function_name
        short = name.rsplit("-", 1)[-1]
        event = json.loads(body) if body else {}
        error = None
        try:
            payload = json.dumps(handler_of(short)(event, lambda_context(short)))
        except Exception as exc:  # what the Lambda runtime reports for an unhandled exception
            error = f"{type(exc).__name__}: {exc}"
            response_headers["x-amz-function-error"] = "Unhandled"
            payload = json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__,
                                  "stackTrace": traceback.format_exception(exc)[-3:]})
        if on_invoke:
            on_invoke(short, event, error)
        response_headers["Content-Length"] = str(len(payload))
        return payload.encode("utf-8")

    patch(LambdaBackend, "invoke", invoke)
    patch(LambdaSimpleBackend, "invoke", invoke)


def sqs_event_record(message: dict, queue_url: str) -> dict:
    """A received SQS message as the Lambda SQS event shapes it."""
    name = queue_url.rsplit("/", 1)[-1]
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000)),
                       "SenderId": "local", "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000))},
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
        "awsRegion": REGION,
    }


@dataclass
class LocalResources:
    """Names and handles of everything ``create_resources`` made."""

    input_bucket: str
    output_bucket: str
    work_bucket: str
    upload_queue: str
    callback_queue: str
    topic_arn: str
    topic_subscriber_queue: str
    state_machine_arn: str
    tables: dict[str, str]
    environment: dict[str, str] = field(default_factory=dict)
    import_state_machine_arn: str = ""


def resource_names(tag: str = "") -> dict[str, str]:
    """Names from the CDK construct ids (plus an optional tag, for parallel test stacks)."""
    suffix = f"-{tag}" if tag else ""
    base = STATEFUL_STACK.lower()
    return {
        "input": f"{base}-inputbucket{suffix}", "output": f"{base}-outputbucket{suffix}",
        "work": f"{base}-workbucket{suffix}", "uploads": f"mediadnaprocessing-uploadqueue{suffix}",
        "callbacks": f"mediadnaprocessing-callbackqueue{suffix}", "topic": f"mediadnaprocessing-resultstopic{suffix}",
        "subscriber": f"mediadnaprocessing-resultstopic-subscriber{suffix}", "tables": f"{base}{suffix}",
        "state_machine": f"mediadnaprocessing-workflow{suffix}", "functions": f"mediadna{suffix}",
        "import_state_machine": f"mediadnaprocessing-imports{suffix}",
    }


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:  # moto wants code; the real handler runs instead (route_lambda_invokes)
        z.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buf.getvalue()


def create_resources(session, tag: str = "", *, segment_seconds: float = 60.0, overlap: float = 2.0) -> LocalResources:
    """Buckets (input notifies the upload queue), queues, topic + subscriber, tables, functions, state machine."""
    from mediadna.store.dynamodb import DynamoDBConfig, DynamoDBStore

    n = resource_names(tag)
    s3, sqs, sns = session.client("s3"), session.client("sqs"), session.client("sns")
    sfn, lam, iam = session.client("stepfunctions"), session.client("lambda"), session.client("iam")
    for key in ("input", "output", "work"):
        s3.create_bucket(Bucket=n[key])
    queues = {key: sqs.create_queue(QueueName=n[key])["QueueUrl"] for key in ("uploads", "callbacks", "subscriber")}

    def arn(url):
        return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    s3.put_bucket_notification_configuration(
        Bucket=n["input"],
        NotificationConfiguration={"QueueConfigurations": [
            {"QueueArn": arn(queues["uploads"]), "Events": ["s3:ObjectCreated:*"]}]},
    )
    topic = sns.create_topic(Name=n["topic"])["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn(queues["subscriber"]),
                  Attributes={"RawMessageDelivery": "true"})
    config = DynamoDBConfig.from_prefix(n["tables"], {})
    store = DynamoDBStore(config)
    store.create_tables()
    tables = {what: getattr(config, f"{what}_table") for what in ("libraries", "files", "visual", "audio", "jobs")}
    role = iam.create_role(RoleName=f"{n['functions']}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    arns = {
        name: lam.create_function(FunctionName=f"{n['functions']}-{name}", Runtime="python3.12", Role=role,
                                  Handler="handler.handler", Code={"ZipFile": _zip()})["FunctionArn"]
        for name in {**FUNCTIONS, **IMPORT_FUNCTIONS}
    }
    definition = WORKFLOW_FILE.read_text()
    for placeholder, name in WORKFLOW_SUBSTITUTIONS.items():
        definition = definition.replace("${%s}" % placeholder, arns[name])
    for placeholder in WORKFLOW_FARGATE_PLACEHOLDERS:  # no Fargate here: inputs that need it fail clearly
        definition = definition.replace("${%s}" % placeholder, f"local-{placeholder}")
    machine = sfn.create_state_machine(name=n["state_machine"], definition=definition, roleArn=role)["stateMachineArn"]
    environment = {
        "STATE_MACHINE_ARN": machine, "WORK_BUCKET": n["work"], "OUTPUT_BUCKET": n["output"],
        "CALLBACK_QUEUE_URL": queues["callbacks"], "RESULT_TOPIC_ARN": topic, "MEDIADNA_STORE": "dynamodb:",
        "MEDIA_ACCESS": "download", "SEGMENT_SECONDS": str(segment_seconds), "SEGMENT_OVERLAP": str(overlap),
        **{f"MEDIADNA_TABLE_{k.upper()}": v for k, v in tables.items()},
    }
    imports = IMPORT_WORKFLOW_FILE.read_text()
    for placeholder, name in IMPORT_SUBSTITUTIONS.items():
        imports = imports.replace("${%s}" % placeholder, arns[name])
    imports = imports.replace("${%s}" % IMPORT_BUCKET_PLACEHOLDER, n["work"])
    import_machine = sfn.create_state_machine(name=n["import_state_machine"], definition=imports,
                                              roleArn=role)["stateMachineArn"]
    environment["IMPORT_STATE_MACHINE_ARN"] = import_machine
    environment.setdefault("INPUT_BUCKET", n["input"])
    return LocalResources(n["input"], n["output"], n["work"], queues["uploads"], queues["callbacks"], topic,
                          queues["subscriber"], machine, tables, environment, import_machine)


def deliver_uploads(sqs, queue_url: str, wait_seconds: int = 0, event_hook: Callable | None = None) -> dict:
    """One pass of the event source mapping: queue messages -> the trigger handler -> delete the handled ones."""
    messages = []
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds,
                                  AttributeNames=["All"], MessageAttributeNames=["All"])
        if not got.get("Messages"):
            break
        messages += got["Messages"]
        wait_seconds = 0
    if not messages:
        return {"batchItemFailures": []}
    event = {"Records": [sqs_event_record(m, queue_url) for m in messages]}
    if event_hook:
        event = event_hook(event)
    response = handler_of("Trigger")(event, lambda_context("Trigger"))
    failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
    for m in messages:
        if m["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return response


class UploadConsumer(threading.Thread):
    """Polls the upload queue and feeds the trigger handler until stopped."""

    def __init__(self, sqs, queue_url: str, on_error: Callable[[BaseException], None] | None = None):
        super().__init__(name="mediadna-upload-consumer", daemon=True)
        self.sqs, self.queue_url, self.on_error = sqs, queue_url, on_error
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                deliver_uploads(self.sqs, self.queue_url, wait_seconds=1)
            except Exception as exc:  # noqa: BLE001 - keep consuming; report it
                if self.on_error:
                    self.on_error(exc)
                self._halt.wait(1.0)

    def stop(self) -> None:
        self._halt.set()
