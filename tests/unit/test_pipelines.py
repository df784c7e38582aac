"""The pipeline examples a firm copies: the trust boundary as checkable properties.

`make lint` validates both files against their published schemas (check-jsonschema's vendored
GitHub workflow and GitLab CI schemas); these tests check what a schema cannot.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def workflow() -> dict[str, Any]:
    data = yaml.safe_load((EXAMPLES / "github-actions.yml").read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return dict(data)


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps", []))


def test_no_pull_request_target_and_every_action_pinned_by_commit() -> None:
    flow = workflow()
    assert "pull_request_target" not in flow["on"]
    for name, job in flow["jobs"].items():
        for step in steps(job):
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), (name, step["uses"])
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, name


def test_secrets_reach_only_the_steps_that_need_them_never_a_job_or_the_comment() -> None:
    flow = workflow()
    assert "secrets." not in str(flow.get("env", {}))
    for name, job in flow["jobs"].items():
        assert "secrets." not in str(job.get("env", {})), name
        for step in steps(job):
            if "secrets." in str(step):
                assert "secrets." in str(step.get("env", {})) and "run" in step, (name, step)
    assert "secrets." not in str(flow["jobs"]["comment"])
    assert flow["jobs"]["comment"]["permissions"] == {"pull-requests": "write"}


def test_a_pull_request_preview_runs_trusted_code_and_its_own_only_after_approval() -> None:
    jobs = workflow()["jobs"]
    checkout = steps(jobs["preview"])[0]
    assert checkout["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"
    assert 'git checkout "$HEAD" -- stacks' in steps(jobs["preview"])[1]["run"]
    assert jobs["preview-code"]["environment"] == "special-keys-review"
    assert jobs["up"]["environment"] == "special-keys-production"
    for name in ("preview", "preview-code", "up", "drift"):
        assert "binance-egress" in jobs[name]["runs-on"], name  # a fixed egress IP
        commands = " ".join(str(s.get("run", "")) for s in steps(jobs[name]))
        assert "make" not in commands.split() and "[dev]" not in commands  # runtime dependencies only


def test_gitlab_runs_trusted_code_before_installing_anything_and_pins_its_image() -> None:
    ci = yaml.safe_load((EXAMPLES / "gitlab-ci.yml").read_text())
    assert "resource_group" not in ci.get("default", {})
    engine = ci[".engine"]
    assert re.search(r"@sha256:[0-9a-f]{64}$", engine["image"])
    order = engine["before_script"]
    assert order.index('if [ -n "$TRUSTED_CODE" ]; then sh -c "$TRUSTED_CODE"; fi') < next(
        i for i, line in enumerate(order) if "pip install" in line)
    assert "git checkout --force FETCH_HEAD" in ci["preview"]["variables"]["TRUSTED_CODE"]
    assert ci["preview-code"]["environment"]["name"] == "special-keys-review"
    assert "PULUMI" not in str(ci["comment"])
