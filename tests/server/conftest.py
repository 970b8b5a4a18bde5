"""Fixtures of the server tests; the helpers live in server_testkit.py (importable by the test modules)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from server_testkit import Stack, base_env, make_recording  # noqa: E402


@pytest.fixture
def make_stack(tmp_path_factory):
    """Factory: a fresh stack in its own data directory; everything is stopped at the end of the test."""
    stacks: list[Stack] = []

    def make(name: str = "stack", **extra_env: str) -> Stack:
        data_dir = tmp_path_factory.mktemp(name) / "data"
        stack = Stack(data_dir, base_env(data_dir, **extra_env))
        stacks.append(stack)
        return stack

    yield make
    for s in stacks:
        s.stop()


@pytest.fixture(scope="session")
def shared_stack(tmp_path_factory):
    """One server and one fast worker shared by the tests that only need a working service."""
    data_dir = tmp_path_factory.mktemp("shared") / "data"
    stack = Stack(data_dir, base_env(data_dir))
    try:
        stack.start_server()
        stack.start_worker()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def api(shared_stack):
    client = shared_stack.client()
    yield client
    client.close()


@pytest.fixture(scope="session")
def recording_bytes() -> bytes:
    return make_recording()
