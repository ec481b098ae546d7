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



@pytest.fixture(autouse=True)
def _no_network():
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()


@pytest.fixture
def aws(fake_aws, monkeypatch) -> Iterator[None]:
    """The one moto context of a test (DynamoDB requests applied one at a time, as the service does)."""
    from moto import mock_aws

    from functions.local import serialize_dynamodb

    serialize_dynamodb(monkeypatch.setattr)
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
