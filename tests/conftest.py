"""Shared fixtures: async backends, execution modes, and a clean global state per test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

import scopeflow as sf
from scopeflow import _context


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {"debug": True}), id="asyncio"),
        pytest.param(("trio", {}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    """Run every ``@pytest.mark.anyio`` test on asyncio (debug mode) and on trio."""
    return request.param


@pytest.fixture(autouse=True)
def _clean_state() -> Iterator[None]:
    """Each test starts from eager mode, an empty frame and a fresh global graph."""
    sf.enable_eager_execution()
    assert _context.current() is _context.root_frame(), "a previous test leaked a scope"
    sf.reset_default_graph()
    yield
    sf.enable_eager_execution()
    leaked = _context.current() is not _context.root_frame()
    if leaked:
        _context._STATE.set(_context.root_frame())
    assert not leaked, "the test left a scope open"


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads very often, so that unlocked check-then-act sequences interleave."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)
