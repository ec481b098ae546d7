"""Workflow step ``Extract`` (one Map iteration): fingerprint one segment into a part."""

from __future__ import annotations

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from functions.common.aws import S3Parts, media_of
from functions.common.observability import logger, tracer
from functions.common.settings import settings
from mediadna.jobs import Job, extract_step


class Segment(BaseModel):
    index: int
    start: float
    end: float | None


class ExtractInput(BaseModel):
    job: dict
    segment: Segment


@logger.inject_lambda_context(correlation_id_path="job.job_id")
@tracer.capture_lambda_handler
@event_parser(model=ExtractInput)
def handler(event: ExtractInput, context: LambdaContext) -> dict:
    job, cfg = Job.from_dict(event.job), settings()
    with media_of(job, cfg) as media:
        return extract_step(media, job.job_id, event.segment.model_dump(), S3Parts(cfg.WORK_BUCKET))
