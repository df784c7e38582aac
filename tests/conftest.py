"""Fixtures shared by every level: a sandbox exchange process and a Pulumi home."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from devtools.postgres import PostgresServer
from tests.harness import SandboxProcess

# The property tests run beside the engine's CPU-bound processes (`make test` orders them last, to
# fill the cores): how long an example takes there says nothing about the code, so neither a
# per-example deadline nor hypothesis's "input generation is slow" check applies. Timing belongs
# in bench/, never in a test's verdict.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")

ENGINE_TEST_DIRS = ("e2e", "proof")
# A folder every test process of one run shares (the PostgreSQL server lives there), made by the
# run's first process (xdist's controller) and removed, server stopped, when that process ends,
# whether tests passed or not.
SHARED_DIR_ENV = "MSK_TEST_SHARED_DIR"


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and SHARED_DIR_ENV not in os.environ:
        os.environ[SHARED_DIR_ENV] = tempfile.mkdtemp(prefix="msk-tests-")
        config.stash[_OWNS_SHARED_DIR] = True


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.stash.get(_OWNS_SHARED_DIR, False):
        folder = Path(os.environ.pop(SHARED_DIR_ENV))
        PostgresServer(folder / "postgres").stop()
        shutil.rmtree(folder, ignore_errors=True)


_OWNS_SHARED_DIR = pytest.StashKey[bool]()


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


@pytest.fixture(scope="session")
def postgres() -> PostgresServer:
    """One PostgreSQL server for the whole run, started by the first test that needs it."""
    shared = Path(os.environ[SHARED_DIR_ENV])
    with open(shared / "postgres.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return PostgresServer.attach(shared / "postgres") or PostgresServer(shared / "postgres").start()


@pytest.fixture
def postgres_backend(postgres: PostgresServer, request: pytest.FixtureRequest) -> str:
    """Pulumi's postgres:// backend URL on a table of this test's own."""
    return postgres.url("t_" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:16])
