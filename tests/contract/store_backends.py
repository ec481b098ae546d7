"""The adapters the contract suite runs against (imported by conftest.py and the tests)."""

from __future__ import annotations

ADAPTERS = ["sqlite", "memory", "moto", "dynalite"]


def kind_of(store) -> str:
    return "dynamodb" if type(store).__name__ == "DynamoDBStore" else type(store).__name__
