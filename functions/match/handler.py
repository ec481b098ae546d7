"""Workflow step ``Match``: match against the library, apply the save type, write the result."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from functions.common.aws import ResultSink, S3Parts, library_store, record_job
from functions.common.observability import logger, metrics, tracer
from functions.common.settings import settings
from mediadna.jobs import Job, match_step


class MatchInput(BaseModel):
    job: dict
    merged: dict


@logger.inject_lambda_context(correlation_id_path="job.job_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=MatchInput)
def handler(event: MatchInput, context: LambdaContext) -> dict:
    cfg = settings()
    result = match_step(library_store(cfg.MEDIADNA_STORE), Job.from_dict(event.job), event.merged["fingerprint"],
                        S3Parts(cfg.WORK_BUCKET))
    metrics.add_metric(name="DuplicatesFound", unit=MetricUnit.Count, value=int(result["duplicate"]))
    metrics.add_metric(name="FilesStored", unit=MetricUnit.Count, value=int(result["stored"]))
    key = ResultSink(cfg).write(result)
    record_job(cfg, event.job, "succeeded", result_location=f"s3://{cfg.OUTPUT_BUCKET}/{key}")
    return {"result_key": key, "status": result["status"], "duplicate": result["duplicate"], "stored": result["stored"]}
