"""The import workflow in the synthesised processing stack (infra/constructs/imports.py)."""

from __future__ import annotations

import json
import re

from infra.config import IMPORT_BUCKET_PLACEHOLDER, IMPORT_FUNCTIONS, IMPORT_SUBSTITUTIONS, IMPORT_WORKFLOW_FILE


def as_list(x):
    return x if isinstance(x, list) else [x]


def import_machine(assembly) -> tuple[str, dict]:
    (found,) = [(k, v) for k, v in assembly.resources(assembly.processing, "AWS::StepFunctions::StateMachine").items()
                if k.startswith("Imports")]
    return found


def role_statements(assembly, role_id: str):
    for _, policy in assembly.resources(assembly.processing, "AWS::IAM::Policy").items():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            yield from policy["Properties"]["PolicyDocument"]["Statement"]


def test_the_import_state_machine_runs_the_file_with_its_substitutions(assembly):
    _, sm = import_machine(assembly)
    props = sm["Properties"]
    asset = assembly.outdir / f"asset.{props['DefinitionS3Location']['Key']}"
    assert asset.read_bytes() == IMPORT_WORKFLOW_FILE.read_bytes()  # the file tests/e2e/test_import.py runs
    placeholders = set(re.findall(r"\$\{(\w+)\}", IMPORT_WORKFLOW_FILE.read_text()))
    assert set(props["DefinitionSubstitutions"]) == placeholders == set(IMPORT_SUBSTITUTIONS) | {IMPORT_BUCKET_PLACEHOLDER}
    assert props["StateMachineName"] == "MediaDnaProcessing-imports"  # named: its role names its own ARN
    assert props["TracingConfiguration"]["Enabled"] is True and props["LoggingConfiguration"]["Level"] == "ALL"


def test_the_map_is_distributed_capped_and_tolerant():
    doc = json.loads(IMPORT_WORKFLOW_FILE.read_text())
    items = doc["States"]["Items"]
    assert items["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert items["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
    assert items["MaxConcurrencyPath"] == "$.max_concurrency" and items["ToleratedFailurePercentage"] == 100
    task = items["ItemProcessor"]["States"]["ImportItem"]
    assert "LibraryBusyError" in task["Retry"][0]["ErrorEquals"] and task["Catch"][0]["Next"] == "RecordItemFailure"
    assert items["Next"] == "Finish" and items["Catch"][0]["Next"] == "RecordImportFailure"


def test_state_machine_role_is_least_privilege(assembly):
    _, sm = import_machine(assembly)
    role = sm["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    by_sid = {st.get("Sid"): st for st in role_statements(assembly, role)}
    invoke = by_sid["InvokeImportFunction"]
    assert [r["Fn::GetAtt"][0] for r in as_list(invoke["Resource"])] == [
        k for k in assembly.resources(assembly.processing, "AWS::Lambda::Function") if k.startswith("ImportsImportItem")]
    assert by_sid["DistributedMapRunsItself"]["Action"] == "states:StartExecution"
    assert "stateMachine:" in json.dumps(by_sid["DistributedMapRunsItself"]["Resource"])
    assert "execution:" in json.dumps(by_sid["DistributedMapChildExecutions"]["Resource"])
    assert "/imports/*" in json.dumps(by_sid["ReadImportPlans"]["Resource"])
    assert "/imports/results/*" in json.dumps(by_sid["WriteMapResults"]["Resource"])
    for st in role_statements(assembly, role):
        if "*" in as_list(st["Resource"]):
            assert all(a.startswith(("xray:", "logs:")) for a in as_list(st["Action"])), st


def test_item_function_is_the_image_with_library_access_and_the_api_may_start_imports(assembly):
    functions = assembly.resources(assembly.processing, "AWS::Lambda::Function")
    (fid,) = [k for k in functions if k.startswith("ImportsImportItem")]
    props = functions[fid]["Properties"]
    handler, memory, timeout, _ = IMPORT_FUNCTIONS["ImportItem"]
    assert props["PackageType"] == "Image" and props["ImageConfig"]["Command"] == [handler]
    assert (props["MemorySize"], props["Timeout"]) == (memory, timeout)
    actions = set()
    for st in role_statements(assembly, props["Role"]["Fn::GetAtt"][0]):
        actions |= set(as_list(st["Action"]))
    assert {"dynamodb:UpdateItem", "dynamodb:BatchGetItem", "s3:GetObject*"} <= actions
    assert not any(a.startswith(("states:", "s3:Put", "s3:Delete", "sns:", "sqs:")) for a in actions)
    (api_id,) = [k for k in functions if k.startswith("ApiFunction")]
    env = functions[api_id]["Properties"]["Environment"]["Variables"]
    assert {"IMPORT_STATE_MACHINE_ARN", "IMPORT_MAX_CONCURRENCY", "IMPORT_SOURCE_BUCKETS"} <= set(env)
    assert env["IMPORT_MAX_CONCURRENCY"] == "40"
