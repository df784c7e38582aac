"""The provider called directly, as the dynamic provider host calls it, against the sandbox."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pulumi.dynamic import ConfigureRequest
from pulumi.dynamic.config import Config

from margin_special_keys.margin_special_key import MarginSpecialKeyProvider
from tests.harness import SandboxAccount, SandboxProcess


def configured(base_url: str, account: dict[str, str], **extra: str) -> MarginSpecialKeyProvider:
    config = {"binance:baseUrl": base_url, "binance:apiKey": account["apiKey"], **extra}
    if "privateKey" in account:
        config["binance:privateKey"] = account["privateKey"]
    else:
        config["binance:secretKey"] = account["secretKey"]
    provider = MarginSpecialKeyProvider()
    provider.configure(ConfigureRequest(Config(config, "margin-special-keys")))
    return provider


@pytest.fixture
def account(sandbox: SandboxProcess) -> SandboxAccount:
    return sandbox.create_account("ED25519")


@pytest.fixture
def provider(clean_faults: SandboxProcess, account: SandboxAccount) -> MarginSpecialKeyProvider:
    return configured(clean_faults.base_url, account)


@pytest.fixture
def exchange_keys(sandbox: SandboxProcess, account: SandboxAccount) -> Callable[[], list[dict[str, Any]]]:
    return lambda: sandbox.special_keys(account["accountId"])


# Where a test declares no whitelist: every trading key must have one (or allowAnyIp).
DEFAULT_IPS = ["198.51.100.7"]


def checked(provider: MarginSpecialKeyProvider, **news: Any) -> dict[str, Any]:
    if "ip_whitelist" not in news and "allow_any_ip" not in news:
        news["ip_whitelist"] = DEFAULT_IPS
    result = provider.check({}, {"__provider": "blob", **news})
    assert result.failures == [], result.failures
    return dict(result.inputs)
