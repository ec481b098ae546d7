"""The HTTP API: API Gateway (REST, IAM authorisation) -> this one Lambda -> :class:`mediadna.service.Service`.

Every route parses and validates its request with pydantic (Powertools'
``APIGatewayRestResolver(enable_validation=True)``), calls one service
function and answers a validated response model.  Errors answer
``{"error": {"code", "message", "field"?}}``: 400 invalid input (with the
field), 403 no IAM identity, 404 not found, 409 exists, 422 unusable media,
503 library busy.  ``docs/openapi.json`` is generated from these routes
(``python -m functions.api.openapi``); ``docs/api.md`` describes them.

The same function also runs the asynchronous half of a library deletion and
of a re-scan: events ``{"mediadna_task": "delete_library" | "rescan", ...}``
it sent itself.
"""

from __future__ import annotations

import json
import os
from http import HTTPStatus
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from functions.common.observability import logger, metrics, tracer
from mediadna.errors import INVALID_ARGUMENT, MediaDnaError
from mediadna.service import Service, http_status
from mediadna.store.base import JOB_KINDS, JOB_STATES, MAX_KEY_LENGTH, MAX_PAGE_SIZE

API_TITLE = "mediadna API"
API_VERSION = "1.0.0"
LIBRARY_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
JOB_ID = r"^[A-Za-z0-9_-]{1,80}$"
SAVE_TYPE = Literal["nosave", "save", "forcesave", "onlysave"]

# a response that fails its model is our bug: 500, never a 400 blaming the caller
app = APIGatewayRestResolver(enable_validation=True, response_validation_error_http_code=HTTPStatus.INTERNAL_SERVER_ERROR)


# -- models ------------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


class LibraryIn(_Strict):
    name: str = Field(pattern=LIBRARY_NAME, description="1-64 letters, digits, '_', '.', '-'")
    threshold: float = Field(0.5, ge=0, le=1, description="similarity at or above which a match is a duplicate")
    min_segment_seconds: float = Field(3.0, ge=0, description="shortest copied segment that makes a duplicate")


class LibraryOut(BaseModel):
    name: str
    threshold: float
    min_segment_seconds: float
    created_at: str
    file_count: int


class LibraryList(BaseModel):
    items: list[LibraryOut]


class FileOut(BaseModel):
    primary_key: str
    duration: float
    sha256: str
    media_type: str
    has_video: bool
    has_audio: bool
    fingerprint_version: int
    created_at: str
    metadata: dict[str, Any]


class FilePageOut(BaseModel):
    items: list[FileOut]
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next page; null: last page")


class JobIn(_Strict):
    library: str = Field(pattern=LIBRARY_NAME)
    key: str | None = Field(None, min_length=1, max_length=1024, description="an object in the input bucket")
    version_id: str | None = Field(None, min_length=1, max_length=1024, description="that object's version")
    source_url: str | None = Field(None, pattern=r"^https://", max_length=2048, description="or an https URL")
    save_type: SAVE_TYPE = "save"
    primary_key: str | None = Field(None, min_length=1, max_length=MAX_KEY_LENGTH)
    client_token: str = Field("", max_length=128, description="a new token submits the same input and options again")


class JobOut(BaseModel):
    job_id: str
    kind: Literal[JOB_KINDS]  # type: ignore[valid-type]
    state: Literal[JOB_STATES]  # type: ignore[valid-type]
    library: str | None
    input_key: str | None
    created_at: str
    updated_at: str
    result_location: str | None
    error_code: str | None


class JobPageOut(BaseModel):
    items: list[JobOut]
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next page; null: last page")


class ImportIn(_Strict):
    prefix: str | None = Field(None, pattern=r"^s3://[^/]+/", max_length=2048,
                               description="import every object under s3://bucket/prefix/")
    manifest: str | None = Field(None, pattern=r"^s3://[^/]+/.+", max_length=2048,
                                 description="or the keys listed in s3://bucket/list.jsonl|csv|json")
    save_type: Literal["onlysave", "forcesave", "save"] = "onlysave"
    import_id: str | None = Field(None, pattern=JOB_ID, description="default: a new id; an id is used once")
    max_concurrency: int | None = Field(None, ge=1, le=10_000, description="at most the deployment's cap")


class ImportFailure(BaseModel):
    item: str
    code: str | None
    message: str | None


class ImportOut(BaseModel):
    import_id: str
    library: str | None
    source: str | None
    save_type: str | None
    state: Literal["planned", "running", "finished", "failed"]
    total: int | None
    done: int
    skipped: int
    failed: int
    processed: int | None = Field(None, description="done + skipped + failed")
    created_at: str
    updated_at: str
    error: str | None
    failures: list[ImportFailure] = Field(default_factory=list)
    failures_cursor: str | None = Field(None, description="pass as ?cursor= for more failures; null: no more")


class RescanIn(_Strict):
    queries: str = Field(pattern=LIBRARY_NAME, description="the library of kept uploads to check again")
    since: str | None = Field(None, max_length=64, description="ISO-8601: only references added since")
    client_token: str = Field("", max_length=128, description="a new token starts the same re-scan again")


class CompareIn(_Strict):
    source_url: str = Field(pattern=r"^https?://", max_length=2048)
    target_url: str = Field(pattern=r"^https?://", max_length=2048)


class Segment(BaseModel):
    source_start: float
    source_end: float
    target_start: float
    target_end: float
    score: float
    modality: Literal["video", "audio", "audiovisual"]
    speed: float


class CompareOut(BaseModel):
    """The compare envelope (``mediadna compare --json``; src/mediadna/schemas/compare.schema.json)."""

    match: bool
    confidence: Literal["high", "medium", "low"]
    similarity_score: float
    processing_time_ms: float
    media_type: Literal["video", "audio", "image"] | None
    matched_segments: list[Segment]
    status: Literal["succeeded", "failed"]
    error: ErrorBody | None


def _ok(status: int, model: type[BaseModel], description: str = "OK") -> dict:
    return {status: {"description": description, "content": {"application/json": {"model": model}}}}


def _errors(*codes: int) -> dict:
    text = {400: "invalid request (the field is named)", 403: "no IAM identity", 404: "not found",
            409: "exists already", 422: "the media cannot be used", 503: "library busy: retry later"}
    return {code: {"description": text[code], "content": {"application/json": {"model": ErrorOut}}}
            for code in (*codes, 403)}


# -- the service -------------------------------------------------------------------------
_service: Service | None = None


def service() -> Service:
    """The service on this container's adapters (tests set their own with :func:`use_service`)."""
    global _service
    if _service is None:
        from functions.common.aws import LambdaTasks, ResultSink, SinkPublisher, StepFunctionsLauncher, library_store
        from functions.common.imports import S3ImportLauncher, import_settings
        from functions.common.settings import settings

        cfg = settings()
        imports = import_settings()
        function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        tasks = LambdaTasks(function) if function else None
        _service = Service(library_store(cfg.MEDIADNA_STORE), launcher=StepFunctionsLauncher(cfg),
                           deleter=tasks, rescanner=tasks, publisher=SinkPublisher(ResultSink(cfg)), defaults=cfg.defaults,
                           importer=S3ImportLauncher(imports) if imports.IMPORT_STATE_MACHINE_ARN else None,
                           import_options={"concurrency_cap": imports.IMPORT_MAX_CONCURRENCY,
                                           "allowed_buckets": imports.allowed_buckets})
    return _service


def use_service(svc: Service | None) -> None:
    global _service
    _service = svc


def _error(status: int, code: str, message: str, field: str | None = None) -> Response:
    body = {"code": code, "message": message, **({"field": field} if field else {})}
    return Response(status_code=status, content_type="application/json", body=json.dumps({"error": body}))


class FieldError(MediaDnaError):
    """An invalid request that names its field (checks the models cannot express)."""

    def __init__(self, field: str, message: str):
        super().__init__(INVALID_ARGUMENT, message)
        self.field = field


@app.exception_handler(MediaDnaError)
def _coded(exc: MediaDnaError) -> Response:
    return _error(http_status(exc), exc.code, exc.message, getattr(exc, "field", None))


@app.exception_handler(RequestValidationError)
def _invalid(exc: RequestValidationError) -> Response:
    first = (exc.errors() or [{}])[0]
    loc = [str(p) for p in first.get("loc", ())]
    field = ".".join(loc[1:] if loc and loc[0] in ("body", "query", "path") and len(loc) > 1 else loc) or None
    where = loc[0] if loc else "request"
    message = f"{where} {field}: {first.get('msg', 'invalid')}" if field else first.get("msg", "invalid request")
    return _error(400, INVALID_ARGUMENT, message, field)


@app.not_found
def _no_route(exc: NotFoundError) -> Response:
    return _error(404, "not_found", f"no route {app.current_event.http_method} {app.current_event.path}")


# -- libraries ---------------------------------------------------------------------------
@app.post("/libraries", status_code=201, tags=["libraries"], summary="Create a library with its duplicate policy",
          responses={**_ok(201, LibraryOut, "created"), **_errors(400, 409)})
def create_library(body: LibraryIn) -> LibraryOut:
    lib = service().create_library(body.name, body.threshold, body.min_segment_seconds)
    return LibraryOut(**lib.to_dict())


@app.get("/libraries", tags=["libraries"], summary="List libraries", responses={**_ok(200, LibraryList), **_errors()})
def list_libraries() -> LibraryList:
    return LibraryList(items=[LibraryOut(**lib.to_dict()) for lib in service().list_libraries()])


@app.get("/libraries/<name>", tags=["libraries"], summary="Get a library", responses={**_ok(200, LibraryOut), **_errors(400, 404)})
def get_library(name: Annotated[str, Path(pattern=LIBRARY_NAME)]) -> LibraryOut:
    return LibraryOut(**service().get_library(name).to_dict())


@app.delete("/libraries/<name>", status_code=204, tags=["libraries"],
            summary="Delete a library: 204 when it was empty, else 202 with the deletion job",
            responses={204: {"description": "deleted (the library was empty)"},
                       202: {"description": "deletion job started",
                             "content": {"application/json": {"model": JobOut}}},
                       **_errors(400, 404, 503)})
def delete_library(name: Annotated[str, Path(pattern=LIBRARY_NAME)]) -> Response[JobOut | None]:
    deletion = service().delete_library(name)
    if deletion.job is None:
        return Response(status_code=204, body=None)
    return Response(status_code=202, content_type="application/json", body=JobOut(**deletion.job), headers={"Location": f"/jobs/{deletion.job['job_id']}"})


# -- files -------------------------------------------------------------------------------
@app.get("/libraries/<name>/files", tags=["files"], summary="List a library's files in key order, paged",
         responses={**_ok(200, FilePageOut), **_errors(400, 404)})
def list_files(name: Annotated[str, Path(pattern=LIBRARY_NAME)],
               limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 100,
               cursor: Annotated[str | None, Query(max_length=4096)] = None) -> FilePageOut:
    page = service().list_files(name, limit=limit, cursor=cursor)
    return FilePageOut(items=[FileOut(**r.to_dict()) for r in page.items], next_cursor=page.next_cursor)


@app.get("/libraries/<name>/file", tags=["files"], summary="Get a file by primary key (?key=)",
         responses={**_ok(200, FileOut), **_errors(400, 404)})
def get_file(name: Annotated[str, Path(pattern=LIBRARY_NAME)],
             key: Annotated[str, Query(min_length=1, max_length=MAX_KEY_LENGTH)]) -> FileOut:
    return FileOut(**service().get_file(name, key).to_dict())


@app.delete("/libraries/<name>/file", status_code=204, tags=["files"], summary="Delete a file by primary key (?key=)",
            responses={204: {"description": "deleted"}, **_errors(400, 404, 503)})
def delete_file(name: Annotated[str, Path(pattern=LIBRARY_NAME)],
                key: Annotated[str, Query(min_length=1, max_length=MAX_KEY_LENGTH)]) -> Response[None]:
    service().delete_file(name, key)
    return Response(status_code=204, body=None)


# -- jobs --------------------------------------------------------------------------------
@app.post("/jobs", status_code=202, tags=["jobs"],
          summary="Submit a fingerprint job for an object in the input bucket or an https URL (idempotent)",
          responses={202: {"description": "job submitted", "content": {"application/json": {"model": JobOut}}},
                     200: {"description": "the same job was submitted before",
                           "content": {"application/json": {"model": JobOut}}},
                     **_errors(400, 404)})
def submit_job(body: JobIn) -> Response[JobOut]:
    if (body.key is None) == (body.source_url is None):
        raise FieldError("key", "give exactly one of key and source_url")
    submitted = service().submit_job(body.library, key=body.key, version_id=body.version_id,
                                     source_url=body.source_url, save_type=body.save_type,
                                     primary_key=body.primary_key, client_token=body.client_token)
    metrics.add_metric(name="ApiJobsSubmitted" if submitted.created else "ApiJobsRepeated", unit=MetricUnit.Count,
                       value=1)
    return Response(status_code=202 if submitted.created else 200, content_type="application/json",
                    body=JobOut(**submitted.job),
                    headers={"Location": f"/jobs/{submitted.job['job_id']}"})


@app.get("/jobs", tags=["jobs"], summary="List jobs, newest first, by library, state and creation time, paged",
         responses={**_ok(200, JobPageOut), **_errors(400)})
def list_jobs(library: Annotated[str | None, Query(pattern=LIBRARY_NAME)] = None,
              state: Annotated[Literal[JOB_STATES] | None, Query()] = None,  # type: ignore[valid-type]
              since: Annotated[str | None, Query(max_length=64, description="ISO-8601, inclusive")] = None,
              until: Annotated[str | None, Query(max_length=64, description="ISO-8601, exclusive")] = None,
              limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 100,
              cursor: Annotated[str | None, Query(max_length=4096)] = None) -> JobPageOut:
    page = service().list_jobs(library=library, state=state, since=since, until=until, limit=limit, cursor=cursor)
    return JobPageOut(items=[JobOut(**j) for j in page.items], next_cursor=page.next_cursor)


@app.get("/jobs/<job_id>", tags=["jobs"], summary="Get a job", responses={**_ok(200, JobOut), **_errors(400, 404)})
def get_job(job_id: Annotated[str, Path(pattern=JOB_ID)]) -> JobOut:
    return JobOut(**service().get_job(job_id))


# -- imports -----------------------------------------------------------------------------
@app.post("/libraries/<name>/imports", status_code=202, tags=["imports"],
          summary="Import an S3 prefix or manifest into a library (a distributed map; a re-run skips what is in)",
          responses={202: {"description": "import planned and started",
                           "content": {"application/json": {"model": ImportOut}}},
                     **_errors(400, 404)})
def start_import(name: Annotated[str, Path(pattern=LIBRARY_NAME)], body: ImportIn) -> Response[ImportOut]:
    if (body.prefix is None) == (body.manifest is None):
        raise FieldError("prefix", "give exactly one of prefix and manifest")
    record = service().start_import(name, prefix=body.prefix, manifest=body.manifest, save_type=body.save_type,
                                    import_id=body.import_id, max_concurrency=body.max_concurrency)
    metrics.add_metric(name="ApiImportsStarted", unit=MetricUnit.Count, value=1)
    return Response(status_code=202, content_type="application/json", body=ImportOut(**record),
                    headers={"Location": f"/libraries/{name}/imports/{record['import_id']}"})


@app.get("/libraries/<name>/imports/<import_id>", tags=["imports"],
         summary="An import's progress (total, done, skipped, failed) and its failed items with reasons, paged",
         responses={**_ok(200, ImportOut), **_errors(400, 404)})
def get_import(name: Annotated[str, Path(pattern=LIBRARY_NAME)], import_id: Annotated[str, Path(pattern=JOB_ID)],
               limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 100,
               cursor: Annotated[str | None, Query(max_length=4096)] = None) -> ImportOut:
    return ImportOut(**service().get_import(name, import_id, failures=limit, cursor=cursor))


# -- re-scan -----------------------------------------------------------------------------
@app.post("/libraries/<name>/rescans", status_code=202, tags=["jobs"],
          summary="Check kept uploads (a query library) against this library again; matches are published",
          responses={202: {"description": "re-scan job started", "content": {"application/json": {"model": JobOut}}},
                     200: {"description": "the same re-scan is running", "content": {"application/json": {"model": JobOut}}},
                     **_errors(400, 404)})
def start_rescan(name: Annotated[str, Path(pattern=LIBRARY_NAME)], body: RescanIn) -> Response[JobOut]:
    submitted = service().start_rescan(name, body.queries, since=body.since, client_token=body.client_token)
    return Response(status_code=202 if submitted.created else 200, content_type="application/json",
                    body=JobOut(**submitted.job), headers={"Location": f"/jobs/{submitted.job['job_id']}"})


# -- compare -----------------------------------------------------------------------------
def _compare(media_type: str, body: CompareIn) -> Response[CompareOut]:
    envelope = CompareOut(**service().compare(media_type, body.source_url, body.target_url))
    status = 200
    if envelope.status == "failed" and envelope.error is not None:
        status = http_status(MediaDnaError(envelope.error.code, envelope.error.message))
    return Response(status_code=status, content_type="application/json", body=envelope)


_COMPARE_DOC = dict(tags=["compare"], responses={
    200: {"description": "the compare envelope", "content": {"application/json": {"model": CompareOut}}},
    422: {"description": "an input cannot be used: the envelope with status failed",
          "content": {"application/json": {"model": CompareOut}}},
    **_errors(400)})


@app.post("/video/match", summary="Does the target video copy the source video?", **_COMPARE_DOC)
def video_match(body: CompareIn) -> Response[CompareOut]:
    return _compare("video", body)


@app.post("/audio/match", summary="Does the target audio copy the source audio?", **_COMPARE_DOC)
def audio_match(body: CompareIn) -> Response[CompareOut]:
    return _compare("audio", body)


@app.post("/image/match", summary="Is the target image a copy of the source image?", **_COMPARE_DOC)
def image_match(body: CompareIn) -> Response[CompareOut]:
    return _compare("image", body)


# -- the entry point ---------------------------------------------------------------------
DENIED = "this API needs requests signed with AWS IAM credentials (SigV4)"


def caller_of(event: dict) -> str | None:
    """The IAM identity API Gateway verified (``requestContext.identity.userArn``), if any."""
    identity = (event.get("requestContext") or {}).get("identity") or {}
    return identity.get("userArn") or None


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    task = event.get("mediadna_task")  # our own asynchronous invokes, never from API Gateway
    if task == "delete_library":
        job = service().run_library_deletion(str(event.get("library")), str(event.get("job_id")))
        logger.info("library deleted", library=event.get("library"), job_id=job["job_id"])
        return job
    if task == "rescan":
        job = service().run_rescan(str(event.get("job_id")), str(event.get("library")), str(event.get("queries")),
                                   event.get("since"))
        logger.info("re-scan done", library=event.get("library"), queries=event.get("queries"), job_id=job["job_id"])
        return job
    if caller_of(event) is None:
        # API Gateway's AWS_IAM authoriser refuses unsigned requests before they get here;
        # this refuses anything else that reaches the function without a verified identity
        logger.warning("request without an IAM identity refused", path=event.get("path"))
        return {"statusCode": 403, "headers": {"Content-Type": "application/json"}, "isBase64Encoded": False,
                "body": json.dumps({"error": {"code": "access_denied", "message": DENIED}})}
    logger.append_keys(caller=caller_of(event))
    return app.resolve(event, context)
