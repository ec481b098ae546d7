"""AWS adapters of the job ports: S3 parts and media, results, callbacks, the workflow."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from functools import lru_cache

import boto3
from botocore.exceptions import ClientError

from mediadna.errors import EMPTY, NOT_FOUND, TOO_LARGE, MediaError
from mediadna.jobs import Job, result_key
from mediadna.remote import TrustedUrl
from mediadna.store import LibraryStore, open_store

from .settings import Settings

#: Callback messages carry the whole result document up to this size (SQS and
#: SNS take 256 KB); larger results are announced with their location only.
MAX_INLINE_RESULT = 200_000
#: Largest object the "download" media access copies to /tmp (Lambda's /tmp is at most 10 GB).
MAX_DOWNLOAD_BYTES = 9 * 1024**3


@lru_cache(maxsize=None)
def client(service: str):
    return boto3.client(service)


@lru_cache(maxsize=1)
def library_store(spec: str) -> LibraryStore:
    """One store per container (warm invocations reuse its connections and caches)."""
    return open_store(spec, tempfile.gettempdir())


def record_job(settings: Settings, job: dict, state: str, **fields) -> None:
    """Move the job's record in the jobs table (stores without one skip it)."""
    store = library_store(settings.MEDIADNA_STORE)
    if hasattr(store, "put_job"):
        store.put_job(job.get("job_id") or "unknown", state, library=job.get("library") or None,
                      input_key=job.get("key") or None, **fields)


class S3Parts:
    """:class:`mediadna.jobs.PartStore` on an S3 bucket."""

    def __init__(self, bucket: str):
        self.bucket = bucket

    def put_bytes(self, key: str, data: bytes) -> None:
        client("s3").put_object(Bucket=self.bucket, Key=key, Body=data)

    def get_bytes(self, key: str) -> bytes:
        return client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()


def _object(job: Job) -> dict:
    kw = {"Bucket": job.bucket, "Key": job.key}
    if job.version_id:
        kw["VersionId"] = job.version_id
    return kw


def _head(job: Job) -> dict:
    try:
        return client("s3").head_object(**_object(job))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise MediaError(NOT_FOUND, f"{job.key} no longer exists") from None
        raise


@contextlib.contextmanager
def media_of(job: Job, settings: Settings) -> Iterator[str]:
    """What the decoder reads: a presigned URL (range reads) or a downloaded copy in /tmp.

    A job submitted for an http(s) URL yields that URL as a plain string: the
    decoder's own URL guard applies to it (it is never trusted like a presigned URL).
    """
    if job.source_url:
        yield job.source_url
        return
    head = _head(job)
    size = int(head.get("ContentLength", 0))
    if size == 0:
        raise MediaError(EMPTY, f"{job.key} is empty")
    if settings.MEDIA_ACCESS == "url":
        # our own bucket's URL: FFmpeg reads it directly, past the URL guard
        yield TrustedUrl(client("s3").generate_presigned_url(
            "get_object", Params=_object(job), ExpiresIn=settings.PRESIGN_SECONDS
        ))
        return
    if size > MAX_DOWNLOAD_BYTES:
        raise MediaError(TOO_LARGE, f"{job.key} is {size / 1024**3:.1f} GB; downloads stop at 9 GB")
    with tempfile.TemporaryDirectory(prefix="mediadna-") as folder:
        # the object's own file name (made safe), so that errors name the upload
        name = re.sub(r"[^A-Za-z0-9._ -]", "_", job.key.rsplit("/", 1)[-1])[-120:].lstrip(".") or "input"
        path = os.path.join(folder, name)
        client("s3").download_file(job.bucket, job.key, path,
                                   ExtraArgs={"VersionId": job.version_id} if job.version_id else None)
        yield path


def sha256_of(job: Job) -> str:
    """SHA-256 of the object's bytes, streamed (memory stays flat).

    URL jobs have none ("": no exact-copy shortcut; fingerprint matching still runs).
    """
    if job.source_url:
        return ""
    body = client("s3").get_object(**_object(job))["Body"]
    h = hashlib.sha256()
    for chunk in iter(lambda: body.read(1 << 20), b""):
        h.update(chunk)
    return h.hexdigest()


class ResultSink:
    """Writes result documents to the output bucket and announces them (callback queue + topic)."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def write(self, result: dict) -> str:
        key = result_key(self.settings.RESULT_TEMPLATE, result)
        client("s3").put_object(
            Bucket=self.settings.OUTPUT_BUCKET, Key=key, ContentType="application/json",
            Body=json.dumps(result, indent=2, sort_keys=True).encode("utf-8"),
        )
        return key

    def read(self, key: str) -> dict:
        return json.loads(client("s3").get_object(Bucket=self.settings.OUTPUT_BUCKET, Key=key)["Body"].read())

    def announce(self, result: dict, key: str) -> dict:
        """The callback message: result location, summary, and the result itself when it fits."""
        message = {
            "job_id": result.get("job_id"),
            "status": result.get("status"),
            "library": result.get("library"),
            "duplicate": bool(result.get("duplicate")),
            "stored": bool(result.get("stored")),
            "error": result.get("error"),
            "result_location": f"s3://{self.settings.OUTPUT_BUCKET}/{key}",
        }
        inline = dict(message, result=result)
        body = json.dumps(inline if len(json.dumps(inline)) <= MAX_INLINE_RESULT else message)
        attributes = {
            "status": str(message["status"]),
            "duplicate": "true" if message["duplicate"] else "false",
            "library": str(message["library"] or "-"),
        }
        if self.settings.CALLBACK_QUEUE_URL:
            client("sqs").send_message(
                QueueUrl=self.settings.CALLBACK_QUEUE_URL, MessageBody=body,
                MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
            )
        if self.settings.RESULT_TOPIC_ARN:
            client("sns").publish(
                TopicArn=self.settings.RESULT_TOPIC_ARN, Message=body,
                MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
            )
        return message


def job_seconds(started: str | None) -> float | None:
    """Seconds since the execution started (``$$.Execution.StartTime``), if known."""
    from datetime import datetime, timezone

    if not started:
        return None
    try:
        start = datetime.fromisoformat(started.replace("Z", "+00:00"))
    except ValueError:
        return None
    if start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    return max(0.0, (datetime.now(timezone.utc) - start).total_seconds())


def object_options(bucket: str, key: str, version_id: str | None) -> dict:
    """Job options an uploader set as object metadata (``x-amz-meta-library``,
    ``-save-type``, ``-primary-key``); they win over the key convention."""
    kw = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
    try:
        meta = client("s3").head_object(**kw).get("Metadata", {})
    except ClientError:
        return {}  # gone already: the job's split step reports it
    return {k: v for k, v in meta.items() if k.lower() in ("library", "save-type", "primary-key")}


def start_job(settings: Settings, job: Job) -> bool:
    """Start the workflow for ``job``; False if that execution name already exists (a repeat)."""
    try:
        client("stepfunctions").start_execution(
            stateMachineArn=settings.STATE_MACHINE_ARN, name=job.job_id, input=json.dumps({"job": job.to_dict()})
        )
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
            return False
        raise


# -- ports of the API's service (mediadna.service) ---------------------------------------
class StepFunctionsLauncher:
    """:class:`mediadna.service.JobLauncher`: jobs for objects in the input bucket, run by the workflow."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def object_job(self, key: str, version_id: str | None, overrides: dict) -> Job:
        from mediadna.jobs import job_from_object

        if not self.settings.INPUT_BUCKET:
            raise MediaError("invalid_argument", "jobs for objects need INPUT_BUCKET")
        kw = {"Bucket": self.settings.INPUT_BUCKET, "Key": key, **({"VersionId": version_id} if version_id else {})}
        try:
            head = client("s3").head_object(**kw)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound", "400", "NoSuchVersion"):
                raise MediaError(NOT_FOUND, f"no object {key!r} in the input bucket") from None
            raise
        return job_from_object(self.settings.INPUT_BUCKET, key, head.get("VersionId") or "",
                               (head.get("ETag") or "").strip('"'), self.settings.defaults, overrides)

    def launch(self, job: Job) -> bool:
        return start_job(self.settings, job)


#: The event an asynchronous self-invoke of the API function carries (not an HTTP request).
DELETE_LIBRARY_TASK = "delete_library"


RESCAN_TASK = "rescan"


class LambdaTasks:
    """:class:`mediadna.service.LibraryDeleter` and :class:`~mediadna.service.Rescanner`: an
    asynchronous invoke of ``function`` (the API function itself) with a task event."""

    def __init__(self, function: str):
        self.function = function

    def _invoke(self, task: dict) -> None:
        client("lambda").invoke(FunctionName=self.function, InvocationType="Event", Payload=json.dumps(task).encode())

    def delete_later(self, library: str, job_id: str) -> None:
        self._invoke({"mediadna_task": DELETE_LIBRARY_TASK, "library": library, "job_id": job_id})

    def rescan_later(self, job_id: str, reference_library: str, query_library: str, since: str | None) -> None:
        self._invoke({"mediadna_task": RESCAN_TASK, "job_id": job_id, "library": reference_library,
                      "queries": query_library, "since": since})


class SinkPublisher:
    """:class:`mediadna.pipeline.ResultPublisher` on a :class:`ResultSink`: each result is written to the
    output bucket and announced on the callback queue and topic."""

    def __init__(self, sink: "ResultSink"):
        self.sink = sink

    def publish(self, result: dict) -> None:
        self.sink.announce(result, self.sink.write(result))


def object_head(job: Job, size: int = 64) -> bytes:
    """The object's first bytes (one ranged GET): enough to recognise an uploaded fingerprint."""
    if getattr(job, "source_url", ""):
        return b""
    try:
        return client("s3").get_object(**_object(job), Range=f"bytes=0-{size - 1}")["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound", "InvalidRange"):
            return b""  # gone or empty: the media path reports it
        raise


def object_bytes(job: Job) -> bytes:
    return client("s3").get_object(**_object(job))["Body"].read()

