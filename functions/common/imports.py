"""AWS adapters of imports: S3 listing, plans and item downloads; starting the import workflow."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from functools import lru_cache

from botocore.exceptions import ClientError
from pydantic import BaseModel, Field

from mediadna.errors import EMPTY, NOT_FOUND, TOO_LARGE, MediaError
from mediadna.imports import DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_ITEM_SECONDS, ImportItem

from .aws import MAX_DOWNLOAD_BYTES, client


class ImportSettings(BaseModel):
    """The import side's environment (set by infra/constructs/imports.py)."""

    IMPORT_STATE_MACHINE_ARN: str = ""
    WORK_BUCKET: str = ""  # plans: imports/<import id>/plan.json
    INPUT_BUCKET: str = ""
    #: the cap of items processed at the same time (a request may ask for fewer)
    IMPORT_MAX_CONCURRENCY: int = Field(DEFAULT_MAX_CONCURRENCY, ge=1, le=10_000)
    #: buckets imports may read, comma-separated (the input bucket is always allowed)
    IMPORT_SOURCE_BUCKETS: str = ""
    IMPORT_MAX_ITEM_SECONDS: float = Field(DEFAULT_MAX_ITEM_SECONDS, gt=0)

    @property
    def allowed_buckets(self) -> list[str]:
        return [b for b in [self.INPUT_BUCKET, *self.IMPORT_SOURCE_BUCKETS.split(",")] if b.strip()]


@lru_cache(maxsize=1)
def import_settings() -> ImportSettings:
    return ImportSettings.model_validate({k: v for k, v in os.environ.items() if k in ImportSettings.model_fields})


def plan_key(import_id: str) -> str:
    return f"imports/{import_id}/plan.json"


class S3ImportLauncher:
    """:class:`mediadna.imports.ImportLauncher` on S3 and Step Functions."""

    def __init__(self, settings: ImportSettings):
        self.settings = settings

    def list_keys(self, bucket: str, prefix: str) -> Iterable[str]:
        for page in client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"]

    def read_object(self, bucket: str, key: str) -> bytes:
        try:
            return client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise MediaError(NOT_FOUND, f"no manifest at s3://{bucket}/{key}") from None
            raise

    def write_plan(self, import_id: str, items: list[dict]) -> dict:
        key = plan_key(import_id)
        client("s3").put_object(Bucket=self.settings.WORK_BUCKET, Key=key, ContentType="application/json",
                                Body=json.dumps(items, separators=(",", ":")).encode("utf-8"))
        return {"Bucket": self.settings.WORK_BUCKET, "Key": key}

    def start(self, import_id: str, payload: dict) -> bool:
        """Start the import workflow; the execution name is the import id (False: it exists)."""
        try:
            client("stepfunctions").start_execution(stateMachineArn=self.settings.IMPORT_STATE_MACHINE_ARN,
                                                    name=import_id, input=json.dumps(payload))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return False
            raise


def s3_input(bucket: str):
    """``open_input`` for :func:`mediadna.imports.import_item`: the object downloaded to /tmp."""

    @contextlib.contextmanager
    def open_input(item: ImportItem) -> Iterator[str]:
        try:
            head = client("s3").head_object(Bucket=bucket, Key=item.key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise MediaError(NOT_FOUND, f"{item.key} no longer exists") from None
            raise
        size = int(head.get("ContentLength", 0))
        if size == 0:
            raise MediaError(EMPTY, f"{item.key} is empty")
        if size > MAX_DOWNLOAD_BYTES:
            raise MediaError(TOO_LARGE, f"{item.key} is {size / 1024**3:.1f} GB; downloads stop at 9 GB")
        with tempfile.TemporaryDirectory(prefix="mediadna-import-") as folder:
            name = re.sub(r"[^A-Za-z0-9._ -]", "_", item.key.rsplit("/", 1)[-1])[-120:].lstrip(".") or "input"
            path = os.path.join(folder, name)
            client("s3").download_file(bucket, item.key, path)
            yield path

    return open_input


def start_import(store, library: str, **kw) -> dict:
    """Plan and start an import (see :func:`mediadna.imports.start_import`) with this deployment's
    launcher, concurrency cap and allowed buckets.  For the API: ``POST /libraries/{id}/imports``."""
    from mediadna.imports import start_import as start

    cfg = import_settings()
    return start(store, S3ImportLauncher(cfg), library, concurrency_cap=cfg.IMPORT_MAX_CONCURRENCY,
                 allowed_buckets=cfg.allowed_buckets, **kw)
