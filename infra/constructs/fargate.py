"""Fargate extraction: the whole-input path for uploads Lambda cannot split (same image, one task)."""

from __future__ import annotations

from aws_cdk import Aws, IgnoreMode, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import DOCKERFILE, FARGATE_TASK, ROOT
from infra.nag import acknowledge


class FargateExtraction(Construct):
    def __init__(self, scope: Construct, cid: str, *, environment: dict[str, str], log_retention: logs.RetentionDays):
        super().__init__(scope, cid)
        # public subnets only: the task talks to S3 and DynamoDB, nothing talks to it (no NAT to pay for)
        self.vpc = ec2.Vpc(self, "Vpc", max_azs=2, nat_gateways=0, subnet_configuration=[
            ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24)])
        self.vpc.add_flow_log("FlowLogs", destination=ec2.FlowLogDestination.to_cloud_watch_logs(
            logs.LogGroup(self, "FlowLogGroup", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)))
        self.security_group = ec2.SecurityGroup(self, "TaskSecurityGroup", vpc=self.vpc, allow_all_outbound=True,
                                                description="mediadna Fargate extraction: outbound only")
        self.cluster = ecs.Cluster(self, "Cluster", vpc=self.vpc,
                                   container_insights_v2=ecs.ContainerInsights.ENABLED)
        cpu, memory, disk = FARGATE_TASK
        self.task = ecs.FargateTaskDefinition(self, "Task", cpu=cpu, memory_limit_mib=memory,
                                              ephemeral_storage_gib=disk)
        self.task.add_container(
            "extract",
            image=ecs.ContainerImage.from_asset(str(ROOT), file=DOCKERFILE, ignore_mode=IgnoreMode.DOCKER,
                                                platform=ecr_assets.Platform.LINUX_AMD64),
            entry_point=["python", "-m", "functions.fargate"],  # not the Lambda runtime interface
            environment=environment,
            logging=ecs.LogDriver.aws_logs(stream_prefix="extract", log_group=logs.LogGroup(
                self, "TaskLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)),
        )
        acknowledge(self.task, "AwsSolutions-ECS2",
                    "The environment holds resource names and settings only (no secrets); same as the functions'.")
        acknowledge(self.task, "AwsSolutions-IAM5[Resource::*]",
                    "ecr:GetAuthorizationToken takes no resource (AWS requires '*'); pulls are limited to the asset repository.")

    def substitutions(self) -> dict[str, str]:
        subnets = self.vpc.public_subnets
        return {
            "ClusterArn": self.cluster.cluster_arn,
            "TaskDefinitionArn": self.task.task_definition_arn,
            "SubnetA": subnets[0].subnet_id,
            "SubnetB": subnets[1].subnet_id,
            "TaskSecurityGroup": self.security_group.security_group_id,
        }

    def allow_workflow(self, state_machine: sfn.StateMachine) -> None:
        """What ecs:runTask.sync needs: run this task, pass its roles, follow it via the managed rule."""
        state_machine.add_to_role_policy(iam.PolicyStatement(
            sid="RunExtractionTask", actions=["ecs:RunTask"], resources=[self.task.task_definition_arn],
            conditions={"ArnEquals": {"ecs:cluster": self.cluster.cluster_arn}}))
        state_machine.add_to_role_policy(iam.PolicyStatement(
            sid="FollowExtractionTask", actions=["ecs:StopTask", "ecs:DescribeTasks"],
            resources=[f"arn:{Aws.PARTITION}:ecs:{Aws.REGION}:{Aws.ACCOUNT_ID}:task/{self.cluster.cluster_name}/*"]))
        acknowledge(state_machine, "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:"
                    f"task/<{Stack.of(self).get_logical_id(self.cluster.node.default_child)}>/*]",
                    "Tasks of this cluster only: their ids are made when the workflow runs them.")
        roles = [self.task.task_role.role_arn]
        if self.task.execution_role is not None:
            roles.append(self.task.execution_role.role_arn)
        state_machine.add_to_role_policy(iam.PolicyStatement(
            sid="PassExtractionRoles", actions=["iam:PassRole"], resources=roles))
        state_machine.add_to_role_policy(iam.PolicyStatement(
            sid="SyncRule", actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            resources=[f"arn:{Aws.PARTITION}:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:rule/StepFunctionsGetEventsForECSTaskRule"]))
