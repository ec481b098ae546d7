"""``mediadna dev``: the whole cloud flow on this machine, on moto's server.

Clients talk to it over HTTP like to AWS (``aws --endpoint-url``, boto3 with
``endpoint_url``); the same workflow definition and handlers as in AWS run the
jobs.  See :mod:`functions.local` for what is emulated and how.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from pathlib import Path

FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "mediadna-dev", "AWS_SECRET_ACCESS_KEY": "mediadna-dev"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DevStack:
    """moto's server + the resources + the upload consumer, started and stopped together."""

    def __init__(self, port: int = 0, *, data_dir: str | os.PathLike | None = None, segment_seconds: float = 60.0,
                 log=None):
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.data_dir = Path(data_dir) if data_dir else None
        self.segment_seconds = segment_seconds
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.server = self.consumer = self.resources = self.session = None

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> "DevStack":
        import boto3
        from moto.core.config import default_user_config
        from moto.server import ThreadedMotoServer

        from functions.local import REGION, UploadConsumer, create_resources, route_lambda_invokes, serialize_dynamodb

        os.environ.update({
            **FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": self.endpoint, "MEDIADNA_DYNAMODB_ENDPOINT": self.endpoint, "MOTO_PORT": str(self.port),
            "POWERTOOLS_TRACE_DISABLED": "1", "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_SERVICE_NAME": "mediadna",
            "POWERTOOLS_METRICS_NAMESPACE": "MediaDNA", "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),  # the step lines say enough
        })
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("AWS_PROFILE", None)
        default_user_config["stepfunctions"]["execute_state_machine"] = True  # moto runs the definition
        default_user_config["lambda"]["use_docker"] = False
        route_lambda_invokes(setattr, self._log_step)
        serialize_dynamodb(setattr)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log per request
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        self.session = boto3.Session(region_name=REGION)
        self.resources = create_resources(self.session, segment_seconds=self.segment_seconds)
        os.environ.update(self.resources.environment)
        self._reset_caches()
        if self.data_dir:
            self._load()
        self.consumer = UploadConsumer(self.session.client("sqs"), self.resources.upload_queue,
                                       on_error=lambda exc: self.log(f"[consumer] {type(exc).__name__}: {exc}"))
        self.consumer.start()
        return self

    def stop(self) -> None:
        if self.consumer:
            self.consumer.stop()
            self.consumer.join(timeout=5)
        if self.data_dir and self.resources:
            try:
                self._save()
            except Exception as exc:  # noqa: BLE001 - still stop the server
                self.log(f"could not save state to {self.data_dir}: {exc}")
        if self.server:
            self.server.stop()
        self._reset_caches()

    def __enter__(self) -> "DevStack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _log_step(self, name: str, event: dict, error: str | None) -> None:
        """One line per step with its job id; a failing step shows its error."""
        job = (event.get("job") or {}).get("job_id", "-") if isinstance(event, dict) else "-"
        self.log(f"[{job}] {name}: " + (f"FAILED {error}" if error else "ok"))

    @staticmethod
    def _reset_caches() -> None:
        from functions.common import aws as adapters
        from functions.common.settings import settings

        settings.cache_clear()
        adapters.client.cache_clear()
        adapters.library_store.cache_clear()

    # -- helpers for users and tests -------------------------------------------------------
    def client(self, service: str):
        return self.session.client(service, endpoint_url=self.endpoint)

    def store(self):
        from functions.common.aws import library_store

        return library_store("dynamodb:")

    def wait_for_result(self, input_key: str, timeout: float = 600.0) -> dict:
        """The result document of the upload ``input_key`` (polls the output bucket)."""
        s3 = self.client("s3")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for obj in s3.list_objects_v2(Bucket=self.resources.output_bucket).get("Contents", []):
                doc = json.loads(s3.get_object(Bucket=self.resources.output_bucket, Key=obj["Key"])["Body"].read())
                if doc.get("input", {}).get("key") == input_key:
                    return doc
            time.sleep(0.5)
        raise TimeoutError(f"no result for {input_key} after {timeout:.0f} s")

    def describe(self) -> str:
        r = self.resources
        return "\n".join([
            f"mediadna dev: AWS APIs at {self.endpoint} (moto), region us-east-1, any credentials",
            f"  input bucket     s3://{r.input_bucket}/input/<library>/<save type>/<file>",
            f"  output bucket    s3://{r.output_bucket}/results/...",
            f"  callback queue   {r.callback_queue}",
            f"  results topic    {r.topic_arn} (subscribed: {r.topic_subscriber_queue})",
            f"  state machine    {r.state_machine_arn}",
            "",
            "try:",
            f"  export AWS_ENDPOINT_URL={self.endpoint} AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_DEFAULT_REGION=us-east-1",
            f"  MEDIADNA_DYNAMODB_ENDPOINT={self.endpoint} " + " ".join(
                f"MEDIADNA_TABLE_{k.upper()}={v}" for k, v in r.tables.items()) + " mediadna --store dynamodb: library create ads",
            f"  aws s3 cp clip.mp4 s3://{r.input_bucket}/input/ads/save/clip.mp4",
            f"  aws s3 ls --recursive s3://{r.output_bucket}/",
            f"  aws sqs receive-message --queue-url {r.callback_queue}",
            "Ctrl-C stops everything.",
        ])

    # -- optional persistence (--data DIR) ----------------------------------------------------
    def _save(self) -> None:
        """Objects of the three buckets and items of the tables, as files under data_dir."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        s3, ddb = self.client("s3"), self.client("dynamodb")
        r = self.resources
        for bucket in (r.input_bucket, r.output_bucket, r.work_bucket):
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for obj in page.get("Contents", []):
                    path = self.data_dir / "s3" / bucket / obj["Key"]
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
        for what, table in r.tables.items():
            items = [i for page in ddb.get_paginator("scan").paginate(TableName=table) for i in page["Items"]]
            path = self.data_dir / "dynamodb" / f"{what}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(items, default=_b64))

    def _load(self) -> None:
        s3, ddb = self.client("s3"), self.client("dynamodb")
        r = self.resources
        for bucket in (r.output_bucket, r.work_bucket):  # input objects are not re-uploaded: that would re-run jobs
            root = self.data_dir / "s3" / bucket
            for path in root.rglob("*") if root.exists() else []:
                if path.is_file():
                    s3.put_object(Bucket=bucket, Key=path.relative_to(root).as_posix(), Body=path.read_bytes())
        # the libraries table last: a library shows up only once everything it owns is back
        for what in ("files", "visual", "audio", "jobs", "libraries"):
            path = self.data_dir / "dynamodb" / f"{what}.json"
            items = json.loads(path.read_text(), object_hook=_unb64) if path.exists() else []
            for start in range(0, len(items), 25):
                ddb.batch_write_item(RequestItems={r.tables[what]: [
                    {"PutRequest": {"Item": item}} for item in items[start:start + 25]]})


def _b64(value):
    import base64

    if isinstance(value, (bytes, bytearray)):
        return {"__b64__": base64.b64encode(value).decode("ascii")}
    raise TypeError(type(value))


def _unb64(obj):
    import base64

    if set(obj) == {"__b64__"}:
        return base64.b64decode(obj["__b64__"])
    return obj


def run(port: int = 0, data_dir: str | None = None, demo: bool = False, demo_dir: str | None = None) -> int:
    """The ``mediadna dev`` command: up until Ctrl-C (or until the demo is done)."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    # Ctrl-C and `kill` stop cleanly, even when started with SIGINT ignored (a shell's background job)
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    stack = DevStack(port, data_dir=data_dir)
    try:
        stack.start()
        print(stack.describe(), flush=True)
        if demo:
            return _demo(stack, Path(demo_dir) if demo_dir else Path.cwd() / "mediadna-dev-demo")
        while True:  # short sleeps: a signal that lands on another thread is handled within a second
            time.sleep(1.0)
    except KeyboardInterrupt:
        print("\nstopping ...", file=sys.stderr, flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the state save short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()


def _demo(stack: DevStack, folder: Path) -> int:
    """Upload an original and a disguised copy through the local cloud; print the verdict."""
    from mediadna import synth

    folder.mkdir(parents=True, exist_ok=True)
    original, copy = folder / "original.mp4", folder / "reupload.mp4"
    stack.log(f"generating two sample videos in {folder} ...")
    if not original.exists():
        synth.make_video(original, kind="scenes", duration=30.0, seed=7)
    if not copy.exists():  # 9:16 blurred fill, mirrored, colour-graded, 5 % faster
        synth.transform(original, copy, "combo", steps=[("blurfill916", {}), ("hflip", {}),
                                                        ("colorgrade", {"contrast": 1.2}), ("speed", {"factor": 1.05})])
    try:
        stack.store().create_library("ads")
    except Exception:  # noqa: BLE001 - exists from a previous run (--data)
        pass
    s3 = stack.client("s3")
    bucket = stack.resources.input_bucket
    for path, key in ((original, "input/ads/save/original.mp4"), (copy, "input/ads/nosave/reupload.mp4")):
        print(f"\n$ aws s3 cp {path.name} s3://{bucket}/{key}", flush=True)
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        result = stack.wait_for_result(key)
        _print_verdict(result)
    callbacks = stack.client("sqs").receive_message(QueueUrl=stack.resources.callback_queue, MaxNumberOfMessages=10)
    print(f"\ncallback queue: {len(callbacks.get('Messages', []))} message(s) waiting", flush=True)
    return 0 if result["status"] == "succeeded" and result["duplicate"] else 1


def _print_verdict(result: dict) -> None:
    if result["status"] != "succeeded":
        print(f"  failed: {result['error']['code']}: {result['error']['message']}")
        return
    print(f"  job {result['job_id']}: duplicate={result['duplicate']} stored={result['stored']}")
    for m in result["matches"]:
        print(f"  matches {m['primary_key']}: similarity {m['similarity']:.2f} ({m['modality']})")
        for s in m["segments"]:
            print(f"    upload {s['query_start']:6.1f}-{s['query_end']:6.1f} s  <->  library {s['reference_start']:6.1f}-"
                  f"{s['reference_end']:6.1f} s  score {s['score']:.2f}  speed {s['speed']:.2f}")
