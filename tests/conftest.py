"""Fixtures shared by every level: a sandbox exchange process and a Pulumi home."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.harness import SandboxProcess

# The property tests run beside the engine's CPU-bound processes (`make test` orders them last, to
# fill the cores): how long an example takes there says nothing about the code, so neither a
# per-example deadline nor hypothesis's "input generation is slow" check applies. Timing belongs
# in bench/, never in a test's verdict.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")

ENGINE_TEST_DIRS = ("e2e", "proof")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Order the run for a few processes sharing a few cores: tests marked `long` first (their
    waits on rate-limit windows, kill timers and the exchange overlap other tests' work), then
    the rest of the engine tests, then the in-process tests, which fill the cores while the last
    engine tests finish. Each test sets up what it needs, so the order changes no outcome."""
    tests_dir = Path(__file__).parent

    def is_engine_test(item: pytest.Item) -> bool:
        if not item.path.is_relative_to(tests_dir):
            return False
        parts = item.path.relative_to(tests_dir).parts
        return len(parts) > 1 and parts[0] in ENGINE_TEST_DIRS

    for item in items:
        if is_engine_test(item):
            item.add_marker(pytest.mark.e2e)
    items.sort(key=lambda item: 0 if item.get_closest_marker("long") else
               1 if item.get_closest_marker("e2e") else 2)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    process = SandboxProcess(tmp_path_factory.mktemp("sandbox"))
    yield process
    process.stop()


@pytest.fixture
def clean_faults(sandbox: SandboxProcess) -> Iterator[SandboxProcess]:
    sandbox.clear_faults()
    yield sandbox
    sandbox.clear_faults()


@pytest.fixture(scope="session")
def pulumi_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pulumi-home")
