"""The sample events in events/ parse with the models of the handlers that receive them."""

from __future__ import annotations

import json
from pathlib import Path

import aws_xray_sdk.core  # noqa: F401 - before sockets are blocked: its recorder opens a UDP socket on import
import pytest

from functions.extract.handler import ExtractInput
from functions.failure.handler import FailureInput
from functions.match.handler import MatchInput
from functions.merge.handler import MergeInput
from functions.publish.handler import PublishInput
from functions.split.handler import SplitInput
from functions.trigger.handler import S3TestEvent, UploadRecord
from mediadna.jobs import Job, error_from_state, job_from_object
from mediadna.schemas import validate

EVENTS = Path(__file__).resolve().parents[2] / "events"


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def test_every_event_file_is_documented_and_tested():
    documented = (EVENTS / "README.md").read_text()
    files = sorted(p.name for p in EVENTS.glob("*.json"))
    assert files and all(f"`{name}`" in documented for name in files)
    assert set(files) == set(STATE_MODELS) | {"upload-notification.sqs.json", "s3-test-event.sqs.json", "callback.message.json"}


def test_upload_notification_becomes_a_job():
    (record,) = load("upload-notification.sqs.json")["Records"]
    parsed = UploadRecord.model_validate(record)
    (s3,) = parsed.body.Records
    from urllib.parse import unquote_plus

    job = job_from_object(s3.s3.bucket.name, unquote_plus(s3.s3.object.key), s3.s3.object.versionId, s3.s3.object.eTag)
    assert (job.library, job.save_type, job.primary_key) == ("ads", "save", "campaigns/spring spot #1.mp4")
    assert job.key == load("state-split.input.json")["job"]["key"]


def test_s3_test_event_is_recognised():
    (record,) = load("s3-test-event.sqs.json")["Records"]
    assert isinstance(UploadRecord.model_validate(record).body, S3TestEvent)


STATE_MODELS = {
    "state-split.input.json": SplitInput,
    "state-extract.input.json": ExtractInput,
    "state-merge.input.json": MergeInput,
    "state-match.input.json": MatchInput,
    "state-publish.input.json": PublishInput,
    "state-failure.input.json": FailureInput,
}


@pytest.mark.parametrize("name", sorted(STATE_MODELS))
def test_state_inputs_parse(name):
    event = STATE_MODELS[name].model_validate(load(name))
    assert Job.from_dict(event.job).job_id == load("state-split.input.json")["job"]["job_id"]


def test_failure_event_carries_its_code():
    error = error_from_state(load("state-failure.input.json")["error"])
    assert error.code == "corrupt_media"


def test_callback_message_carries_a_valid_result():
    message = load("callback.message.json")
    assert set(message) == {"job_id", "status", "library", "duplicate", "stored", "error", "result_location", "result"}
    validate(message["result"], "result")
    assert message["result"]["job_id"] == message["job_id"]


def test_job_duration_from_the_execution_start():
    from datetime import datetime, timedelta, timezone

    from functions.common.aws import job_seconds

    started = (datetime.now(timezone.utc) - timedelta(seconds=90)).isoformat().replace("+00:00", "Z")
    assert 89 <= job_seconds(started) <= 120
    assert job_seconds(load("state-publish.input.json")["started"]) > 0
    assert job_seconds(None) is None and job_seconds("not a time") is None


def test_light_handlers_import_no_media_library():
    """trigger, publish and failure run from a zip + layer without PyAV, OpenCV or SciPy."""
    import subprocess
    import sys

    code = (
        "import sys, functions.trigger.handler, functions.publish.handler, functions.failure.handler;"
        "print(sorted(m for m in ('av', 'cv2', 'scipy', 'mediadna.decode', 'mediadna.match') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
