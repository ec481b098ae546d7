"""The HTTP API in the processing stack: IAM on every method, logs, throttling, validation, the
function's environment and its (least-privilege) grants; the jobs table's indexes."""

from __future__ import annotations

from infra.config import API_FUNCTION, API_ROUTES, API_THROTTLE, STATEFUL_IDS
from mediadna.store.dynamodb import JOBS_BY_LIBRARY, JOBS_BY_TIME

from test_stacks import as_list, statements  # tests/infra/test_stacks.py


def api_function(assembly):
    (lid, fn), = [(k, v) for k, v in assembly.resources(assembly.processing, "AWS::Lambda::Function").items()
                  if v["Properties"].get("ImageConfig", {}).get("Command") == [API_FUNCTION[0]]]
    return lid, fn


def test_every_method_requires_iam_and_validates_requests(assembly):
    methods = assembly.resources(assembly.processing, "AWS::ApiGateway::Method")
    assert len(methods) == len(API_ROUTES)
    (validator,) = assembly.resources(assembly.processing, "AWS::ApiGateway::RequestValidator").values()
    assert validator["Properties"]["ValidateRequestBody"] and validator["Properties"]["ValidateRequestParameters"]
    for m in methods.values():
        props = m["Properties"]
        assert props["AuthorizationType"] == "AWS_IAM"
        assert props["Integration"]["Type"] == "AWS_PROXY"
        assert "RequestValidatorId" in props
    assert sorted(m["Properties"]["HttpMethod"] for m in methods.values()) == sorted(m for m, _ in API_ROUTES)


def test_routes_match_the_openapi_document():
    import json

    from functions.api.openapi import OPENAPI_FILE

    doc = json.loads(OPENAPI_FILE.read_text())
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert documented == set(API_ROUTES)


def test_stage_has_access_logs_tracing_and_throttling(assembly):
    (stage,) = assembly.resources(assembly.processing, "AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    assert props["TracingEnabled"] is True
    assert "DestinationArn" in props["AccessLogSetting"] and "$context.identity.caller" in props["AccessLogSetting"]["Format"]
    (setting,) = props["MethodSettings"]
    assert setting["ThrottlingRateLimit"] == API_THROTTLE[0] and setting["ThrottlingBurstLimit"] == API_THROTTLE[1]
    assert setting["LoggingLevel"] == "ERROR" and setting["MetricsEnabled"] is True


def test_api_function_environment(assembly):
    _, fn = api_function(assembly)
    props = fn["Properties"]
    env = props["Environment"]["Variables"]
    assert props["PackageType"] == "Image" and props["TracingConfig"]["Mode"] == "Active"
    for key in ("STATE_MACHINE_ARN", "INPUT_BUCKET", "MEDIADNA_STORE", "MEDIADNA_TABLE_JOBS", "MEDIADNA_TABLE_LIBRARIES",
                "OUTPUT_BUCKET", "DEFAULT_SAVE_TYPE"):
        assert key in env, key
    assert props["Timeout"] == API_FUNCTION[2] and props["MemorySize"] == API_FUNCTION[1]


def test_api_function_grants_are_least_privilege(assembly):
    fn_id, fn = api_function(assembly)
    role = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    actions = {}
    for _, policy, st in statements(assembly, assembly.processing):
        if {"Ref": role} not in policy["Properties"]["Roles"]:
            continue
        for action in as_list(st["Action"]):
            actions.setdefault(action, []).extend(as_list(st["Resource"]))
    assert "states:StartExecution" in actions
    assert any("lambda:InvokeFunction" == a for a in actions)  # itself, for async deletions
    (own,) = actions["lambda:InvokeFunction"]
    assert "function:" in str(own) and "-Api" in str(own)
    assert "dynamodb:Query" in actions and "dynamodb:PutItem" in actions
    # reads uploads; writes import plans (work bucket, imports/*: infra/constructs/imports.py) and
    # re-scan result documents (output bucket), nothing else
    writes = [str(r) for a, rs in actions.items() if a.startswith(("s3:Put", "s3:Delete")) for r in rs]
    assert any("/imports/*" in r for r in writes) and any("OutputBucket" in r for r in writes)
    assert all("/imports/*" in r or "OutputBucket" in r for r in writes), writes
    assert "sqs:SendMessage" in actions and "sns:Publish" in actions  # re-scan callbacks
    assert not any(a.startswith("s3:Delete") for a in actions)
    assert "s3:GetObject*" in actions
    star = {a for a, resources in actions.items() if "*" in resources}
    assert star <= {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def test_jobs_table_has_the_store_indexes_and_keeps_its_id(assembly):
    tables = assembly.resources(assembly.data, "AWS::DynamoDB::Table")
    jobs = tables[STATEFUL_IDS["JobsTable"]]["Properties"]
    indexes = {i["IndexName"]: i for i in jobs["GlobalSecondaryIndexes"]}
    assert set(indexes) == {JOBS_BY_LIBRARY, JOBS_BY_TIME}
    assert [k["AttributeName"] for k in indexes[JOBS_BY_LIBRARY]["KeySchema"]] == ["library", "created_at"]
    assert [k["AttributeName"] for k in indexes[JOBS_BY_TIME]["KeySchema"]] == ["scope", "created_at"]
    assert all(i["Projection"]["ProjectionType"] == "ALL" for i in indexes.values())


def test_one_index_at_a_time_for_existing_deployments(tmp_path):
    """``-c jobsIndexes=1`` deploys the first index only (CloudFormation adds one GSI per update)."""
    from aws_cdk.assertions import Template

    from infra.app import build_app

    _, data, _ = build_app(context={"jobsIndexes": 1}, outdir=str(tmp_path))
    jobs = Template.from_stack(data).to_json()["Resources"][STATEFUL_IDS["JobsTable"]]["Properties"]
    assert [i["IndexName"] for i in jobs["GlobalSecondaryIndexes"]] == [JOBS_BY_LIBRARY]
