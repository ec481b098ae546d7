"""Backfill imports: the item function (container image) and the import workflow from its file.

The workflow (``infra/workflow/import.asl.json``) is a distributed map: Step
Functions starts a child execution of this state machine per batch of items,
so its role may start, describe and stop executions of itself; it reads the
import's plan and writes the map run's result manifest under ``imports/`` of
the work bucket.  The item function reads the source buckets and writes the
library and the import record; whoever starts imports (the HTTP API) gets
:meth:`ImportWorkflow.allow_start`.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, IgnoreMode, RemovalPolicy, Stack
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import (
    DOCKERFILE,
    IMPORT_BUCKET_PLACEHOLDER,
    IMPORT_FUNCTIONS,
    IMPORT_SUBSTITUTIONS,
    IMPORT_WORKFLOW_FILE,
    ROOT,
)
from infra.nag import acknowledge

#: Where plans (``imports/<id>/plan.json``) and map results (``imports/results/...``) live in the work bucket.
IMPORTS_PREFIX = "imports/"


class ImportWorkflow(Construct):
    def __init__(self, scope: Construct, cid: str, *, environment: dict[str, str], log_retention: logs.RetentionDays,
                 work_bucket: s3.IBucket, source_buckets: list[s3.IBucket], tables: list, max_concurrency: int,
                 work_export_name: str = "WorkBucketArn"):
        super().__init__(scope, cid)
        stack = Stack.of(self)
        self.work_bucket, self.source_buckets, self.max_concurrency = work_bucket, source_buckets, int(max_concurrency)
        self.functions: dict[str, lambda_.Function] = {}
        for name, (handler, memory, timeout, _package) in IMPORT_FUNCTIONS.items():
            log_group = logs.LogGroup(self, f"{name}Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
            self.functions[name] = lambda_.DockerImageFunction(
                self, name,
                code=lambda_.DockerImageCode.from_image_asset(  # the workflow's image (same asset hash: one image)
                    str(ROOT), file=DOCKERFILE, cmd=[handler], ignore_mode=IgnoreMode.DOCKER,
                    platform=ecr_assets.Platform.LINUX_AMD64,
                ),
                memory_size=memory, timeout=Duration.seconds(timeout), tracing=lambda_.Tracing.ACTIVE,
                log_group=log_group,
                environment={**environment, "POWERTOOLS_SERVICE_NAME": "mediadna",
                             "POWERTOOLS_METRICS_NAMESPACE": "MediaDNA"},
            )
        item = self.functions["ImportItem"]
        # a fixed name: the role must name the state machine's own ARN (distributed map children)
        self.state_machine_name = f"{stack.stack_name}-imports"
        own_arn = stack.format_arn(service="states", resource="stateMachine", resource_name=self.state_machine_name,
                                   arn_format=ArnFormat.COLON_RESOURCE_NAME)
        executions = stack.format_arn(service="states", resource="execution",
                                      resource_name=f"{self.state_machine_name}/*", arn_format=ArnFormat.COLON_RESOURCE_NAME)
        self.log_group = logs.LogGroup(self, "ImportLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        self.state_machine = sfn.StateMachine(
            self, "StateMachine",
            state_machine_name=self.state_machine_name,
            definition_body=sfn.DefinitionBody.from_file(str(IMPORT_WORKFLOW_FILE)),
            definition_substitutions={**{key: self.functions[name].function_arn for key, name in IMPORT_SUBSTITUTIONS.items()},
                                      IMPORT_BUCKET_PLACEHOLDER: work_bucket.bucket_name},
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            tracing_enabled=True,
            timeout=Duration.days(7),
        )
        role = self.state_machine.role
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="InvokeImportFunction", actions=["lambda:InvokeFunction"], resources=[item.function_arn]))
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="DistributedMapRunsItself", actions=["states:StartExecution"], resources=[own_arn]))
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="DistributedMapChildExecutions", actions=["states:DescribeExecution", "states:StopExecution"],
            resources=[executions]))
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="ReadImportPlans", actions=["s3:GetObject"], resources=[work_bucket.arn_for_objects(f"{IMPORTS_PREFIX}*")]))
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="WriteMapResults", actions=["s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts",
                                            "s3:AbortMultipartUpload"],
            resources=[work_bucket.arn_for_objects(f"{IMPORTS_PREFIX}results/*")]))
        # the item task: read the sources, write the library and the import record
        for bucket in source_buckets:
            bucket.grant_read(item)
        for table in tables:
            table.grant_read_write_data(item)
        acknowledge(item, "AwsSolutions-IAM5[Resource::*]",
                    "X-Ray PutTraceSegments/PutTelemetryRecords take no resource (AWS requires '*').")
        acknowledge(self.state_machine, "AwsSolutions-IAM5[Resource::*]",
                    "Step Functions log delivery and X-Ray actions take no resource (AWS requires '*').")
        acknowledge(self.state_machine, f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:"
                    f"<AWS::AccountId>:execution:{self.state_machine_name}/*]",
                    "The distributed map describes and stops its own child executions (named by Step Functions).")
        work_export = self.work_export = work_export_name
        acknowledge(self.state_machine, f"AwsSolutions-IAM5[Resource::{work_export}/{IMPORTS_PREFIX}*]",
                    "Import plans (imports/<id>/plan.json) are read by the map's ItemReader.")
        acknowledge(self.state_machine, f"AwsSolutions-IAM5[Resource::{work_export}/{IMPORTS_PREFIX}results/*]",
                    "The map run writes its result manifest under imports/results/ (names chosen by Step Functions).")

    def allow_start(self, starter: lambda_.Function) -> None:
        """What starting an import needs (the API's POST /libraries/{id}/imports): list and read
        the sources (prefix listing, manifests), write the plan, start the execution."""
        self.state_machine.grant_start_execution(starter)
        acknowledge(starter, f"AwsSolutions-IAM5[Resource::{self.work_export}/{IMPORTS_PREFIX}*]",
                    "Writing import plans (imports/<id>/plan.json) of the work bucket.")
        self.work_bucket.grant_put(starter, f"{IMPORTS_PREFIX}*")
        for bucket in self.source_buckets:
            bucket.grant_read(starter)
        starter.add_environment("IMPORT_STATE_MACHINE_ARN", self.state_machine.state_machine_arn)
        starter.add_environment("IMPORT_MAX_CONCURRENCY", str(self.max_concurrency))
        starter.add_environment("IMPORT_SOURCE_BUCKETS", ",".join(b.bucket_name for b in self.source_buckets))
