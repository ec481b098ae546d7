"""Uploads through the whole cloud pipeline (see conftest.py for what runs where)."""

from __future__ import annotations

import json

import pytest

from mediadna.schemas import validate

LIBRARY = "ads"


@pytest.fixture
def library(cloud):
    from functions.common.aws import library_store
    from functions.common.settings import settings

    library_store(settings().MEDIADNA_STORE).create_library(LIBRARY)
    return LIBRARY


def run(cloud, *uploads) -> list[dict]:
    for key, data in uploads:
        cloud.upload(key, data)
    response = cloud.deliver_uploads()
    assert response["batchItemFailures"] == []
    return cloud.wait()


def test_a_reupload_is_found_with_its_time_codes(cloud, library, ref_a, make_copy):
    executions = run(cloud, (f"input/{library}/save/originals/ref_a.mp4", ref_a))
    assert [e["status"] for e in executions] == ["SUCCEEDED"]
    # the reference was split (20 s in 8 s segments) and extracted in parallel
    assert cloud.invocations.count(next(n for n in cloud.invocations if n.endswith("Extract"))) == 3
    first = list(cloud.results().values())
    assert len(first) == 1 and first[0]["stored"] is True and first[0]["primary_key"] == "originals/ref_a.mp4"

    copy = make_copy("reencode", crf=36)
    executions = run(cloud, (f"input/{library}/nosave/uploads/copy of ad.mp4", copy))
    assert sorted(e["status"] for e in executions) == ["SUCCEEDED", "SUCCEEDED"]
    results = cloud.results()
    assert len(results) == 2
    key, result = next((k, r) for k, r in results.items() if r["input"]["key"].endswith("copy of ad.mp4"))
    validate(result, "result")
    assert key == f"results/{library}/{key.split('/')[2]}/copy of ad-{result['job_id']}.json"
    assert result["status"] == "succeeded" and result["duplicate"] is True and result["stored"] is False
    best = result["matches"][0]
    assert best["primary_key"] == "originals/ref_a.mp4" and best["similarity"] >= 0.8
    seg = max(best["segments"], key=lambda s: s["query_end"] - s["query_start"])
    assert abs(seg["query_start"] - seg["reference_start"]) < 1.0
    assert seg["query_end"] - seg["query_start"] > 15.0

    callbacks = [json.loads(m["Body"]) for m in cloud.drain(cloud.callback_queue)]
    assert sorted(c["job_id"] for c in callbacks) == sorted(r["job_id"] for r in results.values())
    mine = next(c for c in callbacks if c["job_id"] == result["job_id"])
    assert mine["duplicate"] is True and mine["result"] == result
    assert mine["result_location"] == f"s3://{cloud.output_bucket}/{key}"
    notified = cloud.drain(cloud.topic_subscriber_queue)
    assert sorted(json.loads(m["Body"])["job_id"] for m in notified) == sorted(c["job_id"] for c in callbacks)
    from functions.common.aws import library_store
    from functions.common.settings import settings

    record = library_store(settings().MEDIADNA_STORE).get_job(result["job_id"])
    assert record["state"] == "succeeded" and record["result_location"] == mine["result_location"]
    assert record["created_at"] <= record["updated_at"] and record["library"] == library


def test_a_corrupt_upload_ends_in_a_failed_result_and_callback(cloud, library, ref_a):
    data = ref_a.read_bytes()
    executions = run(cloud, (f"input/{library}/save/broken.mp4", data[: len(data) // 3]))
    assert [e["status"] for e in executions] == ["FAILED"]
    (result,) = cloud.results().values()
    validate(result, "result")
    assert result["status"] == "failed" and result["stored"] is False
    assert result["error"]["code"] == "corrupt_media"
    (callback,) = [json.loads(m["Body"]) for m in cloud.drain(cloud.callback_queue)]
    assert callback["status"] == "failed" and callback["error"]["code"] == "corrupt_media"
    from functions.common.aws import library_store
    from functions.common.settings import settings

    assert library_store(settings().MEDIADNA_STORE).get_library(library).file_count == 0  # nothing half-stored
    record = library_store(settings().MEDIADNA_STORE).get_job(result["job_id"])
    assert record["state"] == "failed" and record["error_code"] == "corrupt_media"


def test_a_duplicate_notification_makes_one_job(cloud, library, ref_b):
    cloud.upload(f"input/{library}/save/b.mp4", ref_b)

    def twice(event):  # the same notification delivered twice (SQS is at-least-once)
        return {"Records": event["Records"] + [dict(event["Records"][0], messageId="again")]}

    assert cloud.deliver_uploads(twice)["batchItemFailures"] == []
    executions = cloud.wait()
    assert [e["status"] for e in executions] == ["SUCCEEDED"]
    assert len(cloud.results()) == 1


def test_not_media_and_unknown_library_are_answered(cloud, library):
    executions = run(
        cloud,
        (f"input/{library}/save/notes.txt", b"this is not a video"),
        ("input/no-such-library/save/clip.mp4", b"\x00" * 1000),
    )
    assert sorted(e["status"] for e in executions) == ["FAILED", "FAILED"]
    errors = {r["input"]["key"]: r["error"] for r in cloud.results().values()}
    assert errors[f"input/{library}/save/notes.txt"]["code"] == "not_media"
    assert "notes.txt" in errors[f"input/{library}/save/notes.txt"]["message"]  # names the upload, not a temp file
    assert errors["input/no-such-library/save/clip.mp4"]["code"] == "library_not_found"
    assert len(cloud.drain(cloud.callback_queue)) == 2


def test_test_events_and_folder_markers_are_ignored(cloud, library):
    cloud.upload(f"input/{library}/", b"")  # a folder marker

    def with_test_event(event):
        test = dict(event["Records"][0], messageId="s3-test",
                    body=json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": cloud.input_bucket}))
        return {"Records": event["Records"] + [test]}

    assert cloud.deliver_uploads(with_test_event)["batchItemFailures"] == []
    assert cloud.wait() == []
    assert cloud.results() == {}


def test_object_metadata_sets_the_job_options(cloud, library, ref_b):
    """Uploaders that cannot choose the key set x-amz-meta-library / -save-type / -primary-key."""
    cloud.s3.put_object(Bucket=cloud.input_bucket, Key="drop/clip-17.mp4", Body=ref_b.read_bytes(),
                        Metadata={"library": library, "save-type": "forcesave", "primary-key": "campaign-17"})
    assert cloud.deliver_uploads()["batchItemFailures"] == []
    assert [e["status"] for e in cloud.wait()] == ["SUCCEEDED"]
    (result,) = cloud.results().values()
    assert (result["library"], result["save_type"], result["primary_key"]) == (library, "forcesave", "campaign-17")
