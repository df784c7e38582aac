"""Sandbox fixtures: raw signed requests (devtools/wire.py), built by hand so each wire rule can be
bent, signed by the wire's own signing rather than the client's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from devtools.wire import Wire, error_code
from tests.harness import SandboxAccount, SandboxProcess

__all__ = ["Wire", "error_code"]


@pytest.fixture
def make_wire(sandbox: SandboxProcess) -> Callable[..., Wire]:
    def make(key_type: str = "HMAC", **kwargs: Any) -> Wire:
        account: SandboxAccount = sandbox.create_account(key_type=key_type, **kwargs)
        return Wire(sandbox.base_url, account)

    return make


@pytest.fixture
def wire(make_wire: Callable[..., Wire]) -> Wire:
    return make_wire("HMAC")
