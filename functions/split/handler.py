"""Workflow step ``Split``: check the library, probe the upload, hash it, plan its segments."""

from __future__ import annotations

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from functions.common.aws import library_store, media_of, record_job, sha256_of
from functions.common.observability import logger, tracer
from functions.common.settings import settings
from mediadna.jobs import Job, split_step


class SplitInput(BaseModel):
    job: dict


@logger.inject_lambda_context(correlation_id_path="job.job_id")
@tracer.capture_lambda_handler
@event_parser(model=SplitInput)
def handler(event: SplitInput, context: LambdaContext) -> dict:
    job, cfg = Job.from_dict(event.job), settings()
    record_job(cfg, event.job, "running")
    library_store(cfg.MEDIADNA_STORE).get_library(job.library)  # fail fast: library_not_found before any work
    with media_of(job, cfg) as media:
        plan = split_step(media, cfg.SEGMENT_SECONDS, cfg.SEGMENT_OVERLAP)
    logger.info("planned", segments=len(plan["segments"]), duration=plan["duration"])
    return {**plan, "sha256": sha256_of(job)}
