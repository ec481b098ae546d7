"""Upload queue consumer: S3 ObjectCreated notifications (via SQS) -> one workflow execution each.

Partial batch failures: a message that fails (e.g. throttling) is retried alone.
Test events and folder markers are ignored; an object whose key names no
valid job gets a ``failed`` result and callback at once (no execution).
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import unquote_plus

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.parser.models.s3 import (
    S3Bucket,
    S3Identity,
    S3Message,
    S3Model,
    S3OwnerIdentify,
    S3RecordModel,
    S3RequestParameters,
    S3ResponseElements,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Json

from functions.common.aws import ResultSink, object_options, start_job
from functions.common.observability import logger, metrics, tracer
from functions.common.settings import settings
from mediadna.errors import MediaDnaError
from mediadna.jobs import failure_result, job_from_object


class S3TestEvent(BaseModel):
    """What S3 sends once when a notification is configured."""

    Service: str
    Event: Literal["s3:TestEvent"]


# Powertools' S3 models, with the fields this handler never reads made optional
# (emulators such as moto leave them out).
class _Bucket(S3Bucket):
    ownerIdentity: S3OwnerIdentify | None = None


class _Message(S3Message):
    bucket: _Bucket


class _Record(S3RecordModel):
    userIdentity: S3Identity | None = None
    requestParameters: S3RequestParameters | None = None
    responseElements: S3ResponseElements | None = None
    s3: _Message


class S3Notification(S3Model):
    Records: list[_Record]


class UploadRecord(SqsRecordModel):
    body: Json[S3Notification | S3TestEvent]  # type: ignore[assignment]


processor = BatchProcessor(event_type=EventType.SQS, model=UploadRecord)


@tracer.capture_method
def record_handler(record: UploadRecord) -> None:
    if isinstance(record.body, S3TestEvent):
        return
    for r in record.body.Records:
        key = unquote_plus(r.s3.object.key)
        if not r.eventName.startswith("ObjectCreated") or key.endswith("/"):
            continue  # deletions, folder markers
        try:
            overrides = object_options(r.s3.bucket.name, key, r.s3.object.versionId)
            job = job_from_object(r.s3.bucket.name, key, r.s3.object.versionId or "", r.s3.object.eTag or "",
                                  settings().defaults, overrides)
        except MediaDnaError as exc:  # a bad key is the user's answer, not a retry
            bad = {"job_id": "rejected", "key": key, "library": "", "save_type": "nosave"}
            sink = ResultSink(settings())
            sink.announce(result := failure_result(bad, exc), sink.write(result))
            metrics.add_metric(name="JobsRejected", unit=MetricUnit.Count, value=1)
            continue
        started = start_job(settings(), job)
        logger.info("job started" if started else "job already exists", job_id=job.job_id, key=key)
        metrics.add_metric(name="JobsStarted" if started else "DuplicateNotifications", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
