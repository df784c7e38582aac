"""The harness on its own: the real engine runs a dynamic resource that does nothing.

This is also the floor the benchmarks compare the special key against.
"""

from __future__ import annotations

from pathlib import Path

from margin_special_keys.gitops.engine import NOOP_PROGRAM
from tests.harness import ROOT, PulumiProject


def test_engine_runs_up_preview_and_destroy_of_a_noop_dynamic_resource(
    tmp_path: Path, pulumi_home: Path
) -> None:
    project = PulumiProject.create(tmp_path / "noop", pulumi_home, program=NOOP_PROGRAM)
    project.set_config("count", "2")

    up = project.run("up", "--yes")
    assert "+ 3 created" in up.output or "3 created" in up.output, up.output
    assert project.outputs() == {"answer": 42}
    project.expect_no_changes()
    dynamic = [r for r in project.export()["deployment"]["resources"]
               if r["type"] == "pulumi-python:dynamic:Resource"]
    assert sorted(r["id"] for r in dynamic) == ["noop-noop-0", "noop-noop-1"]

    project.destroy()
    remaining = project.export()["deployment"].get("resources") or []
    assert [r for r in remaining if r["type"] == "pulumi-python:dynamic:Resource"] == []


def test_engine_reports_its_version(tmp_path: Path, pulumi_home: Path) -> None:
    project = PulumiProject.create(tmp_path / "v", pulumi_home, program=NOOP_PROGRAM)
    version = project.run("version").stdout.strip()
    major, minor = (int(x) for x in version.lstrip("v").split(".")[:2])
    assert (major, minor) >= (3, 270)


def test_about_names_the_python_language_host_and_the_project_virtualenv(
    tmp_path: Path, pulumi_home: Path
) -> None:
    project = PulumiProject.create(tmp_path / "about", pulumi_home, program=NOOP_PROGRAM)
    about = project.run("about").output
    assert "language  python" in about
    assert str(ROOT / ".venv" / "bin" / "python") in about


def test_program_output_and_errors_reach_the_user(tmp_path: Path, pulumi_home: Path) -> None:
    program = NOOP_PROGRAM + '\nprint("hello from the program")\nraise ValueError("broken on purpose")\n'
    project = PulumiProject.create(tmp_path / "broken", pulumi_home, program=program)
    preview = project.preview(check=False)
    assert preview.returncode != 0
    assert "hello from the program" in preview.output and "broken on purpose" in preview.output
