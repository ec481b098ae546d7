"""The HTTP API: API Gateway REST API (IAM authorisation on every method) -> one Lambda (the image).

Routes mirror functions/api/handler.py (and docs/openapi.json): :data:`API_ROUTES`.
The function runs from the container image (compare decodes media), may start
the fingerprint workflow, read uploads (HEAD for submits) and invoke itself
asynchronously (library deletions).
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, IgnoreMode, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import API_FUNCTION, API_ROUTES, API_THROTTLE, DOCKERFILE, ROOT


class HttpApi(Construct):
    def __init__(self, scope: Construct, cid: str, *, environment: dict[str, str], log_retention: logs.RetentionDays):
        super().__init__(scope, cid)
        stack = Stack.of(self)
        handler, memory, timeout = API_FUNCTION
        function_name = f"{stack.stack_name}-Api"  # named: its own ARN is known for the self-invoke grant
        self.log_group = logs.LogGroup(self, "FunctionLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        self.function = lambda_.DockerImageFunction(
            self, "Function", function_name=function_name,
            code=lambda_.DockerImageCode.from_image_asset(
                str(ROOT), file=DOCKERFILE, cmd=[handler], ignore_mode=IgnoreMode.DOCKER,
                platform=ecr_assets.Platform.LINUX_AMD64,
            ),
            memory_size=memory, timeout=Duration.seconds(timeout), tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            environment={**environment, "POWERTOOLS_SERVICE_NAME": "mediadna", "POWERTOOLS_METRICS_NAMESPACE": "MediaDNA"},
        )
        self.function.add_to_role_policy(iam.PolicyStatement(
            sid="AsyncLibraryDeletion", actions=["lambda:InvokeFunction"],
            resources=[stack.format_arn(service="lambda", resource="function", resource_name=function_name,
                                        arn_format=ArnFormat.COLON_RESOURCE_NAME)],
        ))
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        rate, burst = API_THROTTLE
        self.api = apigw.RestApi(
            self, "RestApi", rest_api_name=f"{stack.stack_name}-api",
            description="mediadna HTTP API (docs/api.md); every method needs SigV4-signed requests (AWS_IAM)",
            cloud_watch_role=True, cloud_watch_role_removal_policy=RemovalPolicy.DESTROY,
            endpoint_types=[apigw.EndpointType.REGIONAL],
            deploy_options=apigw.StageOptions(
                stage_name="v1", tracing_enabled=True, logging_level=apigw.MethodLoggingLevel.ERROR,
                metrics_enabled=True, throttling_rate_limit=rate, throttling_burst_limit=burst,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True, http_method=True, ip=True, protocol=True, request_time=True, resource_path=True,
                    response_length=True, status=True, user=True),
            ),
            default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
        )
        self.validator = self.api.add_request_validator(
            "RequestValidator", validate_request_body=True, validate_request_parameters=True)
        integration = apigw.LambdaIntegration(self.function)
        for method, path in API_ROUTES:
            resource = self.api.root.resource_for_path(path)
            resource.add_method(method, integration, authorization_type=apigw.AuthorizationType.IAM,
                                request_validator=self.validator)
        for name, kind in (("Default4xx", apigw.ResponseType.DEFAULT_4_XX), ("Default5xx", apigw.ResponseType.DEFAULT_5_XX)):
            self.api.add_gateway_response(  # gateway errors (e.g. a bad signature) in the API's error shape
                name, type=kind,
                templates={"application/json": '{"error": {"code": "$context.error.responseType", '
                                               '"message": $context.error.messageString}}'})
