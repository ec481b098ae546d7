"""Ingestion trigger: S3 ObjectCreated -> upload queue (+ DLQ) -> the trigger function."""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from constructs import Construct

from infra.constructs.notifications import queue_with_dlq


class IngestionTrigger(Construct):
    def __init__(self, scope: Construct, cid: str, *, input_bucket: s3.IBucket, prefix: str, suffix: str,
                 trigger_timeout: Duration):
        super().__init__(scope, cid)
        # Lambda's guidance: visibility >= 6x the consumer's timeout, so retries never overlap
        self.queue, self.dlq = queue_with_dlq(
            self, "UploadQueue", visibility=Duration.seconds(trigger_timeout.to_seconds() * 6), max_receive=3
        )
        # only S3, only for this bucket, only in this account
        self.queue.add_to_resource_policy(iam.PolicyStatement(
            sid="S3UploadNotifications",
            principals=[iam.ServicePrincipal("s3.amazonaws.com")],
            actions=["sqs:SendMessage"],
            resources=[self.queue.queue_arn],
            conditions={"ArnEquals": {"aws:SourceArn": input_bucket.bucket_arn},
                        "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
        ))
        # the bucket lives in the data stack and is imported here, so the notification
        # is set from this stack and the data stack never depends on the processing one
        filters = s3.NotificationKeyFilter(prefix=prefix or None, suffix=suffix or None)
        input_bucket.add_event_notification(s3.EventType.OBJECT_CREATED, s3n.SqsDestination(self.queue), filters)

    def connect(self, function: lambda_.IFunction) -> None:
        function.add_event_source(sources.SqsEventSource(
            self.queue, batch_size=10, max_batching_window=Duration.seconds(5), report_batch_item_failures=True,
        ))
