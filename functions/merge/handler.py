"""Workflow step ``Merge``: the segment parts -> one fingerprint with absolute times."""

from __future__ import annotations

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from functions.common.aws import S3Parts
from functions.common.observability import logger, tracer
from functions.common.settings import settings
from mediadna.jobs import Job, merge_step


class Part(BaseModel):
    index: int
    part: str


class MergeInput(BaseModel):
    job: dict
    split: dict
    parts: list[Part]


@logger.inject_lambda_context(correlation_id_path="job.job_id")
@tracer.capture_lambda_handler
@event_parser(model=MergeInput)
def handler(event: MergeInput, context: LambdaContext) -> dict:
    keys = [p.part for p in sorted(event.parts, key=lambda p: p.index)]
    return merge_step(Job.from_dict(event.job), keys, S3Parts(settings().WORK_BUCKET),
                      sha256=event.split.get("sha256", ""), duration=event.split.get("duration"))
