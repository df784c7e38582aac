"""What each entry point imports at start. The runner and the sandbox start without Pulumi's SDK
(about 0.25 s of CPU in every start: the runner starts once per pipeline step, the sandbox once per
demo and test process); the provider's module leaves `requests` and `cryptography` to its first
request. The package's top-level names still give the resource and its provider."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.harness import ROOT

HEAVY = ("pulumi", "grpc", "requests", "cryptography")

IMPORTED_BY = """
import json, sys
import {module}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def heavy_modules_after(module: str) -> list[str]:
    run = subprocess.run([sys.executable, "-c", IMPORTED_BY.format(module=module, heavy=HEAVY)],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return list(json.loads(run.stdout))


def test_the_runner_starts_without_pulumis_sdk() -> None:
    assert heavy_modules_after("margin_special_keys.gitops.__main__") == []


def test_the_sandbox_starts_without_pulumis_sdk() -> None:
    # It verifies signatures, so cryptography is its own.
    assert heavy_modules_after("margin_special_keys.sandbox.__main__") == ["cryptography"]


@pytest.mark.parametrize("module", ["margin_special_keys.program", "margin_special_keys.resource",
                                    "margin_special_keys.margin_special_key"])
def test_the_program_resource_and_provider_import_first_and_leave_requests_and_cryptography_to_the_first_call(
    module: str,
) -> None:
    """Each first in a fresh process, as the program (program, resource) and the provider process
    (the pickled provider's module) import them."""
    assert heavy_modules_after(module) == ["grpc", "pulumi"]


def test_the_package_names_the_resource_and_its_provider() -> None:
    import margin_special_keys
    from margin_special_keys import MarginSpecialKey, MarginSpecialKeyProvider, margin_special_key, resource

    assert (MarginSpecialKey, MarginSpecialKeyProvider) == (
        resource.MarginSpecialKey, margin_special_key.MarginSpecialKeyProvider)
    # The provider's module knows nothing of the resource: the resource imports it, never back.
    assert not hasattr(margin_special_key, "MarginSpecialKey")
    assert sorted(margin_special_keys.__all__) == ["MarginSpecialKey", "MarginSpecialKeyProvider"]
    with pytest.raises(AttributeError, match="NoSuchName"):
        margin_special_keys.NoSuchName  # noqa: B018
