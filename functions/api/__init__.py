"""The HTTP API: one Lambda behind API Gateway (IAM authorisation)."""
