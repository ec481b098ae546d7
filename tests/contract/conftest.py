"""Store contract suite: every adapter, one set of tests.

Backends: SQLite, in-memory, DynamoDB in moto (in-process ``mock_aws``, no
socket) and DynamoDB over HTTP in dynalite (a DynamoDB-compatible server on
LevelDB, started here on a free loopback port).  Sockets are blocked except
to 127.0.0.1.

dynalite comes from npm: ``.ci/run`` installs it into ``.ci/node``; locally
``npm install --prefix .ci/node dynalite@4`` (or set ``MEDIADNA_DYNALITE`` to
its executable).  Without it the dynalite runs are skipped, except under CI
(``CI`` set), where a missing dynalite is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytest_socket import disable_socket, enable_socket, socket_allow_hosts

from mediadna.store import LibraryStore, MemoryStore, SQLiteStore
from store_backends import ADAPTERS, kind_of  # tests/contract/store_backends.py

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _loopback_only():
    enable_socket()
    socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)
    yield
    disable_socket(allow_unix_socket=True)
    enable_socket()


@pytest.fixture(autouse=True)
def _fake_aws(fake_aws):
    """Every contract test runs with fake credentials (tests/conftest.py)."""


def _dynalite_command() -> list[str] | None:
    explicit = os.environ.get("MEDIADNA_DYNALITE")
    if explicit:
        return [explicit]
    local = ROOT / ".ci" / "node" / "node_modules" / ".bin" / "dynalite"
    if local.exists():
        return [str(local)]
    found = shutil.which("dynalite")
    return [found] if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def dynalite_endpoint() -> Iterator[str]:
    command = _dynalite_command()
    if command is None:
        if os.environ.get("CI"):
            pytest.fail("dynalite is not installed (.ci/run installs it with npm)")
        pytest.skip("dynalite not installed: npm install --prefix .ci/node dynalite@4")
    port = _free_port()
    proc = subprocess.Popen(
        command + ["--port", str(port), "--host", "127.0.0.1", "--createTableMs", "0", "--deleteTableMs", "0",
                   "--updateTableMs", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"dynalite did not start: {proc.stderr.read().decode(errors='replace')[-500:]}")
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()


def _dynamodb_store(endpoint: str | None, **kw) -> LibraryStore:
    from mediadna.store.dynamodb import DynamoDBConfig, DynamoDBStore

    env = dict(os.environ)
    if endpoint:
        env["MEDIADNA_DYNAMODB_ENDPOINT"] = endpoint
    store = DynamoDBStore(DynamoDBConfig.from_prefix(f"c{uuid.uuid4().hex[:10]}", env), **kw)
    store.create_tables()
    return store


@pytest.fixture
def store_factory(request, tmp_path) -> Iterator[Callable[..., LibraryStore]]:
    """``make(kind, **kw)``: fresh, empty stores of any adapter, closed at the end."""
    made: list[LibraryStore] = []
    contexts = []

    def make(kind: str, on_disk: bool = False, **kw) -> LibraryStore:
        if kind == "memory":
            s: LibraryStore = MemoryStore()
        elif kind == "sqlite":
            s = SQLiteStore(tmp_path / uuid.uuid4().hex / "library.sqlite3" if on_disk else ":memory:")
        elif kind == "moto":
            if not contexts:
                from moto import mock_aws

                from functions.local import serialize_dynamodb

                serialize_dynamodb(request.getfixturevalue("monkeypatch").setattr)
                ctx = mock_aws()
                ctx.start()
                contexts.append(ctx)
            s = _dynamodb_store(None, **kw)
        elif kind == "dynalite":
            s = _dynamodb_store(request.getfixturevalue("dynalite_endpoint"), **kw)
        else:  # pragma: no cover - a typo in a test
            raise ValueError(kind)
        made.append(s)
        return s

    yield make
    for s in made:
        if kind_of(s) == "dynamodb":
            try:
                s._closed = False
                s.delete_tables()
            except Exception:  # noqa: BLE001 - best effort; dynalite is in memory anyway
                pass
        s.close()
    for ctx in contexts:
        ctx.stop()


@pytest.fixture(params=ADAPTERS)
def store(request, store_factory) -> LibraryStore:
    return store_factory(request.param, on_disk=True)
