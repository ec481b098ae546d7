"""The workflow's one error sink: a ``failed`` result document, and the same callback as success."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from functions.common.aws import ResultSink, job_seconds, record_job
from functions.common.observability import logger, metrics, tracer
from functions.common.settings import settings
from mediadna.jobs import error_from_state, failure_result


class FailureInput(BaseModel):
    job: dict
    started: str | None = None  # the execution's start time ($$.Execution.StartTime)
    error: dict | None = None


@logger.inject_lambda_context(correlation_id_path="job.job_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=FailureInput)
def handler(event: FailureInput, context: LambdaContext) -> dict:
    error = error_from_state(event.error)
    logger.warning("job failed", error_code=error.code, error_message=error.message)
    sink = ResultSink(settings())
    result = failure_result(event.job, error)
    key = sink.write(result)
    record_job(settings(), event.job, "failed", result_location=f"s3://{settings().OUTPUT_BUCKET}/{key}",
               error_code=error.code)
    message = sink.announce(result, key)
    metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=1)
    if (seconds := job_seconds(event.started)) is not None:
        metrics.add_metric(name="JobDuration", unit=MetricUnit.Seconds, value=seconds)
    return message
