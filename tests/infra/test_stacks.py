"""Targeted assertions on the synthesised stacks (no snapshots) and the cdk-nag gate."""

from __future__ import annotations

import json
import re

import pytest

from infra.config import (
    FARGATE_TASK,
    FUNCTIONS,
    STATEFUL_IDS,
    WORKFLOW_FARGATE_PLACEHOLDERS,
    WORKFLOW_FILE,
    WORKFLOW_SUBSTITUTIONS,
)

#: The only actions allowed on Resource "*" (AWS offers no resource-level permission for them).
STAR_ALLOWED = {
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
    "ecr:GetAuthorizationToken",
}


def as_list(x):
    return x if isinstance(x, list) else [x]


def statements(assembly, stack):
    for lid, policy in assembly.resources(stack, "AWS::IAM::Policy").items():
        for st in policy["Properties"]["PolicyDocument"]["Statement"]:
            yield lid, policy, st


def test_synth_passes_cdk_nag(assembly):
    report = assembly.outdir / "validation-report.json"
    violations = []
    if report.exists():
        for plugin in json.loads(report.read_text())["pluginReports"]:
            violations += plugin.get("violations", [])
    assert violations == []


def test_cdk_nag_runs_on_every_synth(tmp_path):
    """An unacknowledged finding fails synthesis (so the gate above is real)."""
    from aws_cdk import App, Stack, Validations
    from aws_cdk import aws_sqs as sqs
    from cdk_nag import AwsSolutionsChecks

    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Bad")
    sqs.Queue(stack, "NoDlqNoTls")
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(Exception, match=r"AwsSolutions-SQS3[\s\S]*AwsSolutions-SQS4"):
        app.synth()


def test_resource_counts(assembly):
    data, proc = assembly.template(assembly.data), assembly.template(assembly.processing)
    data.resource_count_is("AWS::S3::Bucket", 4)
    data.resource_count_is("AWS::DynamoDB::Table", 5)
    proc.resource_count_is("AWS::SQS::Queue", 4)
    proc.resource_count_is("AWS::SNS::Topic", 1)
    proc.resource_count_is("AWS::StepFunctions::StateMachine", 2)  # fingerprint workflow, imports (test_import_workflow.py)
    functions = assembly.resources(assembly.processing, "AWS::Lambda::Function").values()
    images = [f for f in functions if f["Properties"].get("PackageType") == "Image"]
    zips = [f for f in functions if f["Properties"].get("Layers")]
    # the workflow's image functions, the HTTP API's (tests/infra/test_api_stack.py), the import item's (test_import_workflow.py)
    assert len(images) == sum(spec[3] == "image" for spec in FUNCTIONS.values()) + 2 == 6
    assert len(zips) == sum(spec[3] == "zip" for spec in FUNCTIONS.values()) == 3
    proc.resource_count_is("AWS::Lambda::LayerVersion", 1)
    # nothing that holds data lives in the processing stack
    for kind in ("AWS::S3::Bucket", "AWS::DynamoDB::Table"):
        proc.resource_count_is(kind, 0)


def test_stateful_resources_keep_their_ids_and_are_retained(assembly):
    resources = assembly.templates[assembly.data.stack_name]["Resources"]
    for logical_id in STATEFUL_IDS.values():
        assert logical_id in resources, logical_id
        assert resources[logical_id]["DeletionPolicy"] == "Retain"
        assert resources[logical_id]["UpdateReplacePolicy"] == "Retain"


def test_buckets_are_private_encrypted_and_tls_only(assembly):
    buckets = assembly.resources(assembly.data, "AWS::S3::Bucket")
    for lid, b in buckets.items():
        props = b["Properties"]
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"], lid
        assert all(props["PublicAccessBlockConfiguration"].values()), lid
    assert buckets[STATEFUL_IDS["InputBucket"]]["Properties"]["VersioningConfiguration"]["Status"] == "Enabled"
    rules = buckets[STATEFUL_IDS["WorkBucket"]]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert any(r.get("Prefix") == "jobs/" and r.get("ExpirationInDays") for r in rules)
    tls_denied = set()
    for policy in assembly.resources(assembly.data, "AWS::S3::BucketPolicy").values():
        for st in policy["Properties"]["PolicyDocument"]["Statement"]:
            if st["Effect"] == "Deny" and st.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false":
                tls_denied.add(policy["Properties"]["Bucket"]["Ref"])
    assert tls_denied == set(buckets)


def test_tables_are_encrypted_with_point_in_time_recovery(assembly):
    for lid, t in assembly.resources(assembly.data, "AWS::DynamoDB::Table").items():
        props = t["Properties"]
        assert props["SSESpecification"]["SSEEnabled"] is True, lid
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True, lid
        assert props["BillingMode"] == "PAY_PER_REQUEST"
    files = assembly.resources(assembly.data, "AWS::DynamoDB::Table")[STATEFUL_IDS["FilesTable"]]["Properties"]
    assert [k["AttributeName"] for k in files["KeySchema"]] == ["lib", "k"]  # what the adapter expects


def test_every_queue_has_a_dead_letter_queue_encryption_and_tls(assembly):
    queues = assembly.resources(assembly.processing, "AWS::SQS::Queue")
    with_dlq = {k for k, q in queues.items() if "RedrivePolicy" in q["Properties"]}
    dlqs = {q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0] for k, q in queues.items() if k in with_dlq}
    assert len(with_dlq) == 2 and with_dlq | dlqs == set(queues) and not with_dlq & dlqs
    assert all(q["Properties"].get("SqsManagedSseEnabled") for q in queues.values())
    tls = set()
    for policy in assembly.resources(assembly.processing, "AWS::SQS::QueuePolicy").values():
        for st in policy["Properties"]["PolicyDocument"]["Statement"]:
            if st["Effect"] == "Deny" and st.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false":
                tls |= {q["Ref"] for q in policy["Properties"]["Queues"]}
    assert tls == set(queues)
    alarmed = {json.dumps(a["Properties"].get("Dimensions")) for a in assembly.resources(assembly.processing, "AWS::CloudWatch::Alarm").values()}
    for dlq in dlqs:
        assert any(dlq in d for d in alarmed), f"no depth alarm on {dlq}"


def test_upload_notifications_queue_policy_is_limited_to_the_bucket_and_account(assembly):
    found = False
    for policy in assembly.resources(assembly.processing, "AWS::SQS::QueuePolicy").values():
        for st in policy["Properties"]["PolicyDocument"]["Statement"]:
            if st.get("Sid") == "S3UploadNotifications":
                found = True
                assert st["Principal"] == {"Service": "s3.amazonaws.com"} and st["Action"] == "sqs:SendMessage"
                assert "aws:SourceArn" in st["Condition"]["ArnEquals"]
                assert st["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert found
    queues = assembly.resources(assembly.processing, "AWS::SQS::Queue")
    upload = next(q for k, q in queues.items() if k.startswith("IngestionUploadQueue") and "RedrivePolicy" in q["Properties"])
    assert upload["Properties"]["VisibilityTimeout"] >= 6 * FUNCTIONS["Trigger"][2]
    esm = next(iter(assembly.resources(assembly.processing, "AWS::Lambda::EventSourceMapping").values()))
    assert esm["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_topic_is_encrypted_with_a_rotating_key(assembly):
    (topic,) = assembly.resources(assembly.processing, "AWS::SNS::Topic").values()
    assert "KmsMasterKeyId" in topic["Properties"]
    (key,) = assembly.resources(assembly.processing, "AWS::KMS::Key").values()
    assert key["Properties"]["EnableKeyRotation"] is True


def test_state_machine_runs_the_workflow_file(assembly):
    (sm,) = [v for k, v in assembly.resources(assembly.processing, "AWS::StepFunctions::StateMachine").items()
             if k.startswith("Workflow")]
    props = sm["Properties"]
    asset = assembly.outdir / f"asset.{props['DefinitionS3Location']['Key']}"
    assert asset.read_bytes() == WORKFLOW_FILE.read_bytes()  # the very file tests/e2e executes
    placeholders = set(re.findall(r"\$\{(\w+)\}", WORKFLOW_FILE.read_text()))
    assert set(props["DefinitionSubstitutions"]) == placeholders == set(WORKFLOW_SUBSTITUTIONS) | set(WORKFLOW_FARGATE_PLACEHOLDERS)
    functions = assembly.resources(assembly.processing, "AWS::Lambda::Function")
    for key, value in props["DefinitionSubstitutions"].items():
        if key not in WORKFLOW_SUBSTITUTIONS:
            continue
        assert value["Fn::GetAtt"][0] in functions and value["Fn::GetAtt"][0].startswith(f"Workflow{WORKFLOW_SUBSTITUTIONS[key]}")
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["TracingConfiguration"]["Enabled"] is True


def test_no_iam_statement_grants_star_resources_without_reason(assembly):
    for lid, _, st in statements(assembly, assembly.processing):
        if "*" in as_list(st.get("Resource")):
            assert set(as_list(st["Action"])) <= STAR_ALLOWED, (lid, st["Action"])


def test_state_machine_may_invoke_only_its_functions(assembly):
    functions = assembly.resources(assembly.processing, "AWS::Lambda::Function")
    invoked = set()
    for lid, _, st in statements(assembly, assembly.processing):
        if lid.startswith("WorkflowStateMachineRole") and "lambda:InvokeFunction" in as_list(st["Action"]):
            invoked |= {r["Fn::GetAtt"][0] for r in as_list(st["Resource"])}
    expected = {k for k in functions if any(k.startswith(f"Workflow{n}") for n in WORKFLOW_SUBSTITUTIONS.values())}
    assert invoked == expected and len(expected) == len(WORKFLOW_SUBSTITUTIONS)


def _actions_of(assembly, function: str) -> set[str]:
    out = set()
    for lid, policy, st in statements(assembly, assembly.processing):
        if lid.startswith(f"Workflow{function}ServiceRole"):
            out |= set(as_list(st["Action"]))
    return out


def test_each_function_gets_only_what_its_step_does(assembly):
    extract = _actions_of(assembly, "Extract")
    assert not any(a.startswith("dynamodb:") for a in extract)  # extraction never touches the library
    assert not any(a.startswith(("sns:", "sqs:", "states:")) for a in extract)
    trigger = _actions_of(assembly, "Trigger")
    assert "states:StartExecution" in trigger and not any(a.startswith("dynamodb:") for a in trigger)
    assert {"dynamodb:BatchWriteItem", "dynamodb:UpdateItem", "dynamodb:BatchGetItem"} <= _actions_of(assembly, "Match")
    publish = _actions_of(assembly, "Publish")
    assert {"sns:Publish", "sqs:SendMessage"} <= publish and not any(a.startswith("dynamodb:") for a in publish)


def test_functions_are_traced_with_log_retention_image_or_layer(assembly):
    functions = {k: f for k, f in assembly.resources(assembly.processing, "AWS::Lambda::Function").items()
                 if any(k.startswith(f"Workflow{n}") for n in FUNCTIONS)}
    assert len(functions) == len(FUNCTIONS)
    groups = assembly.resources(assembly.processing, "AWS::Logs::LogGroup")
    (layer_id,) = assembly.resources(assembly.processing, "AWS::Lambda::LayerVersion")
    for lid, f in functions.items():
        props = f["Properties"]
        assert props["TracingConfig"]["Mode"] == "Active", lid
        name = next(n for n in FUNCTIONS if lid.startswith(f"Workflow{n}"))
        handler, memory, timeout, package = FUNCTIONS[name]
        if package == "image":
            assert props["PackageType"] == "Image" and props["ImageConfig"]["Command"] == [handler]
        else:  # light: the Python runtime, the handler from the shared layer
            assert props["Handler"] == handler and props["Runtime"].startswith("python3.")
            assert props["Layers"] == [{"Ref": layer_id}]
        assert (props["MemorySize"], props["Timeout"]) == (memory, timeout)
        assert props["LoggingConfig"]["LogGroup"]["Ref"] in groups
        env = props["Environment"]["Variables"]
        assert env["MEDIADNA_STORE"] == "dynamodb:" and "MEDIADNA_TABLE_FILES" in env
    assert all(g["Properties"].get("RetentionInDays") for g in groups.values())


def test_dashboard_and_alarms(assembly):
    (dash,) = assembly.resources(assembly.processing, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dash["Properties"]["DashboardBody"])
    for word in ("Jobs", "Job duration", "DuplicatesFound", "Dead-letter queues"):
        assert word in body
    assert len(assembly.resources(assembly.processing, "AWS::CloudWatch::Alarm")) >= 3


def test_fargate_path_for_inputs_lambda_cannot_split(assembly):
    res = lambda kind: assembly.resources(assembly.processing, kind)
    (task,) = res("AWS::ECS::TaskDefinition").values()
    props = task["Properties"]
    cpu, memory, disk = FARGATE_TASK
    assert (props["Cpu"], props["Memory"], props["EphemeralStorage"]["SizeInGiB"]) == (str(cpu), str(memory), disk)
    (container,) = props["ContainerDefinitions"]
    assert container["Name"] == "extract" and container["EntryPoint"] == ["python", "-m", "functions.fargate"]
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    (cluster,) = res("AWS::ECS::Cluster").values()
    assert {"Name": "containerInsights", "Value": "enabled"} in cluster["Properties"]["ClusterSettings"]
    assert len(res("AWS::EC2::FlowLog")) == 1
    for sg in res("AWS::EC2::SecurityGroup").values():
        assert not sg["Properties"].get("SecurityGroupIngress")
    (task_id,) = res("AWS::ECS::TaskDefinition")
    run = [st for lid, _, st in statements(assembly, assembly.processing)
           if lid.startswith("WorkflowStateMachineRole") and st.get("Sid") == "RunExtractionTask"]
    assert run and run[0]["Resource"] == {"Ref": task_id}
    passed = [st for lid, _, st in statements(assembly, assembly.processing)
              if lid.startswith("WorkflowStateMachineRole") and st.get("Action") == "iam:PassRole"]
    assert passed and all("Fn::GetAtt" in r for r in as_list(passed[0]["Resource"]))


def test_python_m_infra_app_synthesises_offline(tmp_path):
    """What the README says: `python -m infra.app` alone, no CDK CLI, no Docker."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("CDK_")}
    out = subprocess.run([sys.executable, "-m", "infra.app"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "no unacknowledged findings" in out.stdout
    assert {"MediaDnaData.template.json", "MediaDnaProcessing.template.json"} <= {p.name for p in (tmp_path / "cdk.out").iterdir()}
