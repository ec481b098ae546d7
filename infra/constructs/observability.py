"""Observability: a dashboard and alarms (jobs, failures, duration, duplicates, DLQ depth)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

NAMESPACE = "MediaDNA"


def _app_metric(name: str, label: str) -> cw.Metric:
    return cw.Metric(namespace=NAMESPACE, metric_name=name, dimensions_map={"service": "mediadna"},
                     statistic="Sum", period=Duration.minutes(5), label=label)


class Observability(Construct):
    def __init__(self, scope: Construct, cid: str, *, state_machine: sfn.StateMachine,
                 dead_letter_queues: dict[str, sqs.IQueue]):
        super().__init__(scope, cid)
        failed = state_machine.metric_failed(period=Duration.minutes(5), statistic="Sum")
        self.alarms = [
            cw.Alarm(self, "JobsFailing", metric=failed, threshold=1, evaluation_periods=1,
                     comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                     treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                     alarm_description="A mediadna job ended failed (bad media or a fault): see its result document."),
        ]
        for name, dlq in dead_letter_queues.items():
            self.alarms.append(cw.Alarm(
                self, f"{name}NotEmpty", metric=dlq.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(1), statistic="Maximum"),
                threshold=1, evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                alarm_description=f"Messages are dead-lettered in {name}: inspect and redrive them.",
            ))
        self.dashboard = cw.Dashboard(self, "Dashboard", default_interval=Duration.hours(24))
        self.dashboard.add_widgets(
            cw.GraphWidget(title="Jobs", left=[
                state_machine.metric_started(period=Duration.minutes(5), statistic="Sum", label="started"),
                state_machine.metric_succeeded(period=Duration.minutes(5), statistic="Sum", label="succeeded"),
                failed.with_(label="failed"),
            ]),
            cw.GraphWidget(title="Job duration (ms)", left=[
                state_machine.metric_time(statistic="p50", label="p50"),
                state_machine.metric_time(statistic="p95", label="p95"),
            ]),
            cw.GraphWidget(title="Results", left=[
                _app_metric("DuplicatesFound", "duplicates found"), _app_metric("FilesStored", "files stored"),
                _app_metric("JobsRejected", "uploads rejected"), _app_metric("DuplicateNotifications", "repeat notifications"),
            ]),
            cw.GraphWidget(title="Dead-letter queues", left=[
                q.metric_approximate_number_of_messages_visible(label=name) for name, q in dead_letter_queues.items()
            ]),
        )
