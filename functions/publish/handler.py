"""Workflow step ``Publish``: announce the result (callback queue + topic)."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from functions.common.aws import ResultSink, job_seconds
from functions.common.observability import logger, metrics, tracer
from functions.common.settings import settings


class PublishInput(BaseModel):
    job: dict
    started: str | None = None  # the execution's start time ($$.Execution.StartTime)
    result: dict


@logger.inject_lambda_context(correlation_id_path="job.job_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=PublishInput)
def handler(event: PublishInput, context: LambdaContext) -> dict:
    sink = ResultSink(settings())
    key = event.result["result_key"]
    message = sink.announce(sink.read(key), key)
    metrics.add_metric(name="JobsSucceeded", unit=MetricUnit.Count, value=1)
    if (seconds := job_seconds(event.started)) is not None:
        metrics.add_metric(name="JobDuration", unit=MetricUnit.Seconds, value=seconds)
    return message
