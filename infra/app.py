"""The CDK app: ``python -m infra.app`` synthesises to cdk.out (no CDK CLI needed).

Deploy with the CLI: ``npx aws-cdk@2 deploy --all`` (cdk.json runs this module).
"""

from __future__ import annotations

import os

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from infra.config import CONTEXT_DEFAULTS, PROCESSING_STACK, STATEFUL_STACK
from infra.stacks import DataStack, ProcessingStack


def settings_of(app: App) -> dict:
    return {key: app.node.try_get_context(key) if app.node.try_get_context(key) is not None else default
            for key, default in CONTEXT_DEFAULTS.items()}


def build_app(context: dict | None = None, outdir: str | None = None) -> tuple[App, DataStack, ProcessingStack]:
    context = dict(context or {})
    run_by_cli = any(k in os.environ for k in ("CDK_CONTEXT_JSON", "CDK_OUTDIR", "CDK_CLI_VERSION"))
    if "aws:cdk:bundling-stacks" not in context and not run_by_cli:
        # run as `python -m infra.app` (synth only): no Docker bundling of the layer;
        # the CDK CLI (`cdk deploy`) passes its own value and bundles
        context["aws:cdk:bundling-stacks"] = []
    app = App(context=context, outdir=outdir)
    settings = settings_of(app)
    env = Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION"))
    data = DataStack(app, STATEFUL_STACK, settings=settings, env=env,
                     description="mediadna data: buckets and library tables (retained on delete)")
    processing = ProcessingStack(app, PROCESSING_STACK, data=data, settings=settings, env=env,
                                 description="mediadna processing: queues, topic, functions, workflow, dashboard")
    processing.add_stack_dependency(data)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))  # cdk-nag on every synth
    return app, data, processing


def main() -> None:
    """Synthesise into ./cdk.out (or $CDK_OUTDIR, as the CDK CLI sets it)."""
    app, _, _ = build_app(outdir=os.environ.get("CDK_OUTDIR", "cdk.out"))
    app.synth()
    print(f"synthesised {', '.join(s.stack_name for s in app.node.children if hasattr(s, 'stack_name'))} "
          f"into {app.outdir} (cdk-nag AwsSolutions: no unacknowledged findings)")


if __name__ == "__main__":
    main()
