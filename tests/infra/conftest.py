"""Infra suite: synthesise the CDK app once (offline, from Python alone) and inspect its templates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytest_socket import disable_socket, enable_socket


@pytest.fixture(autouse=True)
def _no_network():
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()


class Assembly:
    def __init__(self, outdir: Path, app, data, processing):
        self.outdir, self.app, self.data, self.processing = outdir, app, data, processing
        self.templates = {p.stem.removesuffix(".template"): json.loads(p.read_text())
                          for p in outdir.glob("*.template.json")}

    def template(self, stack):
        from aws_cdk.assertions import Template

        return Template.from_json(self.templates[stack.stack_name])

    def resources(self, stack, kind: str) -> dict[str, dict]:
        return {k: v for k, v in self.templates[stack.stack_name]["Resources"].items() if v["Type"] == kind}


@pytest.fixture(scope="session")
def assembly(tmp_path_factory) -> Assembly:
    from infra.app import build_app

    outdir = tmp_path_factory.mktemp("cdk.out")
    app, data, processing = build_app(outdir=str(outdir))
    app.synth()  # cdk-nag runs here: an unacknowledged finding raises
    return Assembly(outdir, app, data, processing)
