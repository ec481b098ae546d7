"""Workflow step ``Split``: check the library, probe the upload, hash it, plan its segments."""

from __future__ import annotations

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from functions.common.aws import S3Parts, library_store, media_of, object_bytes, object_head, record_job, sha256_of
from functions.common.observability import logger, tracer
from functions.common.settings import settings
from mediadna.fingerprint import looks_like_fingerprint
from mediadna.jobs import Job, fingerprint_upload_step, split_step


class SplitInput(BaseModel):
    job: dict


@logger.inject_lambda_context(correlation_id_path="job.job_id")
@tracer.capture_lambda_handler
@event_parser(model=SplitInput)
def handler(event: SplitInput, context: LambdaContext) -> dict:
    job, cfg = Job.from_dict(event.job), settings()
    record_job(cfg, event.job, "running")
    library_store(cfg.MEDIADNA_STORE).get_library(job.library)  # fail fast: library_not_found before any work
    if looks_like_fingerprint(object_head(job)):  # a .mdna made by `mediadna fingerprint`: no media to decode
        return fingerprint_upload_step(object_bytes(job), job, S3Parts(cfg.WORK_BUCKET))
    with media_of(job, cfg) as media:
        plan = split_step(media, cfg.SEGMENT_SECONDS, cfg.SEGMENT_OVERLAP)
    logger.info("planned", segments=len(plan["segments"]), duration=plan["duration"])
    return {**plan, "sha256": sha256_of(job)}
