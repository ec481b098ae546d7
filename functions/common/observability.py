"""Logger, Tracer and Metrics: made once, shared by every handler."""

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "mediadna"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace="MediaDNA", service=SERVICE)
