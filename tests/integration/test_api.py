"""The HTTP API handler in-process: API Gateway proxy events in, responses out, DynamoDB and
Step Functions in moto.  Every route: success, each validation failure, not found, auth denied, paging.

Most compare tests use an injected compare function to check the route: URL
validation (file:// refused), the envelope and its HTTP status.  Two run the
real compare over a loopback HTTP server: a letterboxed copy is found with its
time codes, and a redirect to the metadata address is refused (422
``url_refused``) without a connection to it.
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlencode

import boto3
import numpy as np
import pytest

from functions.api import handler as api
from functions.common.aws import StepFunctionsLauncher
from functions.common.settings import Settings
from functions.local import lambda_context
from mediadna.fingerprint import Fingerprint, VisualTrack
from mediadna.index import fingerprint2postings
from mediadna.service import Service
from mediadna.store import FileRecord

CALLER = "arn:aws:iam::123456789012:user/tester"


def event(method: str, path: str, body=None, query: dict | None = None, caller: str | None = CALLER) -> dict:
    identity = {"userArn": caller, "caller": "AIDAEXAMPLE", "accessKey": "AKIAEXAMPLE"} if caller else {
        "userArn": None, "caller": None, "accessKey": None}
    return {
        "resource": path, "path": path, "httpMethod": method,
        "headers": {"Content-Type": "application/json"}, "multiValueHeaders": {},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None, "stageVariables": None,
        "body": body if body is None or isinstance(body, str) else json.dumps(body), "isBase64Encoded": False,
        "requestContext": {"requestId": uuid.uuid4().hex, "stage": "v1", "httpMethod": method, "path": path,
                           "resourcePath": path, "identity": identity},
    }


class Api:
    def __init__(self, svc: Service):
        self.svc = svc

    def __call__(self, method, path, body=None, query=None, caller=CALLER) -> tuple[int, dict | None]:
        response = api.handler(event(method, path, body, query, caller), lambda_context("Api"))
        raw = response.get("body")
        return response["statusCode"], (json.loads(raw) if raw else None)


class FakeDeleter:
    def __init__(self):
        self.calls = []

    def delete_later(self, library, job_id):
        self.calls.append((library, job_id))


def fake_compare(source, target):
    media = "image" if source.endswith(".png") else "video"
    return {"match": True, "confidence": "high", "similarity_score": 0.93, "processing_time_ms": 12.0,
            "media_type": media, "status": "succeeded", "error": None,
            "matched_segments": [] if media == "image" else [
                {"source_start": 0.0, "source_end": 10.0, "target_start": 5.0, "target_end": 15.0, "score": 0.9,
                 "modality": "video", "speed": 1.0}]}


@pytest.fixture
def cloud(aws):
    """The input bucket and a state machine (moto records executions; nothing runs)."""
    s3 = boto3.client("s3")
    bucket = f"input-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    role = boto3.client("iam").create_role(RoleName=f"sfn-{bucket}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    arn = boto3.client("stepfunctions").create_state_machine(
        name=f"wf-{bucket}", roleArn=role,
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
    return Settings(INPUT_BUCKET=bucket, STATE_MACHINE_ARN=arn)


@pytest.fixture
def call(open_dynamodb, cloud):
    store = open_dynamodb()
    svc = Service(store, launcher=StepFunctionsLauncher(cloud), deleter=FakeDeleter(), comparer=fake_compare)
    api.use_service(svc)
    yield Api(svc)
    api.use_service(None)


def add_file(store, library: str, key: str, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    n = 8
    fp = Fingerprint(duration=10.0, sha256=f"{seed:064x}", media_type="video", params={"fps": 2, "hop": 512},
                     visual=VisualTrack(np.sort(rng.random(n) * 10), rng.integers(0, 2**64, n, dtype=np.uint64),
                                        rng.integers(0, 2**64, n, dtype=np.uint64), rng.integers(0, 2, n)))
    rec = FileRecord(key, 10.0, fp.sha256, "video", True, False, fp.version, metadata={"seed": seed})
    store.add_file(library, rec, fp, fingerprint2postings(fp))


def assert_invalid(status, body, field=None):
    assert status == 400, body
    assert body["error"]["code"] == "invalid_argument"
    if field is not None:
        assert body["error"]["field"] == field, body


# -- auth ----------------------------------------------------------------------------------
@pytest.mark.parametrize("method,path", [("GET", "/libraries"), ("POST", "/libraries"), ("GET", "/jobs"),
                                         ("DELETE", "/libraries/lib"), ("POST", "/video/match"),
                                         ("POST", "/libraries/lib/imports"), ("GET", "/libraries/lib/imports/i1"),
                                         ("POST", "/libraries/lib/rescans")])
def test_requests_without_an_iam_identity_are_denied(call, method, path):
    status, body = call(method, path, {"name": "lib"} if method == "POST" else None, caller=None)
    assert status == 403 and body["error"]["code"] == "access_denied"
    assert call.svc.list_libraries() == []  # nothing happened


def test_unknown_route_is_404(call):
    status, body = call("GET", "/nope")
    assert status == 404 and body["error"]["code"] == "not_found"


# -- libraries -----------------------------------------------------------------------------
def test_library_create_get_list(call):
    status, body = call("POST", "/libraries", {"name": "news", "threshold": 0.7, "min_segment_seconds": 5})
    assert status == 201 and body["name"] == "news" and body["threshold"] == 0.7 and body["file_count"] == 0
    status, body = call("POST", "/libraries", {"name": "defaults"})
    assert status == 201 and body["threshold"] == 0.5 and body["min_segment_seconds"] == 3.0
    status, body = call("GET", "/libraries/news")
    assert status == 200 and body["min_segment_seconds"] == 5.0
    status, body = call("GET", "/libraries")
    assert status == 200 and [lib["name"] for lib in body["items"]] == ["defaults", "news"]


@pytest.mark.parametrize("body,field", [
    ({}, "name"), ({"name": "bad name"}, "name"), ({"name": "-x"}, "name"), ({"name": "x" * 65}, "name"),
    ({"name": "lib", "threshold": 1.5}, "threshold"), ({"name": "lib", "threshold": -0.1}, "threshold"),
    ({"name": "lib", "threshold": "high"}, "threshold"), ({"name": "lib", "min_segment_seconds": -1}, "min_segment_seconds"),
    ({"name": "lib", "colour": "red"}, "colour"),
])
def test_library_create_validation(call, body, field):
    assert_invalid(*call("POST", "/libraries", body), field)
    assert call.svc.list_libraries() == []


def test_library_create_needs_a_json_body(call):
    status, body = call("POST", "/libraries", "{not json")
    assert status == 400 and body["error"]["code"] == "invalid_argument"


def test_library_create_twice_is_409(call):
    call("POST", "/libraries", {"name": "lib"})
    status, body = call("POST", "/libraries", {"name": "lib", "threshold": 0.9})
    assert status == 409 and body["error"]["code"] == "library_exists"
    assert call.svc.get_library("lib").threshold == 0.5


def test_library_get_and_delete_not_found_and_invalid(call):
    for method in ("GET", "DELETE"):
        status, body = call(method, "/libraries/ghost")
        assert status == 404 and body["error"]["code"] == "library_not_found"
        assert_invalid(*call(method, "/libraries/bad%20name"), "name")


def test_deleting_an_empty_library_is_immediate(call):
    call("POST", "/libraries", {"name": "lib"})
    status, body = call("DELETE", "/libraries/lib")
    assert status == 204 and body is None
    assert call("GET", "/libraries/lib")[0] == 404
    assert call.svc.deleter.calls == []


def test_deleting_a_library_with_files_is_an_async_job(call):
    call("POST", "/libraries", {"name": "lib"})
    add_file(call.svc.store, "lib", "a.mp4")
    status, job = call("DELETE", "/libraries/lib")
    assert status == 202 and job["kind"] == "delete_library" and job["state"] == "running"
    assert call.svc.deleter.calls == [("lib", job["job_id"])]
    assert call("DELETE", "/libraries/lib")[1]["job_id"] == job["job_id"]  # repeated: the same job
    assert len(call.svc.deleter.calls) == 1
    assert call("GET", f"/jobs/{job['job_id']}")[1]["state"] == "running"
    # the asynchronous invoke the deleter sent: the same function, a task event
    done = api.handler({"mediadna_task": "delete_library", "library": "lib", "job_id": job["job_id"]},
                       lambda_context("Api"))
    assert done["state"] == "succeeded"
    assert call("GET", "/libraries/lib")[0] == 404
    status, body = call("GET", f"/jobs/{job['job_id']}")
    assert status == 200 and body["state"] == "succeeded" and body["library"] == "lib"
    # a second delivery of the same task is harmless
    again = api.handler({"mediadna_task": "delete_library", "library": "lib", "job_id": job["job_id"]},
                        lambda_context("Api"))
    assert again["state"] == "succeeded"


# -- files -----------------------------------------------------------------------------------
@pytest.fixture
def files(call):
    call("POST", "/libraries", {"name": "lib"})
    keys = ["a.mp4", "b/c.mp4", "d e.mp4", "z.mp4", "ü.mp4"]
    for i, key in enumerate(keys):
        add_file(call.svc.store, "lib", key, seed=i)
    return sorted(keys)


def test_files_list_pages_with_cursors(call, files):
    seen, cursor, pages = [], None, 0
    while True:
        status, body = call("GET", "/libraries/lib/files", query={"limit": "2", **({"cursor": cursor} if cursor else {})})
        assert status == 200 and len(body["items"]) <= 2
        seen += [f["primary_key"] for f in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == files and pages == 3
    status, body = call("GET", "/libraries/lib/files")
    assert status == 200 and [f["primary_key"] for f in body["items"]] == files and body["next_cursor"] is None
    assert body["items"][0]["media_type"] == "video" and body["items"][0]["metadata"] == {"seed": 0}


@pytest.mark.parametrize("query,field", [({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"),
                                         ({"limit": "ten"}, "limit")])
def test_files_list_validation(call, files, query, field):
    assert_invalid(*call("GET", "/libraries/lib/files", query=query), field)


def test_files_list_bad_cursor_and_unknown_library(call, files):
    status, body = call("GET", "/libraries/lib/files", query={"cursor": "garbage"})
    assert status == 400 and body["error"]["code"] == "invalid_argument"
    status, body = call("GET", "/libraries/ghost/files")
    assert status == 404 and body["error"]["code"] == "library_not_found"
    assert_invalid(*call("GET", "/libraries/bad%20name/files"), "name")


def test_file_get_and_delete_by_primary_key(call, files):
    status, body = call("GET", "/libraries/lib/file", query={"key": "b/c.mp4"})
    assert status == 200 and body["primary_key"] == "b/c.mp4" and body["duration"] == 10.0
    status, body = call("DELETE", "/libraries/lib/file", query={"key": "b/c.mp4"})
    assert status == 204 and body is None
    status, body = call("GET", "/libraries/lib/file", query={"key": "b/c.mp4"})
    assert status == 404 and body["error"]["code"] == "file_not_found"
    status, body = call("DELETE", "/libraries/lib/file", query={"key": "b/c.mp4"})
    assert status == 404 and body["error"]["code"] == "file_not_found"
    assert call("GET", "/libraries/ghost/file", query={"key": "a.mp4"})[0] == 404


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize("query,field", [(None, "key"), ({"key": ""}, "key"), ({"key": "k" * 1025}, "key")])
def test_file_key_validation(call, files, method, query, field):
    assert_invalid(*call(method, "/libraries/lib/file", query=query), field)


def test_file_key_with_control_characters_is_refused(call, files):
    status, body = call("GET", "/libraries/lib/file", query={"key": "a\x01b"})
    assert status == 400 and body["error"]["code"] == "invalid_argument"


# -- jobs --------------------------------------------------------------------------------------
def executions(settings):
    sfn = boto3.client("stepfunctions")
    out = []
    for e in sfn.list_executions(stateMachineArn=settings.STATE_MACHINE_ARN)["executions"]:
        out.append(json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])["job"])
    return out


def test_submit_a_job_for_an_object_in_the_input_bucket(call, cloud):
    call("POST", "/libraries", {"name": "lib"})
    boto3.client("s3").put_object(Bucket=cloud.INPUT_BUCKET, Key="uploads/clip.mp4", Body=b"media bytes")
    body = {"library": "lib", "key": "uploads/clip.mp4", "save_type": "forcesave", "primary_key": "clip-1"}
    status, job = call("POST", "/jobs", body)
    assert status == 202 and job["state"] == "queued" and job["kind"] == "fingerprint" and job["library"] == "lib"
    (started,) = executions(cloud)
    assert started["job_id"] == job["job_id"] and started["bucket"] == cloud.INPUT_BUCKET
    assert started["key"] == "uploads/clip.mp4" and started["save_type"] == "forcesave"
    assert started["primary_key"] == "clip-1" and started["version_id"] and started["source_url"] == ""
    status, again = call("POST", "/jobs", body)  # a retry: the same job, nothing new started
    assert status == 200 and again["job_id"] == job["job_id"]
    assert len(executions(cloud)) == 1
    status, got = call("GET", f"/jobs/{job['job_id']}")
    assert status == 200 and got == again


def test_submit_a_job_for_an_https_url_is_idempotent_per_client_token(call, cloud):
    call("POST", "/libraries", {"name": "lib"})
    body = {"library": "lib", "source_url": "https://media.example.com/v/clip.mp4?sig=abc"}
    status, job = call("POST", "/jobs", body)
    assert status == 202 and job["input_key"] == "https://media.example.com/v/clip.mp4"
    (started,) = executions(cloud)
    assert started["source_url"] == body["source_url"] and started["bucket"] == ""
    assert started["primary_key"] == "https://media.example.com/v/clip.mp4" and started["save_type"] == "save"
    assert call("POST", "/jobs", body)[1]["job_id"] == job["job_id"]
    status, other = call("POST", "/jobs", {**body, "client_token": "second"})
    assert status == 202 and other["job_id"] != job["job_id"]
    assert len(executions(cloud)) == 2


@pytest.mark.parametrize("body,field", [
    ({"key": "a.mp4"}, "library"), ({"library": "bad name", "key": "a.mp4"}, "library"),
    ({"library": "lib"}, "key"), ({"library": "lib", "key": "a.mp4", "source_url": "https://x.org/a.mp4"}, "key"),
    ({"library": "lib", "source_url": "http://x.org/a.mp4"}, "source_url"),
    ({"library": "lib", "source_url": "file:///etc/passwd"}, "source_url"),
    ({"library": "lib", "key": ""}, "key"),
    ({"library": "lib", "key": "a.mp4", "save_type": "keep"}, "save_type"),
    ({"library": "lib", "key": "a.mp4", "primary_key": ""}, "primary_key"),
    ({"library": "lib", "key": "a.mp4", "priority": 1}, "priority"),
])
def test_submit_validation(call, cloud, body, field):
    call("POST", "/libraries", {"name": "lib"})
    assert_invalid(*call("POST", "/jobs", body), field)
    assert executions(cloud) == []


def test_submit_refuses_an_https_url_without_a_host(call, cloud):
    call("POST", "/libraries", {"name": "lib"})
    status, body = call("POST", "/jobs", {"library": "lib", "source_url": "https:///nohost.mp4"})
    assert status == 400 and body["error"]["code"] == "invalid_argument"


def test_submit_for_a_missing_object_or_library_is_404(call, cloud):
    status, body = call("POST", "/jobs", {"library": "ghost", "key": "a.mp4"})
    assert status == 404 and body["error"]["code"] == "library_not_found"
    call("POST", "/libraries", {"name": "lib"})
    status, body = call("POST", "/jobs", {"library": "lib", "key": "missing.mp4"})
    assert status == 404 and body["error"]["code"] == "input_not_found"
    assert executions(cloud) == [] and call.svc.list_jobs().items == []


def test_jobs_get_not_found_and_invalid(call):
    status, body = call("GET", "/jobs/nope")
    assert status == 404 and body["error"]["code"] == "job_not_found"
    assert_invalid(*call("GET", "/jobs/not%20an%20id"), "job_id")


def test_jobs_list_by_library_state_time_with_paging(call):
    store = call.svc.store
    for i in range(5):
        store.put_job(f"a{i}", "queued", library="a", created_at=f"2026-01-0{i + 1}T00:00:00Z")
        store.put_job(f"b{i}", "queued", library="b", created_at=f"2026-01-0{i + 1}T12:00:00Z")
    store.put_job("a3", "succeeded")
    ids = lambda body: [j["job_id"] for j in body["items"]]  # noqa: E731
    status, body = call("GET", "/jobs", query={"library": "a"})
    assert status == 200 and ids(body) == ["a4", "a3", "a2", "a1", "a0"]
    status, body = call("GET", "/jobs", query={"state": "succeeded"})
    assert ids(body) == ["a3"]
    status, body = call("GET", "/jobs", query={"since": "2026-01-02T00:00:00Z", "until": "2026-01-03T00:00:00Z"})
    assert ids(body) == ["b1", "a1"]
    seen, cursor = [], None
    while True:
        status, body = call("GET", "/jobs", query={"limit": "3", **({"cursor": cursor} if cursor else {})})
        assert status == 200 and len(body["items"]) <= 3
        seen += ids(body)
        if (cursor := body["next_cursor"]) is None:
            break
    assert seen == ["b4", "a4", "b3", "a3", "b2", "a2", "b1", "a1", "b0", "a0"]


@pytest.mark.parametrize("query,field", [
    ({"library": "bad name"}, "library"), ({"state": "done"}, "state"), ({"limit": "0"}, "limit"),
    ({"limit": "5000"}, "limit"), ({"limit": "x"}, "limit"),
])
def test_jobs_list_validation(call, query, field):
    assert_invalid(*call("GET", "/jobs", query=query), field)


@pytest.mark.parametrize("query", [{"since": "yesterday"}, {"until": "2026-13-01"}, {"cursor": "nope"}])
def test_jobs_list_bad_times_and_cursors(call, query):
    status, body = call("GET", "/jobs", query=query)
    assert status == 400 and body["error"]["code"] == "invalid_argument"


# -- compare -------------------------------------------------------------------------------------
def test_video_match_answers_the_compare_envelope(call):
    from mediadna.schemas import validate

    status, body = call("POST", "/video/match", {"source_url": "https://x.org/a.mp4", "target_url": "https://x.org/b.mp4"})
    assert status == 200 and body["match"] is True and body["media_type"] == "video"
    validate(body, "compare")


def test_image_match(call):
    status, body = call("POST", "/image/match", {"source_url": "https://x.org/a.png", "target_url": "https://x.org/b.png"})
    assert status == 200 and body["media_type"] == "image"


def test_match_of_the_wrong_media_type_is_400_with_the_envelope(call):
    status, body = call("POST", "/audio/match", {"source_url": "https://x.org/a.mp4", "target_url": "https://x.org/b.mp4"})
    assert status == 400 and body["status"] == "failed" and body["error"]["code"] == "invalid_argument"
    assert "/video/match" in body["error"]["message"]


def test_match_input_errors_are_422_with_the_envelope(call):
    call.svc.comparer = lambda s, t: {
        "match": False, "confidence": "low", "similarity_score": 0.0, "processing_time_ms": 3.0, "media_type": None,
        "matched_segments": [], "status": "failed", "error": {"code": "not_media", "message": "not a media file"}}
    status, body = call("POST", "/video/match", {"source_url": "https://x.org/a.txt", "target_url": "https://x.org/b.mp4"})
    assert status == 422 and body["error"]["code"] == "not_media"


@pytest.mark.parametrize("route", ["/video/match", "/audio/match", "/image/match"])
@pytest.mark.parametrize("body,field", [
    ({"target_url": "https://x.org/b.mp4"}, "source_url"), ({"source_url": "https://x.org/a.mp4"}, "target_url"),
    ({"source_url": "file:///etc/passwd", "target_url": "https://x.org/b.mp4"}, "source_url"),
    ({"source_url": "https://x.org/a.mp4", "target_url": "/tmp/b.mp4"}, "target_url"),
    ({"source_url": "https://x.org/a.mp4", "target_url": "https://x.org/b.mp4", "extra": 1}, "extra"),
])
def test_match_validation(call, route, body, field):
    called = []
    call.svc.comparer = lambda s, t: called.append((s, t))
    assert_invalid(*call("POST", route, body), field)
    assert called == []


def test_openapi_document_is_current():
    from functions.api.openapi import main

    assert main(["--check"]) == 0, "docs/openapi.json is stale: run python -m functions.api.openapi"


# -- imports -----------------------------------------------------------------------------
@pytest.fixture
def importing(call, cloud):
    """The API with the S3 import launcher: a work bucket for plans and an import state machine (moto records
    executions; the import workflow itself runs in tests/e2e/test_import.py)."""
    from functions.common.imports import ImportSettings, S3ImportLauncher

    s3 = boto3.client("s3")
    work = f"work-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=work)
    role = boto3.client("iam").create_role(RoleName=f"imp-{work}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    arn = boto3.client("stepfunctions").create_state_machine(
        name=f"imp-{work}", roleArn=role,
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
    cfg = ImportSettings(IMPORT_STATE_MACHINE_ARN=arn, WORK_BUCKET=work, INPUT_BUCKET=cloud.INPUT_BUCKET,
                         IMPORT_MAX_CONCURRENCY=8)
    call.svc.importer = S3ImportLauncher(cfg)
    call.svc.import_options = {"concurrency_cap": cfg.IMPORT_MAX_CONCURRENCY, "allowed_buckets": cfg.allowed_buckets}
    call("POST", "/libraries", {"name": "lib"})
    for i in range(3):
        s3.put_object(Bucket=cloud.INPUT_BUCKET, Key=f"archive/clip{i}.mp4", Body=b"media bytes")
    s3.put_object(Bucket=cloud.INPUT_BUCKET, Key="archive/", Body=b"")  # a folder marker is not an item
    s3.put_object(Bucket=cloud.INPUT_BUCKET, Key="lists/two.jsonl",
                  Body=b'{"key": "archive/clip0.mp4", "primary_key": "first"}\n{"key": "archive/clip1.mp4"}\n')
    return cfg


def import_executions(cfg):
    sfn = boto3.client("stepfunctions")
    return {e["name"]: json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])
            for e in sfn.list_executions(stateMachineArn=cfg.IMPORT_STATE_MACHINE_ARN)["executions"]}


def test_import_a_prefix_starts_the_workflow_with_an_exact_plan(call, importing):
    prefix = f"s3://{importing.INPUT_BUCKET}/archive/"
    status, rec = call("POST", "/libraries/lib/imports", {"prefix": prefix, "import_id": "backfill-1", "max_concurrency": 50})
    assert status == 202, rec
    assert rec["import_id"] == "backfill-1" and rec["state"] == "running" and rec["total"] == 3
    assert rec["library"] == "lib" and rec["save_type"] == "onlysave" and rec["source"] == prefix
    payload = import_executions(importing)["backfill-1"]  # execution name = import id
    assert payload["max_concurrency"] == 8  # capped by the deployment
    plan = json.loads(boto3.client("s3").get_object(**payload["plan"])["Body"].read())
    assert sorted(item["key"] for item in plan) == [f"archive/clip{i}.mp4" for i in range(3)]
    status, again = call("POST", "/libraries/lib/imports", {"prefix": prefix, "import_id": "backfill-1"})
    assert_invalid(status, again)  # an import id is used once
    assert len(import_executions(importing)) == 1


def test_import_progress_and_failures_are_paged(call, importing):
    manifest = f"s3://{importing.INPUT_BUCKET}/lists/two.jsonl"
    status, rec = call("POST", "/libraries/lib/imports", {"manifest": manifest, "save_type": "forcesave"})
    assert status == 202 and rec["total"] == 2 and rec["save_type"] == "forcesave"
    import_id = rec["import_id"]
    store = call.svc.store
    store.add_import_progress(import_id, "first", "done")
    store.add_import_progress(import_id, "archive/clip1.mp4", "failed", code="not_media", message="not a media file")
    status, got = call("GET", f"/libraries/lib/imports/{import_id}", query={"limit": "1"})
    assert status == 200
    assert (got["total"], got["done"], got["skipped"], got["failed"], got["processed"]) == (2, 1, 0, 1, 2)
    assert got["failures"] == [{"item": "archive/clip1.mp4", "code": "not_media", "message": "not a media file"}]
    assert got["failures_cursor"] is None


@pytest.mark.parametrize("body,field", [
    ({}, "prefix"), ({"prefix": "s3://b/p/", "manifest": "s3://b/m.jsonl"}, "prefix"),
    ({"prefix": "https://example.com/p/"}, "prefix"), ({"manifest": "s3://bucket/"}, "manifest"),
    ({"prefix": "s3://b/p/", "save_type": "nosave"}, "save_type"),
    ({"prefix": "s3://b/p/", "max_concurrency": 0}, "max_concurrency"),
    ({"prefix": "s3://b/p/", "import_id": "has space"}, "import_id"),
    ({"prefix": "s3://b/p/", "extra": True}, "extra"),
])
def test_import_validation(call, importing, body, field):
    assert_invalid(*call("POST", "/libraries/lib/imports", body), field)
    assert import_executions(importing) == {}


def test_import_refusals(call, importing, cloud):
    status, body = call("POST", "/libraries/lib/imports", {"prefix": "s3://someone-elses-bucket/x/"})
    assert_invalid(status, body)
    assert "may read only from" in body["error"]["message"]
    status, body = call("POST", "/libraries/nolib/imports", {"prefix": f"s3://{cloud.INPUT_BUCKET}/archive/"})
    assert status == 404 and body["error"]["code"] == "library_not_found"
    status, body = call("POST", "/libraries/lib/imports", {"manifest": f"s3://{cloud.INPUT_BUCKET}/lists/none.jsonl"})
    assert status == 404 and body["error"]["code"] == "input_not_found"
    assert import_executions(importing) == {}


def test_import_get_not_found_and_invalid(call, importing, cloud):
    status, body = call("GET", "/libraries/lib/imports/nope")
    assert status == 404 and body["error"]["code"] == "import_not_found"
    assert_invalid(*call("GET", "/libraries/lib/imports/bad%20id"), "import_id")
    call("POST", "/libraries", {"name": "other"})
    status, rec = call("POST", "/libraries/lib/imports", {"prefix": f"s3://{cloud.INPUT_BUCKET}/archive/"})
    status, body = call("GET", f"/libraries/other/imports/{rec['import_id']}")  # another library's import
    assert status == 404 and body["error"]["code"] == "import_not_found"
    assert_invalid(*call("GET", f"/libraries/lib/imports/{rec['import_id']}", query={"limit": "0"}), "limit")


def test_imports_are_refused_where_none_are_configured(call):
    call("POST", "/libraries", {"name": "lib"})
    status, body = call("POST", "/libraries/lib/imports", {"prefix": "s3://b/p/"})
    assert_invalid(status, body)
    assert "not configured" in body["error"]["message"]


# -- re-scan -------------------------------------------------------------------------------
class FakeRescanner:
    def __init__(self):
        self.calls = []

    def rescan_later(self, job_id, reference_library, query_library, since):
        self.calls.append({"mediadna_task": "rescan", "job_id": job_id, "library": reference_library,
                           "queries": query_library, "since": since})


@pytest.fixture
def rescanning(call, cloud, ref_a, make_copy, fingerprint_of):
    """Kept uploads (a copy of ref_a, stored before its original) and, later, the reference library;
    results go through the real ResultSink to an output bucket and a callback queue in moto."""
    from functions.common.aws import ResultSink, SinkPublisher
    from mediadna.pipeline import commit

    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    out = f"out-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=out)
    queue = sqs.create_queue(QueueName=f"cb-{out}")["QueueUrl"]
    sink = ResultSink(Settings(OUTPUT_BUCKET=out, CALLBACK_QUEUE_URL=queue))
    call.svc.rescanner = FakeRescanner()
    call.svc.publisher = SinkPublisher(sink)
    for name in ("uploads", "refs"):
        call("POST", "/libraries", {"name": name})
    store = call.svc.store
    commit(store, "uploads", fingerprint_of(make_copy("reencode", crf=36)), "upload-1.mp4", "onlysave", False)
    commit(store, "uploads", fingerprint_of(make_copy("grayscale")), "upload-2.mp4", "onlysave", False)
    commit(store, "refs", fingerprint_of(ref_a), "original.mp4", "onlysave", False)
    return {"bucket": out, "queue": queue}


def test_rescan_publishes_the_uploads_that_match_new_references(call, rescanning):
    status, job = call("POST", "/libraries/refs/rescans", {"queries": "uploads"})
    assert status == 202 and job["kind"] == "rescan" and job["state"] == "running" and job["library"] == "refs"
    (task,) = call.svc.rescanner.calls
    assert task["job_id"] == job["job_id"]
    status, again = call("POST", "/libraries/refs/rescans", {"queries": "uploads"})  # while it runs: the same job
    assert status == 200 and again["job_id"] == job["job_id"] and len(call.svc.rescanner.calls) == 1
    done = api.handler(task, lambda_context("Api"))  # the asynchronous invoke the rescanner sent
    assert done["state"] == "succeeded"
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=rescanning["bucket"]).get("Contents", [])]
    results = [json.loads(s3.get_object(Bucket=rescanning["bucket"], Key=k)["Body"].read()) for k in keys]
    assert sorted(r["input"]["key"] for r in results) == ["upload-1.mp4", "upload-2.mp4"]
    for r in results:
        assert r["duplicate"] is True and r["stored"] is False and r["library"] == "refs"
        (m,) = [m for m in r["matches"] if m["primary_key"] == "original.mp4"]
        assert m["segments"] and m["segments"][0]["reference_end"] - m["segments"][0]["reference_start"] > 10
    messages = sqs.receive_message(QueueUrl=rescanning["queue"], MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 2 and all(json.loads(m["Body"])["duplicate"] for m in messages)
    status, got = call("GET", f"/jobs/{job['job_id']}")
    assert status == 200 and got["state"] == "succeeded"


def test_rescan_since_a_time_after_the_references_publishes_nothing(call, rescanning):
    status, job = call("POST", "/libraries/refs/rescans", {"queries": "uploads", "since": "2999-01-01T00:00:00Z"})
    assert status == 202
    done = api.handler(call.svc.rescanner.calls[-1], lambda_context("Api"))
    assert done["state"] == "succeeded"
    assert boto3.client("s3").list_objects_v2(Bucket=rescanning["bucket"]).get("KeyCount", 0) == 0


@pytest.mark.parametrize("body,field", [
    ({}, "queries"), ({"queries": "bad name"}, "queries"), ({"queries": "uploads", "extra": 1}, "extra"),
    ({"queries": "uploads", "since": "yesterday"}, None), ({"queries": "refs"}, None),
])
def test_rescan_validation(call, body, field):
    for name in ("uploads", "refs"):
        call("POST", "/libraries", {"name": name})
    call.svc.rescanner = FakeRescanner()
    assert_invalid(*call("POST", "/libraries/refs/rescans", body), field)
    assert call.svc.rescanner.calls == []


def test_rescan_of_unknown_libraries_is_404(call):
    call("POST", "/libraries", {"name": "refs"})
    call.svc.rescanner = FakeRescanner()
    for path, queries in (("/libraries/nope/rescans", "refs"), ("/libraries/refs/rescans", "nope")):
        status, body = call("POST", path, {"queries": queries})
        assert status == 404 and body["error"]["code"] == "library_not_found"
    assert call.svc.rescanner.calls == []


# --- compare with real media over a loopback server (the URL guard and the decoder, not a fake) ---------
@pytest.fixture
def media_server(tmp_path, monkeypatch):
    """Serves files from a folder on 127.0.0.1 (allow-listed for the URL guard) and records every request."""
    import http.server
    import threading

    from pytest_socket import enable_socket, socket_allow_hosts

    monkeypatch.setenv("MEDIADNA_URL_ALLOW_HOSTS", "127.0.0.1")
    enable_socket()
    socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(tmp_path), **kw)

        def log_message(self, *args):
            requests.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{httpd.server_address[1]}", requests
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def real_call(call):
    from mediadna.pipeline import compare

    call.svc.comparer = compare
    return call


def test_video_match_finds_a_copy_served_over_http(real_call, media_server, ref_a, unrelated, make_copy):
    root, base, _ = media_server
    copy = make_copy("letterbox")
    for path in (ref_a, copy, unrelated):
        (root / path.name).write_bytes(path.read_bytes())
    status, body = real_call("POST", "/video/match", {"source_url": f"{base}/{ref_a.name}", "target_url": f"{base}/{copy.name}"})
    assert status == 200 and body["status"] == "succeeded", body
    assert body["match"] is True and body["similarity_score"] >= 0.5
    seg = max(body["matched_segments"], key=lambda s: s["target_end"] - s["target_start"])
    assert seg["target_end"] - seg["target_start"] > 10.0
    status, body = real_call("POST", "/video/match", {"source_url": f"{base}/{ref_a.name}", "target_url": f"{base}/{unrelated.name}"})
    assert status == 200 and body["match"] is False


def test_match_refuses_a_redirect_to_the_metadata_address(real_call, media_server, ref_a, monkeypatch):
    """A URL that redirects to 169.254.169.254: 422 url_refused, and no connection to that address."""
    import socket

    root, base, requests = media_server
    (root / "go").mkdir()
    (root / ref_a.name).write_bytes(ref_a.read_bytes())
    attempts: list = []
    real_connect = socket.socket.connect

    def spy_connect(sock, address):
        attempts.append(address)
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", spy_connect)
    # SimpleHTTPRequestHandler redirects a folder without its slash: point that at the metadata service instead
    import http.server

    def redirect(self):
        self.send_response(302)
        self.send_header("Location", "http://169.254.169.254/latest/meta-data/iam/security-credentials/")
        self.end_headers()
        return None

    monkeypatch.setattr(http.server.SimpleHTTPRequestHandler, "send_head", redirect)
    status, body = real_call("POST", "/video/match", {"source_url": f"{base}/go", "target_url": f"{base}/{ref_a.name}"})
    assert status == 422, body
    assert body["status"] == "failed" and body["error"]["code"] == "url_refused", body
    assert all(a[0] != "169.254.169.254" for a in attempts if isinstance(a, tuple)), attempts
    assert "/go" in requests
