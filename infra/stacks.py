"""Two stacks: the data (kept on delete) and the processing side (redeployable, destroyable)."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Fn, Stack
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.nag import acknowledge

from infra.config import FUNCTIONS
from infra.constructs.api import HttpApi
from infra.constructs.fargate import FargateExtraction
from infra.constructs.imports import ImportWorkflow
from infra.constructs.ingestion import IngestionTrigger
from infra.constructs.notifications import Notifications
from infra.constructs.observability import Observability
from infra.constructs.storage import Storage
from infra.constructs.workflow import FingerprintWorkflow


class DataStack(Stack):
    """Buckets and tables: everything that holds data.  Retained when the stack is deleted.

    The processing stack reaches the buckets through named exports
    (``<stack>-<Bucket>Name`` / ``Arn``), so IAM findings name them stably.
    """

    def __init__(self, scope: Construct, cid: str, *, settings: dict, **kw):
        super().__init__(scope, cid, **kw)
        self.storage = Storage(self, "Storage", work_retention_days=int(settings["workRetentionDays"]),
                               jobs_indexes=int(settings["jobsIndexes"]))
        for key, bucket in self.buckets().items():
            CfnOutput(self, f"{key}Name", value=bucket.bucket_name, export_name=f"{cid}-{key}Name")
            CfnOutput(self, f"{key}Arn", value=bucket.bucket_arn, export_name=f"{cid}-{key}Arn")

    def buckets(self) -> dict[str, s3.Bucket]:
        s = self.storage
        return {"InputBucket": s.input_bucket, "OutputBucket": s.output_bucket, "WorkBucket": s.work_bucket}

    def imported_buckets(self, scope: Construct) -> dict[str, s3.IBucket]:
        """The buckets as ``scope`` (another stack) sees them: by their named exports."""
        return {
            key: s3.Bucket.from_bucket_attributes(
                scope, f"Imported{key}", bucket_name=Fn.import_value(f"{self.stack_name}-{key}Name"),
                bucket_arn=Fn.import_value(f"{self.stack_name}-{key}Arn"),
            )
            for key in self.buckets()
        }


class ProcessingStack(Stack):
    """Queues, topic, functions, workflow, dashboard: no data of its own."""

    def __init__(self, scope: Construct, cid: str, *, data: DataStack, settings: dict, **kw):
        super().__init__(scope, cid, **kw)
        storage = data.storage
        self.buckets = data.imported_buckets(self)
        self.export_names = {key: f"{data.stack_name}-{key}Arn" for key in self.buckets}
        self.notifications = Notifications(self, "Notifications")
        self.ingestion = IngestionTrigger(
            self, "Ingestion", input_bucket=self.buckets["InputBucket"], prefix=settings["inputPrefix"],
            suffix=settings["inputSuffix"], trigger_timeout=Duration.seconds(FUNCTIONS["Trigger"][2]),
        )
        environment = {
            **storage.table_environment(),
            "MEDIADNA_STORE": "dynamodb:",
            "WORK_BUCKET": self.buckets["WorkBucket"].bucket_name,
            "OUTPUT_BUCKET": self.buckets["OutputBucket"].bucket_name,
            "CALLBACK_QUEUE_URL": self.notifications.callback_queue.queue_url,
            "RESULT_TOPIC_ARN": self.notifications.topic.topic_arn,
            "DEFAULT_LIBRARY": str(settings["defaultLibrary"]),
            "DEFAULT_SAVE_TYPE": str(settings["defaultSaveType"]),
            "SEGMENT_SECONDS": str(settings["segmentSeconds"]),
            "SEGMENT_OVERLAP": str(settings["segmentOverlap"]),
            "RESULT_TEMPLATE": str(settings["resultTemplate"]),
        }
        retention = _retention(int(settings["logRetentionDays"]))
        self.fargate = FargateExtraction(self, "Fargate", environment=environment, log_retention=retention)
        self.workflow = FingerprintWorkflow(self, "Workflow", environment=environment, log_retention=retention,
                                            extra_substitutions=self.fargate.substitutions())
        self.fargate.allow_workflow(self.workflow.state_machine)
        fn = self.workflow.functions
        fn["Trigger"].add_environment("STATE_MACHINE_ARN", self.workflow.state_machine.state_machine_arn)
        self.ingestion.connect(fn["Trigger"])
        self._grant(storage)
        self.http_api = HttpApi(self, "Api", log_retention=retention, environment={
            **environment, "STATE_MACHINE_ARN": self.workflow.state_machine.state_machine_arn,
            "INPUT_BUCKET": self.buckets["InputBucket"].bucket_name})
        self._grant_api(storage)
        sources = [self.buckets["InputBucket"]] + [  # backfill imports read these (-c importSourceBuckets=a,b)
            s3.Bucket.from_bucket_name(self, f"ImportSource{i}", name.strip())
            for i, name in enumerate(str(settings["importSourceBuckets"]).split(",")) if name.strip()]
        self.imports = ImportWorkflow(self, "Imports", environment=environment, log_retention=retention,
                                      work_bucket=self.buckets["WorkBucket"], source_buckets=sources,
                                      tables=list(storage.tables.values()),
                                      max_concurrency=int(settings["importMaxConcurrency"]),
                                      work_export_name=self.export_names["WorkBucket"])
        self.imports.allow_start(self.http_api.function)  # POST /libraries/{id}/imports
        CfnOutput(self, "ApiUrl", value=self.http_api.api.url, description="mediadna HTTP API (SigV4: docs/api.md)")
        self.observability = Observability(
            self, "Observability", state_machine=self.workflow.state_machine,
            dead_letter_queues={"UploadDLQ": self.ingestion.dlq, "CallbackDLQ": self.notifications.callback_dlq},
        )
        self._acknowledge()

    def _grant(self, storage: Storage) -> None:
        """Least privilege: each function gets what its step does, on its resources only."""
        fn, t = self.workflow.functions, storage.tables
        input_bucket, output_bucket, work_bucket = (self.buckets[k] for k in ("InputBucket", "OutputBucket", "WorkBucket"))
        library_tables = [t["LibrariesTable"], t["FilesTable"], t["VisualTable"], t["AudioTable"]]
        self.workflow.state_machine.grant_start_execution(fn["Trigger"])
        for name in ("Trigger", "Publish", "Failure"):  # announce results
            self.notifications.callback_queue.grant_send_messages(fn[name])
            self.notifications.topic.grant_publish(fn[name])
        for name in ("Trigger", "Match", "Failure"):  # write result documents
            output_bucket.grant_put(fn[name])
        output_bucket.grant_read(fn["Publish"])
        for name in ("Split", "Extract"):  # read uploads (HEAD, GET, ranged GET, presigning)
            input_bucket.grant_read(fn[name])
        for name in ("Extract", "Split"):  # Split stores an uploaded fingerprint where Merge would
            work_bucket.grant_put(fn[name])
        work_bucket.grant_read_write(fn["Merge"])
        work_bucket.grant_read(fn["Match"])
        task = self.fargate.task.task_role  # the whole-input path: read the upload, write the fingerprint
        input_bucket.grant_read(task)
        work_bucket.grant_put(task)
        for table in library_tables:
            table.grant_read_data(fn["Split"])  # the library must exist before any work
            table.grant_read_write_data(fn["Match"])  # match, then commit
        for name in ("Split", "Match", "Failure"):  # job records
            t["JobsTable"].grant_read_write_data(fn[name])

    def _grant_api(self, storage: Storage) -> None:
        """The API function: the library and job tables, starting the workflow, reading uploads (HEAD on
        submit); a re-scan writes result documents and announces them like the Publish step."""
        fn = self.http_api.function
        for table in storage.tables.values():
            table.grant_read_write_data(fn)
        self.workflow.state_machine.grant_start_execution(fn)
        self.buckets["InputBucket"].grant_read(fn)
        self.buckets["OutputBucket"].grant_put(fn)
        self.notifications.callback_queue.grant_send_messages(fn)
        self.notifications.topic.grant_publish(fn)
        api = self.http_api.api
        acknowledge(fn, "AwsSolutions-IAM5[Resource::*]",
                    "X-Ray PutTraceSegments/PutTelemetryRecords take no resource (AWS requires '*').")
        acknowledge(self, "AwsSolutions-IAM5[Resource::MediaDnaData:ExportsOutputFnGetAttStorageJobsTableArn264A0272/index/*]",
                    "The jobs table's own indexes (library-created_at, all-created_at): list_jobs queries them.")
        acknowledge(api, "AwsSolutions-APIG3", "Every method requires AWS_IAM (SigV4) authorisation; "
                    "throttling is set on the stage. A WAF web ACL can be attached by the operator.")
        acknowledge(api, "AwsSolutions-COG4", "The API authorises with AWS IAM (SigV4), not Cognito user pools: "
                    "callers are AWS principals (services, roles).")
        acknowledge(api, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AmazonAPIGatewayPushToCloudWatchLogs]",
                    "API Gateway's account-level CloudWatch role (execution logging) uses the AWS managed policy.")

    def _acknowledge(self) -> None:
        """cdk-nag AwsSolutions findings that are accepted, each with its reason.

        Backed by tests/infra: no IAM statement has ``Resource: "*"`` except the
        X-Ray and log-delivery actions listed there, and every other wildcard is
        an object path (``<bucket>/*``) or a version/alias (``<function>:*``) of a
        resource this stack names.
        """
        acknowledge(
            self,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "AWSLambdaBasicExecutionRole only lets a function write its own CloudWatch logs.",
        )
        for function in self.workflow.functions.values():
            acknowledge(function, "AwsSolutions-IAM5[Resource::*]",
                        "X-Ray PutTraceSegments/PutTelemetryRecords take no resource (AWS requires '*').")
        for key, export in self.export_names.items():
            acknowledge(self, f"AwsSolutions-IAM5[Resource::{export}/*]",
                        f"Objects of the {key} (S3 object ARNs are paths under the bucket), for the steps that use it.")
        wildcard_reasons = {
            "Action::s3:GetObject*": "grant_read: GetObject, GetObjectVersion, GetObjectTagging... on the named bucket only.",
            "Action::s3:GetBucket*": "grant_read: bucket metadata of the named bucket only.",
            "Action::s3:List*": "grant_read: listing the named bucket only.",
            "Action::s3:DeleteObject*": "grant_read_write on the work bucket: a job's parts only live under jobs/.",
            "Action::s3:Abort*": "grant_put: aborting its own multipart uploads.",
            "Action::kms:GenerateDataKey*": "Publishing to the encrypted topic needs data keys of its key only.",
            "Action::kms:ReEncrypt*": "Granted with the topic key for encrypted publishing; limited to that key.",
        }
        for key, reason in wildcard_reasons.items():
            acknowledge(self, f"AwsSolutions-IAM5[{key}]", reason)
        acknowledge(self.workflow.state_machine, "AwsSolutions-IAM5[Resource::*]",
                    "Step Functions log delivery and X-Ray actions take no resource (AWS requires '*').")
        # CDK's own custom resource that writes the bucket notification configuration
        acknowledge(self, "AwsSolutions-IAM5[Action::s3:PutBucketNotification]",
                    "CDK's bucket-notification custom resource sets the upload notification of the input bucket.")
        acknowledge(self, "AwsSolutions-L1", "Only CDK's bucket-notification custom resource has a managed runtime; "
                    "CDK pins it. The mediadna functions are container images.")


_RETENTION = {1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
              60: "TWO_MONTHS", 90: "THREE_MONTHS", 180: "SIX_MONTHS", 365: "ONE_YEAR", 731: "TWO_YEARS",
              1827: "FIVE_YEARS", 3653: "TEN_YEARS"}


def _retention(days: int) -> logs.RetentionDays:
    """The CloudWatch retention closest to ``days``."""
    return getattr(logs.RetentionDays, _RETENTION[min(_RETENTION, key=lambda d: abs(d - days))])


# exposes iam for tests that build policies
__all__ = ["DataStack", "ProcessingStack", "iam"]
