"""The CDK app (``python -m infra.app`` synthesises it; ``npx aws-cdk@2 deploy`` deploys it)."""
