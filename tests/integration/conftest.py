"""Integration suite: the cloud adapters against AWS emulated in-process by moto.

One fixture, ``aws``, starts ``mock_aws`` for a test (fake credentials, a fixed
region, no socket); everything AWS a test touches lives inside it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import urllib3  # noqa: F401 - imported before sockets are blocked: it probes IPv6 with a socket on import
from pytest_socket import disable_socket, enable_socket

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@pytest.fixture(autouse=True)
def _no_network():
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()


@pytest.fixture
def aws(monkeypatch) -> Iterator[None]:
    """The one moto context of a test."""
    from moto import mock_aws

    for key, value in FAKE_AWS.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "MEDIADNA_DYNAMODB_ENDPOINT"):
        monkeypatch.delenv(key, raising=False)
    with mock_aws():
        yield


@pytest.fixture
def dynamodb_prefix(aws) -> str:
    """A table prefix whose tables exist (created through the adapter)."""
    from mediadna.store.dynamodb import DynamoDBConfig, DynamoDBStore

    prefix = f"it{uuid.uuid4().hex[:8]}"
    DynamoDBStore(DynamoDBConfig.from_prefix(prefix)).create_tables()
    return prefix


@pytest.fixture
def open_dynamodb(dynamodb_prefix) -> Callable:
    """``open_dynamodb()``: a new store instance on the test's tables (one per simulated worker)."""
    from mediadna.store.dynamodb import DynamoDBConfig, DynamoDBStore

    def make(**kw):
        return DynamoDBStore(DynamoDBConfig.from_prefix(dynamodb_prefix), **kw)

    return make
