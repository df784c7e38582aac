"""`make demo` can never take over a real stack: its own backend, stack and passphrase always."""

from __future__ import annotations

from typing import Any

from tools import demo


def test_the_demo_ignores_a_real_backend_and_passphrase_in_the_environment(monkeypatch: Any) -> None:
    monkeypatch.setenv("PULUMI_BACKEND_URL", "s3://firm-pulumi-state")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "the-firm's-real-passphrase")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE_FILE", "/etc/firm/passphrase")
    env = demo.environment()
    assert env["PULUMI_BACKEND_URL"] == f"file://{demo.STATE_DIR}"
    assert env["PULUMI_CONFIG_PASSPHRASE"] == demo.DEMO_PASSPHRASE
    assert "PULUMI_CONFIG_PASSPHRASE_FILE" not in env
    assert demo.STACK == "sandbox-demo"
