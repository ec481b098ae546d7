"""Storage: the buckets and the library tables (stateful: retained when the stack goes)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as ddb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.nag import acknowledge

from infra.config import STATEFUL_IDS

#: (construct id, partition key, sort key) of each table, as mediadna.store.dynamodb expects them.
TABLES = {
    "LibrariesTable": ("name", None),
    "FilesTable": ("lib", "k"),
    "VisualTable": ("t", None),
    "AudioTable": ("t", None),
    "JobsTable": ("job_id", None),
}
#: Global secondary indexes of the jobs table (name, partition key, sort key), as
#: mediadna.store.dynamodb's list_jobs queries them.  CloudFormation adds one GSI
#: per table update: a deployment whose jobs table predates them deploys once with
#: ``-c jobsIndexes=1``, then again without it.
JOBS_INDEXES = (("library-created_at", "library", "created_at"), ("all-created_at", "scope", "created_at"))


def _bucket(scope: Construct, cid: str, **kw) -> s3.Bucket:
    bucket = s3.Bucket(
        scope, cid,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        removal_policy=RemovalPolicy.RETAIN,
        **kw,
    )
    bucket.node.default_child.override_logical_id(STATEFUL_IDS[cid])
    return bucket


class Storage(Construct):
    def __init__(self, scope: Construct, cid: str, *, work_retention_days: int, jobs_indexes: int = len(JOBS_INDEXES)):
        super().__init__(scope, cid)
        self.access_logs = _bucket(
            self, "AccessLogsBucket",
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,  # server access log delivery needs ACLs
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
        )
        acknowledge(self.access_logs, "AwsSolutions-S1", "This is the access-log bucket of the other buckets; logging it to itself would loop."
        )
        logs = dict(server_access_logs_bucket=self.access_logs)
        self.input_bucket = _bucket(
            self, "InputBucket", versioned=True, server_access_logs_prefix="input/",
            lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=Duration.days(30))], **logs,
        )
        self.output_bucket = _bucket(self, "OutputBucket", server_access_logs_prefix="output/", **logs)
        self.work_bucket = _bucket(
            self, "WorkBucket", server_access_logs_prefix="work/",
            lifecycle_rules=[s3.LifecycleRule(prefix="jobs/", expiration=Duration.days(work_retention_days))], **logs,
        )
        self.tables: dict[str, ddb.Table] = {}
        for cid, (pk, sk) in TABLES.items():
            table = ddb.Table(
                self, cid,
                partition_key=ddb.Attribute(name=pk, type=ddb.AttributeType.STRING),
                sort_key=ddb.Attribute(name=sk, type=ddb.AttributeType.STRING) if sk else None,
                billing_mode=ddb.BillingMode.PAY_PER_REQUEST,
                encryption=ddb.TableEncryption.AWS_MANAGED,
                point_in_time_recovery_specification=ddb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True),
                removal_policy=RemovalPolicy.RETAIN,
            )
            table.node.default_child.override_logical_id(STATEFUL_IDS[cid])
            self.tables[cid] = table
        for name, pk, sk in JOBS_INDEXES[: max(0, int(jobs_indexes))]:
            self.tables["JobsTable"].add_global_secondary_index(
                index_name=name, partition_key=ddb.Attribute(name=pk, type=ddb.AttributeType.STRING),
                sort_key=ddb.Attribute(name=sk, type=ddb.AttributeType.STRING), projection_type=ddb.ProjectionType.ALL,
            )

    def table_environment(self) -> dict[str, str]:
        """MEDIADNA_TABLE_* for the functions (what DynamoDBConfig.from_prefix reads)."""
        names = {"LibrariesTable": "LIBRARIES", "FilesTable": "FILES", "VisualTable": "VISUAL",
                 "AudioTable": "AUDIO", "JobsTable": "JOBS"}
        return {f"MEDIADNA_TABLE_{names[cid]}": t.table_name for cid, t in self.tables.items()}
