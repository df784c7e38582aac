"""The committed example stacks are valid, and their secrets are ciphertext."""

from __future__ import annotations

from pathlib import Path

import yaml

from margin_special_keys.stack_config import parse_keys
from tests.harness import ROOT

EXAMPLES = sorted((ROOT / "examples" / "stacks").glob("Pulumi.*.yaml"))


def test_stacks_holds_only_real_stacks() -> None:
    committed = [p.name for p in (ROOT / "stacks").glob("Pulumi.*.yaml")
                 if p.name != "Pulumi.sandbox-demo.yaml"]  # written by make demo, ignored by git
    assert committed == []


def test_there_are_examples_for_two_sub_accounts() -> None:
    assert len(EXAMPLES) >= 2


def test_example_keys_parse_and_credentials_are_encrypted() -> None:
    for path in EXAMPLES:
        doc = yaml.safe_load(Path(path).read_text())
        config = doc["config"]
        declared = parse_keys(config["margin-special-keys:keys"],
                              config.get("margin-special-keys:defaultIpWhitelist"))
        assert declared, path
        for key in ("binance:apiKey", "binance:privateKey"):
            assert set(config[key]) == {"secure"}, (path, key)
        assert doc["encryptionsalt"].startswith("v1:")


def test_pipeline_examples_run_the_runner_for_each_event() -> None:
    github = yaml.safe_load((ROOT / "examples" / "github-actions.yml").read_text())
    for operation in ("preview", "up", "drift", "preflight"):
        steps = " ".join(str(s.get("run", "")) for s in github["jobs"][operation]["steps"])
        assert f"-m margin_special_keys.gitops {operation}" in steps
    gitlab = yaml.safe_load((ROOT / "examples" / "gitlab-ci.yml").read_text())
    assert {"preview", "up", "drift", "preflight"} <= set(gitlab)
    assert all(f"-m margin_special_keys.gitops {job}" in " ".join(gitlab[job]["script"])
               for job in ("preview", "up", "drift", "preflight"))


def test_the_template_ships_the_pipeline_examples_as_they_are() -> None:
    template = ROOT / "templates" / "special-keys"
    assert (template / ".github" / "workflows" / "special-keys.yml").read_text() == (
        ROOT / "examples" / "github-actions.yml").read_text()
    assert (template / ".gitlab-ci.yml").read_text() == (ROOT / "examples" / "gitlab-ci.yml").read_text()
    assert "from margin_special_keys.program import main" in (template / "__main__.py").read_text()
