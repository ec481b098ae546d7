"""Fingerprint workflow: the functions (one container image) and the state machine from its file."""

from __future__ import annotations

from aws_cdk import BundlingOptions, Duration, IgnoreMode, RemovalPolicy
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import DOCKERFILE, FUNCTIONS, LAYER_DIR, ROOT, WORKFLOW_FILE, WORKFLOW_SUBSTITUTIONS

#: Runtime of the zip functions and their layer.
RUNTIME = lambda_.Runtime.PYTHON_3_14  # the latest (cdk-nag AwsSolutions-L1)


class FingerprintWorkflow(Construct):
    def __init__(self, scope: Construct, cid: str, *, environment: dict[str, str], log_retention: logs.RetentionDays,
                 extra_substitutions: dict[str, str] | None = None):
        super().__init__(scope, cid)
        self.functions: dict[str, lambda_.Function] = {}
        # the shared layer: its requirements plus src/mediadna and functions/ (bundled with Docker at deploy)
        self.layer = lambda_.LayerVersion(
            self, "CommonLayer",
            code=lambda_.Code.from_asset(str(ROOT), ignore_mode=IgnoreMode.DOCKER, bundling=BundlingOptions(
                image=RUNTIME.bundling_image,
                command=["bash", "-c", f"pip install --no-cache-dir -r {LAYER_DIR}/requirements.txt -t /asset-output/python"
                         " && cp -r src/mediadna functions /asset-output/python/"],
            )),
            compatible_runtimes=[RUNTIME],
            description="mediadna light functions: mediadna, functions/, numpy, pynamodb, Powertools",
        )
        for name, (handler, memory, timeout, package) in FUNCTIONS.items():
            log_group = logs.LogGroup(self, f"{name}Logs", retention=log_retention,
                                      removal_policy=RemovalPolicy.DESTROY)
            common = dict(
                memory_size=memory, timeout=Duration.seconds(timeout), tracing=lambda_.Tracing.ACTIVE,
                log_group=log_group,
                environment={**environment, "POWERTOOLS_SERVICE_NAME": "mediadna",
                             "POWERTOOLS_METRICS_NAMESPACE": "MediaDNA"},
            )
            if package == "image":
                self.functions[name] = lambda_.DockerImageFunction(
                    self, name,
                    code=lambda_.DockerImageCode.from_image_asset(
                        str(ROOT), file=DOCKERFILE, cmd=[handler], ignore_mode=IgnoreMode.DOCKER,
                        platform=ecr_assets.Platform.LINUX_AMD64,
                    ),
                    **common,
                )
            else:  # "functions.<step>.handler" resolves in the layer (/opt/python/functions/...)
                self.functions[name] = lambda_.Function(
                    self, name, runtime=RUNTIME, handler=handler, layers=[self.layer],
                    code=lambda_.Code.from_asset(str(ROOT / "functions"), exclude=["Dockerfile", "**/__pycache__"]),
                    **common,
                )
        self.log_group = logs.LogGroup(self, "WorkflowLogs", retention=log_retention,
                                       removal_policy=RemovalPolicy.DESTROY)
        self.state_machine = sfn.StateMachine(
            self, "StateMachine",
            definition_body=sfn.DefinitionBody.from_file(str(WORKFLOW_FILE)),
            definition_substitutions={**{key: self.functions[name].function_arn
                                         for key, name in WORKFLOW_SUBSTITUTIONS.items()},
                                      **(extra_substitutions or {})},
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True,
            timeout=Duration.hours(6),
        )
        # the state machine may invoke only its own functions (unqualified ARNs: no ':*' versions/aliases)
        self.state_machine.add_to_role_policy(iam.PolicyStatement(
            sid="InvokeWorkflowFunctions", actions=["lambda:InvokeFunction"],
            resources=[self.functions[name].function_arn for name in WORKFLOW_SUBSTITUTIONS.values()],
        ))
