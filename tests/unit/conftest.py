"""Unit suite: no network.  Every socket (except Unix sockets) is blocked."""

import pytest
from pytest_socket import disable_socket, enable_socket


@pytest.fixture(autouse=True)
def _no_network():
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()


@pytest.fixture(scope="session")
def load_bench():
    """Import a script of bench/ (not a package) by its name: ``load_bench("scale")``."""
    import importlib.util
    import sys
    from pathlib import Path

    def load(name: str):
        path = Path(__file__).resolve().parents[2] / "bench" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[f"bench_{name}"] = mod
        spec.loader.exec_module(mod)
        return mod

    return load
