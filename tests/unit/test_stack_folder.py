"""The stack folder is data a pull request may change: the runner refuses it whole, before
anything runs, when it holds anything but regular Pulumi.<stack>.yaml files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from margin_special_keys.gitops.discovery import discover_stacks, stack_file_problems
from tests.harness import ROOT

STACK = "config:\n  margin-special-keys:keys: []\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: desk\nruntime: python\nstackConfigDir: stacks\n")
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.desk-a.yaml").write_text(STACK)
    (tmp_path / "stacks" / ".gitkeep").write_text("")
    return tmp_path


def test_regular_stack_files_run(project: Path) -> None:
    assert stack_file_problems(project) == [] and discover_stacks(project) == ["desk-a"]


@pytest.mark.parametrize(("make", "says"), [
    (lambda d: os.symlink("/etc/passwd", d / "Pulumi.evil.yaml"), "Pulumi.evil.yaml is a symlink"),
    (lambda d: os.symlink("Pulumi.desk-a.yaml", d / "Pulumi.twin.yaml"), "is a symlink"),
    (lambda d: (d / "sitecustomize.py").write_text("import os\n"),
     "sitecustomize.py is not a Pulumi.<stack>.yaml file"),
    (lambda d: (d / "Pulumi.nested.yaml").mkdir(), "is not a regular file"),
    (lambda d: (d / "Pulumi.a b.yaml").write_text(STACK), "stack names are letters"),
    (lambda d: (d / "Pulumi.esc.yaml").write_text(
        "environment:\n  - firm/prod\nconfig: {}\n"), "holds environment"),
    (lambda d: (d / "Pulumi.big.yaml").write_text("#" * (1 << 20) + "\n"), "larger than 1 MiB"),
    (lambda d: (d / ".gitkeep").write_text("not empty"), ".gitkeep is not a Pulumi"),
])
def test_anything_else_in_the_folder_refuses_the_whole_run(project: Path, make, says: str) -> None:  # type: ignore[no-untyped-def]
    make(project / "stacks")
    assert any(says in p for p in stack_file_problems(project)), stack_file_problems(project)
    with pytest.raises(SystemExit, match="refusing to run"):
        discover_stacks(project)


def test_the_runner_refuses_before_it_starts_any_engine(project: Path) -> None:
    os.symlink("/etc/passwd", project / "stacks" / "Pulumi.evil.yaml")
    run = subprocess.run([sys.executable, "-m", "margin_special_keys.gitops", "preview", "--project",
                          str(project)], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PATH": "/nonexistent"})  # no pulumi to start
    assert run.returncode == 1 and "refusing to run" in run.stderr and "is a symlink" in run.stderr


def test_stack_files_beside_the_project_are_checked_and_the_rest_left_alone(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: desk\nruntime: python\n")
    (tmp_path / "__main__.py").write_text("")
    (tmp_path / "Pulumi.desk-a.yaml").write_text(STACK)
    assert discover_stacks(tmp_path) == ["desk-a"]
    os.symlink(tmp_path / "Pulumi.desk-a.yaml", tmp_path / "Pulumi.twin.yaml")
    assert stack_file_problems(tmp_path) == ["Pulumi.twin.yaml is a symlink"]


def test_a_stack_file_may_not_change_how_its_secrets_are_decrypted(
        project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default branch's copy is the trusted one (the pipelines keep it aside)."""
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    salted = "encryptionsalt: v1:AAAA:BBBB\n" + STACK
    (trusted / "Pulumi.desk-a.yaml").write_text(salted)
    monkeypatch.setenv("MARGIN_SPECIAL_KEYS_TRUSTED_STACKS", str(trusted))
    stacks = project / "stacks"
    (stacks / "Pulumi.desk-a.yaml").write_text(salted + "  margin-special-keys:defaultIpWhitelist: []\n")
    assert stack_file_problems(project) == []  # its keys may change; its encryption may not
    for changed in ("encryptionsalt: v1:CCCC:DDDD\n" + STACK,
                    salted + "secretsprovider: awskms://alias/x?endpoint=http://127.0.0.1:9\n",
                    salted + "encryptedkey: QUFBQQ==\n", STACK):
        (stacks / "Pulumi.desk-a.yaml").write_text(changed)
        assert any("how a stack's secrets are decrypted" in p for p in stack_file_problems(project))
    (stacks / "Pulumi.desk-a.yaml").write_text(salted)
    (stacks / "Pulumi.desk-new.yaml").write_text(salted)
    assert stack_file_problems(project) == [
        "Pulumi.desk-new.yaml is not on the default branch: a new stack is previewed after its merge"]


def test_a_stack_folder_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: desk\nruntime: python\nstackConfigDir: stacks\n")
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "stacks")
    assert stack_file_problems(tmp_path) == ["stacks is a symlink"]
