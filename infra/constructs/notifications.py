"""Notifications: the callback queue (+ DLQ) and the encrypted results topic."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.nag import acknowledge


def queue_with_dlq(scope: Construct, cid: str, *, visibility: Duration, max_receive: int = 5) -> tuple[sqs.Queue, sqs.Queue]:
    dlq = sqs.Queue(scope, f"{cid}DeadLetters", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
                    retention_period=Duration.days(14))
    acknowledge(dlq, "AwsSolutions-SQS3", "This queue is itself a dead-letter queue.")
    queue = sqs.Queue(
        scope, cid, encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True, visibility_timeout=visibility,
        retention_period=Duration.days(4), dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=max_receive),
    )
    return queue, dlq


class Notifications(Construct):
    def __init__(self, scope: Construct, cid: str):
        super().__init__(scope, cid)
        # consumers read results at their pace; 5 failed receives go to the DLQ
        self.callback_queue, self.callback_dlq = queue_with_dlq(self, "CallbackQueue", visibility=Duration.seconds(60))
        self.topic_key = kms.Key(self, "TopicKey", enable_key_rotation=True,
                                 description="mediadna results topic encryption")
        self.topic = sns.Topic(self, "ResultsTopic", master_key=self.topic_key, enforce_ssl=True)
