"""The pipeline examples a firm copies: the trust boundary as checkable properties.

`make lint` validates the files against their published schemas (check-jsonschema's vendored
GitHub workflow and GitLab CI schemas), actionlint and zizmor; these tests check what those cannot:
which jobs anyone who can open a pull (merge) request can start, and that none of them reads a
secret, but the one preview that runs only the default branch's code. Conditions are evaluated,
not matched as text: GitHub's `if:` expressions and GitLab's `rules:` go through a small evaluator
that treats anything the event does not pin down as possibly true. The stacks rule, the one place
a pull request's content enters a job with secrets, is run on real git trees.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TEMPLATE = ROOT / "templates" / "special-keys"
# Each GitHub workflow example, and where the template keeps its copy.
GITHUB_FILES = {"github-actions.yml": ".github/workflows/special-keys.yml",
                "github-actions-pull-request.yml": ".github/workflows/special-keys-pull-request.yml"}
PREVIEW_LABEL, DEPLOY_LABEL = "binance-egress-preview", "binance-egress-deploy"
PREVIEW_ENV, PRODUCTION_ENV = "special-keys-preview", "special-keys-production"
COMMENT_ENV = "special-keys-comment"
# The variables that hold secrets (GitLab gives them by environment scope, not by name in a job).
GITLAB_SECRETS = ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_ACCESS_TOKEN", "MR_COMMENT_TOKEN")
# The one job that holds secrets on a pull request's behalf: it runs the default branch's code.
TRUSTED_PREVIEW = ("github-actions.yml", "preview")
TAKE_STACKS = "Take only stacks/ from the pull request"  # tests/e2e/test_trust_boundary.py runs it too


def workflow(name: str) -> dict[str, Any]:
    data = yaml.safe_load((EXAMPLES / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return dict(data)


def workflows() -> dict[str, dict[str, Any]]:
    return {name: workflow(name) for name in GITHUB_FILES}


def gitlab() -> dict[str, Any]:
    return dict(yaml.safe_load((EXAMPLES / "gitlab-ci.yml").read_text()))


def gitlab_jobs(ci: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: job for name, job in ci.items()
            if isinstance(job, dict) and not name.startswith(".") and ("script" in job or "trigger" in job)}


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps", []))


def step(job: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in steps(job) if s.get("name") == name)


def labels(job: dict[str, Any]) -> set[str]:
    runs_on = job.get("runs-on", [])
    if isinstance(runs_on, dict):
        runs_on = [runs_on.get("group", ""), *runs_on.get("labels", [])]
    return {runs_on} if isinstance(runs_on, str) else set(runs_on)


def text(value: Any) -> str:
    return json.dumps(value)


# --- GitHub's `if:` expressions, in three-valued logic -------------------------------------------
# A value the event does not pin down (a job's result, a run's conclusion, anything an attacker
# chooses) is UNKNOWN: a condition that is not certainly false lets the job run.

class Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = Unknown()
_GH_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+(?:\.\d+)?)"
                       r"|(?P<op>==|!=|<=|>=|&&|\|\||[!<>(),])|(?P<name>[A-Za-z_][\w-]*(?:\.[\w*-]+|\[\d+\])*))")


def _tokens(pattern: re.Pattern[str], source: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos, source = 0, source.strip()
    while pos < len(source):
        match = pattern.match(source, pos)
        if not match or match.end() == pos:
            raise ValueError(f"cannot read {source[pos:]!r} in {source!r}")
        kind = match.lastgroup
        assert kind is not None
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def _and(values: list[Any]) -> Any:
    if any(v is False for v in values):
        return False
    return True if all(v is True for v in values) else UNKNOWN


def _or(values: list[Any]) -> Any:
    if any(v is True for v in values):
        return True
    return False if all(v is False for v in values) else UNKNOWN


def _truth(value: Any) -> Any:
    return value if value is UNKNOWN else value not in (False, None, "", 0)


def _equal(a: Any, b: Any) -> Any:
    if a is UNKNOWN or b is UNKNOWN:
        return UNKNOWN
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()  # GitHub compares strings ignoring case
    return bool(a == b)


def _not(value: Any) -> Any:
    return value if value is UNKNOWN else not value


class _Parser:
    """expr := or; or := and ('||' and)*; and := cmp ('&&' cmp)*; cmp := unary (op unary)?"""

    def __init__(self, tokens: list[tuple[str, str]], lookup: Callable[[str], Any]) -> None:
        self.tokens, self.pos, self.lookup = tokens, 0, lookup

    def peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        self.pos += 1
        return self.tokens[self.pos - 1]

    def parse(self) -> Any:
        value = self.disjunction()
        assert self.pos == len(self.tokens), self.tokens[self.pos:]
        return value

    def disjunction(self) -> Any:
        values = [self.conjunction()]
        while self.peek() == "||":
            self.take()
            values.append(self.conjunction())
        return _or([_truth(v) for v in values]) if len(values) > 1 else values[0]

    def conjunction(self) -> Any:
        values = [self.comparison()]
        while self.peek() == "&&":
            self.take()
            values.append(self.comparison())
        return _and([_truth(v) for v in values]) if len(values) > 1 else values[0]

    def comparison(self) -> Any:
        left = self.unary()
        if self.peek() in ("==", "!="):
            op = self.take()[1]
            right = self.unary()
            same = _equal(left, right)
            return same if op == "==" else _not(same)
        if self.peek() in ("<", ">", "<=", ">="):
            self.take()
            self.unary()
            return UNKNOWN
        return left

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return _not(_truth(self.unary()))
        return self.primary()

    def primary(self) -> Any:
        kind, value = self.take()
        if value == "(":
            inner = self.disjunction()
            assert self.take()[1] == ")"
            return inner
        if kind == "str":
            return value[1:-1].replace("''", "'")
        if kind == "num":
            return float(value)
        if value in ("true", "false"):
            return value == "true"
        if value == "null":
            return None
        if self.peek() == "(":  # a function call
            self.take()
            args: list[Any] = []
            while self.peek() != ")":
                args.append(self.disjunction())
                if self.peek() == ",":
                    self.take()
            self.take()
            return self.call(value, args)
        return self.lookup(value)

    def call(self, name: str, args: list[Any]) -> Any:
        if name == "always":
            return True
        if name in ("success", "failure", "cancelled"):
            return self.lookup(f"{name}()")
        if any(a is UNKNOWN for a in args):
            return UNKNOWN
        if name == "contains":
            haystack, needle = args
            if isinstance(haystack, list):
                return any(_equal(item, needle) is True for item in haystack)
            return str(needle).lower() in str(haystack).lower()
        if name in ("startsWith", "endsWith"):
            subject, part = (str(a).lower() for a in args)
            return subject.startswith(part) if name == "startsWith" else subject.endswith(part)
        return UNKNOWN


def github_condition(source: str, context: dict[str, Any]) -> Any:
    source = source.strip()
    if source.startswith("${{") and source.endswith("}}"):
        source = source[3:-2]
    return _Parser(_tokens(_GH_TOKEN, source), lambda name: context.get(name, UNKNOWN)).parse()


STATUS_FUNCTION = re.compile(r"\b(always|success|failure|cancelled)\(")

# The events a pull request's author can cause, each with what GitHub sets for it. Everything
# else (the PR's branch name, a run's conclusion, a job's result) is left UNKNOWN.
_PR_BASE = {"github.event.repository.default_branch": "main"}
PULL_REQUEST_EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("pull_request", {**_PR_BASE, "github.event_name": "pull_request", "github.ref": "refs/pull/7/merge",
                      "github.ref_name": "7/merge"}),
    ("pull_request_target", {**_PR_BASE, "github.event_name": "pull_request_target",
                             "github.ref": "refs/heads/main", "github.ref_name": "main"}),
    *[("workflow_run", {**_PR_BASE, "github.event_name": "workflow_run", "github.ref": "refs/heads/main",
                        "github.ref_name": "main", "github.event.workflow_run.event": trigger})
      for trigger in ("pull_request", "pull_request_target")],
    *[(event, {**_PR_BASE, "github.event_name": event, "github.ref": "refs/heads/main",
               "github.ref_name": "main"})
      for event in ("issue_comment", "pull_request_review", "pull_request_review_comment")],
]
# Who can push a branch can also run a workflow from it: the runs the deploy runners must refuse.
OTHER_BRANCH_EVENTS: list[tuple[str, dict[str, Any]]] = [
    (event, {**_PR_BASE, "github.event_name": event, "github.ref": "refs/heads/feature",
             "github.ref_name": "feature"})
    for event in ("push", "workflow_dispatch")]


def can_run(flow: dict[str, Any], name: str, context: dict[str, Any]) -> bool:
    """Whether job `name` may run for this event: its `if:` (with `success()` implied, as GitHub
    does) is not certainly false, given what its needs may do."""
    job = flow["jobs"][name]
    needs = job.get("needs", [])
    needs = [needs] if isinstance(needs, str) else list(needs)
    runs = [can_run(flow, need, context) for need in needs]
    local = dict(context)
    local["success()"] = (UNKNOWN if needs else True) if all(runs) else False
    for need, ran in zip(needs, runs, strict=True):
        local[f"needs.{need}.result"] = UNKNOWN if ran else "skipped"
    condition = str(job.get("if", "success()"))
    if not STATUS_FUNCTION.search(condition):
        condition = f"success() && ({condition.replace('${{', '').replace('}}', '')})"
    return github_condition(condition, local) is not False


def pull_request_jobs(flow: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(event, job) for every job a pull request's author can make run in this workflow."""
    for event, context in PULL_REQUEST_EVENTS:
        if event in flow["on"]:
            for name in flow["jobs"]:
                if can_run(flow, name, context):
                    yield event, name


def reads_secrets(flow: dict[str, Any], name: str) -> bool:
    """A job reads a secret if `secrets.` is anywhere in it or in the workflow's env, it passes
    `secrets: inherit`, or it calls a reusable workflow (which a pull request can rewrite)."""
    job = flow["jobs"][name]
    return ("secrets." in text(job) or "secrets." in text(flow.get("env", {}))
            or job.get("secrets") == "inherit" or "uses" in job)


def secret_holding_pull_request_jobs(files: dict[str, dict[str, Any]]) -> set[tuple[str, str]]:
    return {(file, name) for file, flow in files.items()
            for _, name in pull_request_jobs(flow) if reads_secrets(flow, name)}


# --- GitLab's `rules:` -----------------------------------------------------------------------------
_GL_TOKEN = re.compile(r"\s*(?:(?P<var>\$\w+)|(?P<str>\"[^\"]*\"|'[^']*')"
                       r"|(?P<op>==|!=|&&|\|\||[()])|(?P<null>null))")


def gitlab_condition(source: str, variables: dict[str, str]) -> bool:
    tokens = _tokens(_GL_TOKEN, source)
    pos = 0

    def atom() -> Any:
        nonlocal pos
        kind, value = tokens[pos]
        pos += 1
        if value == "(":
            inner = disjunction()
            assert tokens[pos][1] == ")"
            pos += 1
            return inner
        if kind == "var":
            return variables.get(value[1:])  # an undefined variable is null
        if kind == "str":
            return value[1:-1]
        assert kind == "null", (source, value)
        return None

    def comparison() -> Any:
        nonlocal pos
        left = atom()
        if pos < len(tokens) and tokens[pos][1] in ("==", "!="):
            op = tokens[pos][1]
            pos += 1
            right = atom()
            return (left == right) if op == "==" else (left != right)
        return left if isinstance(left, bool) else left not in (None, "")

    def conjunction() -> bool:
        nonlocal pos
        value = bool(comparison())
        while pos < len(tokens) and tokens[pos][1] == "&&":
            pos += 1
            value = bool(comparison()) and value
        return value

    def disjunction() -> bool:
        nonlocal pos
        value = conjunction()
        while pos < len(tokens) and tokens[pos][1] == "||":
            pos += 1
            value = conjunction() or value
        return value

    result = disjunction()
    assert pos == len(tokens), source
    return result


def gitlab_can_run(job: dict[str, Any], variables: dict[str, str]) -> bool:
    """GitLab's first matching rule decides; no rules at all counts as "runs everywhere"."""
    if "rules" not in job:
        return True
    for rule in job["rules"]:
        if "if" in rule and not gitlab_condition(rule["if"], variables):
            continue
        return bool(rule.get("when", "on_success") != "never")  # `changes:`/`exists:` may hold
    return False


_GL_BASE = {"CI_DEFAULT_BRANCH": "main", "CI_PROJECT_ID": "1"}
GITLAB_MERGE_REQUEST = {**_GL_BASE, "CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "7",
                        "CI_COMMIT_REF_NAME": "feature", "CI_COMMIT_REF_PROTECTED": "false"}
GITLAB_SOURCES = ("push", "web", "trigger", "schedule", "api", "pipeline", "chat", "webide")
GITLAB_OTHER_BRANCH = [{**_GL_BASE, "CI_PIPELINE_SOURCE": source, "CI_COMMIT_BRANCH": "feature",
                        "CI_COMMIT_REF_NAME": "feature", "CI_COMMIT_REF_PROTECTED": "false"}
                       for source in GITLAB_SOURCES]


def gitlab_default_branch(source: str) -> dict[str, str]:
    return {**_GL_BASE, "CI_PIPELINE_SOURCE": source, "CI_COMMIT_BRANCH": "main",
            "CI_COMMIT_REF_NAME": "main", "CI_COMMIT_REF_PROTECTED": "true"}


def gitlab_scripts(job: dict[str, Any]) -> list[str]:
    return [line for key in ("before_script", "script", "after_script") for line in job.get(key, [])]


def gitlab_environment(job: dict[str, Any]) -> str | None:
    env = job.get("environment")
    name = env.get("name") if isinstance(env, dict) else env
    return None if name is None else str(name)


def gitlab_holds_secrets(job: dict[str, Any]) -> bool:
    """Environment-scoped variables reach a job by its environment, not by name: so a job holds
    the secrets if it names a secret environment or runs the runner, or names a secret."""
    return (gitlab_environment(job) in (PREVIEW_ENV, PRODUCTION_ENV, COMMENT_ENV)
            or "margin_special_keys.gitops" in text(job) or any(s in text(job) for s in GITLAB_SECRETS))


# --- The trust boundary ---------------------------------------------------------------------------

def test_no_job_a_pull_request_can_start_reads_a_secret_but_the_default_branch_preview() -> None:
    files = workflows()
    assert secret_holding_pull_request_jobs(files) == {TRUSTED_PREVIEW}
    for file, flow in files.items():
        if "pull_request" in flow["on"] or "pull_request_target" in flow["on"]:
            # The PR's own workflow file (or the base's run on its behalf): no secret anywhere in it.
            assert "secrets." not in text(flow), file
        assert "secrets." not in text(flow.get("env", {})), file


def test_the_trusted_preview_runs_the_default_branch_code_and_reads_the_prs_stacks_as_data() -> None:
    file, name = TRUSTED_PREVIEW
    flow = workflow(file)
    job = flow["jobs"][name]
    # Its definition comes from the default branch: workflow_run (never pull_request(_target)).
    assert set(flow["on"]) & {"pull_request", "pull_request_target", "issue_comment"} == set()
    assert "workflow_run" in flow["on"]
    for event, context in PULL_REQUEST_EVENTS:
        if context["github.event_name"] != "workflow_run":
            assert not can_run(flow, name, context) or event not in flow["on"]
    assert job["environment"] == PREVIEW_ENV and PREVIEW_LABEL in labels(job)
    checkout = steps(job)[0]
    assert checkout["uses"].startswith("actions/checkout@")
    # No ref, no repository: the default branch.
    assert set(checkout.get("with", {})) == {"persist-credentials"}
    # The pull request's commit enters only through the stacks rule, which holds no secret.
    mentions_pr = [s for s in steps(job)
                   if "workflow_run.head" in text(s) or "$HEAD" in str(s.get("run", ""))]
    assert mentions_pr == [step(job, TAKE_STACKS)]
    take = step(job, TAKE_STACKS)
    assert take["env"]["HEAD"] == "${{ github.event.workflow_run.head_sha }}"
    assert "secrets." not in text(take)
    assert 'git fetch --no-tags --depth=1 origin "$HEAD"\n' in take["run"]
    assert "git checkout" not in take["run"] and "git cat-file blob" in take["run"]
    for s in steps(job):
        assert not str(s.get("uses", "")).startswith("./"), s  # no action from the checkout
    # Secrets come after the stacks are taken, in the runner's step only.
    with_secrets = [i for i, s in enumerate(steps(job)) if "secrets." in text(s)]
    assert len(with_secrets) == 1 and with_secrets[0] > steps(job).index(take)
    assert "-m margin_special_keys.gitops preview" in steps(job)[with_secrets[0]]["run"]


def test_every_secret_sits_in_an_environment_and_in_the_one_step_that_needs_it() -> None:
    for file, flow in workflows().items():
        for name, job in flow["jobs"].items():
            assert "secrets." not in text(job.get("env", {})), (file, name)
            if "secrets." not in text(job):
                continue
            # Only environment secrets exist: a PR's edited workflow can name no other.
            assert job["environment"] == (PREVIEW_ENV if (file, name) == TRUSTED_PREVIEW else PRODUCTION_ENV)
            for s in steps(job):
                if "secrets." in text(s):
                    assert set(s) <= {"name", "env", "run"} and "secrets." in text(s["env"]), (name, s)


def test_jobs_a_pull_request_can_start_never_use_the_deploy_runners() -> None:
    for file, flow in workflows().items():
        for _, name in pull_request_jobs(flow):
            assert DEPLOY_LABEL not in labels(flow["jobs"][name]), (file, name)
        for name, job in flow["jobs"].items():
            if "self-hosted" in labels(job):
                assert len(labels(job) & {PREVIEW_LABEL, DEPLOY_LABEL}) == 1, (file, name)
            if DEPLOY_LABEL in labels(job):  # only pushes, schedules and dispatches of the default branch
                for _, context in [*PULL_REQUEST_EVENTS, *OTHER_BRANCH_EVENTS]:
                    assert not can_run(flow, name, context), (file, name, context["github.event_name"])
    pull_request_file = workflow("github-actions-pull-request.yml")
    assert all(labels(job) == {"ubuntu-latest"} for job in pull_request_file["jobs"].values())
    for name, job in gitlab_jobs(gitlab()).items():
        tags = set(job.get("tags", []))
        started_for_a_merge_request = gitlab_can_run(job, GITLAB_MERGE_REQUEST) or gitlab_can_run(
            job, gitlab_default_branch("trigger"))  # the webhook starts these on a merge request's behalf
        if started_for_a_merge_request:
            assert DEPLOY_LABEL not in tags, name
        if DEPLOY_LABEL in tags:
            assert not any(gitlab_can_run(job, v) for v in [GITLAB_MERGE_REQUEST, *GITLAB_OTHER_BRANCH]), name


# eval, sh -c "$X", source "$X", or "$X" where a command goes (but not `[[ $x != y || $z == w ]]`).
EXECUTES_A_VARIABLE = re.compile(r"\beval\b|\b(?:ba)?sh\s+-c\s+[\"']?\$"
                                 r"|(?:^|[;&|]\s*)(?:source|\.)\s+[\"']?\$"
                                 r"|(?:^|[;&|]\s*)[\"']?\$\{?\w+\}?[\"']?(?=\s|$)"
                                 r"(?!\s*(?:[!=]=|=~|-(?:eq|ne|lt|le|gt|ge)\b))", re.MULTILINE)


def test_no_job_executes_a_variables_content() -> None:
    for file, flow in workflows().items():
        for name, job in flow["jobs"].items():
            for s in steps(job):
                # An expression in a script is pasted in as code: values go through env instead.
                for code in (str(s.get("run", "")), str(s.get("with", {}).get("script", ""))):
                    assert "${{" not in code, (file, name, s.get("name"))
                    assert not EXECUTES_A_VARIABLE.search(code), (file, name, s.get("name"))
    ci = gitlab()
    for name, job in {**gitlab_jobs(ci), ".engine": ci[".engine"]}.items():
        for line in gitlab_scripts(job):
            assert not EXECUTES_A_VARIABLE.search(line), (name, line)
    assert "TRUSTED_CODE" not in text(ci)


def test_every_action_is_pinned_by_commit_and_checkout_keeps_no_credentials() -> None:
    for file, flow in workflows().items():
        for name, job in flow["jobs"].items():
            for s in steps(job):
                if "uses" in s:
                    assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", s["uses"]), (file, name, s["uses"])
                if s.get("uses", "").startswith("actions/checkout@"):
                    assert s["with"]["persist-credentials"] is False, (file, name)
            assert "permissions" in job, (file, name)  # every job states its token's permissions
        assert flow["permissions"] == {}, file
    assert re.search(r"@sha256:[0-9a-f]{64}$", gitlab()[".engine"]["image"])
    assert all(re.search(r"@sha256:[0-9a-f]{64}$", job["image"]) for job in gitlab_jobs(gitlab()).values()
               if "image" in job)


def test_the_comment_jobs_hold_no_pulumi_secret_and_take_the_number_from_the_event() -> None:
    flow = workflow("github-actions.yml")
    comment = flow["jobs"]["comment"]
    assert "secrets." not in text(comment) and "PULUMI" not in text(comment)
    assert "environment" not in comment and labels(comment) == {"ubuntu-latest"}
    assert comment["permissions"] == {"pull-requests": "write"}
    script = steps(comment)[-1]["with"]["script"]
    assert "context.payload.workflow_run" in script and "Number.isInteger" in script
    # The summary is the only file it reads: no number from a file.
    assert "readFileSync('summary.md'" in script and script.count("readFileSync") == 1
    ci = gitlab()
    job = ci["comment"]
    assert gitlab_environment(job) == COMMENT_ENV and "PULUMI" not in text(job)
    assert "case $iid in ''|*[!0-9]*)" in gitlab_scripts(job)[2]  # the IID, digits only, again


def test_jobs_that_touch_the_state_run_one_at_a_time() -> None:
    flow = workflow("github-actions.yml")
    groups = {name: flow["jobs"][name].get("concurrency") for name in ("up", "drift")}
    assert groups["up"] == groups["drift"] == {"group": "special-keys-state", "cancel-in-progress": False}
    # A workflow-wide group per event: a pull request's preview never shares one with an up.
    assert "github.event_name" in flow["concurrency"]["group"]
    assert flow["concurrency"]["cancel-in-progress"] is False
    ci = gitlab()
    assert ci["up"]["resource_group"] == ci["drift"]["resource_group"] == "special-keys"
    assert "resource_group" not in ci.get("default", {})


PULUMI_INSTALL = ("awk -v f=\"$archive\" '$2 == f' checksums.txt | sha256sum --check --strict -\n"
                  "tar -xzf \"$archive\"")


def test_installs_are_checked_the_pulumi_cli_by_checksum_and_python_by_hash() -> None:
    flow = workflow("github-actions.yml")
    for name in ("preview", "up", "drift", "preflight"):
        runs = [str(s.get("run", "")) for s in steps(flow["jobs"][name])]
        assert not any(s.get("uses", "").startswith("pulumi/actions@") for s in steps(flow["jobs"][name]))
        assert any(PULUMI_INSTALL in run and "pulumi-$PULUMI_VERSION-checksums.txt" in run
                   for run in runs), name
        assert any("pip install --quiet --require-hashes -r requirements.lock" in run for run in runs), name
        assert not any("make" in run.split() or "[dev]" in run for run in runs), name  # runtime only
    engine = "\n".join(gitlab()[".engine"]["before_script"])
    assert PULUMI_INSTALL in engine and "--require-hashes -r requirements.lock" in engine
    for path in [*(EXAMPLES / name for name in GITHUB_FILES), EXAMPLES / "gitlab-ci.yml"]:
        code = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
        assert not re.search(r"curl[^\n|]*\|\s*(?:sudo\s+)?(?:ba|z)?sh\b", code), path


def test_gitlab_merge_request_pipelines_hold_no_secret_and_secrets_stay_on_the_default_branch() -> None:
    jobs = gitlab_jobs(gitlab())
    merge_request_jobs = {name for name, job in jobs.items() if gitlab_can_run(job, GITLAB_MERGE_REQUEST)}
    assert merge_request_jobs == {"check-stacks"}
    for name in merge_request_jobs:
        assert not gitlab_holds_secrets(jobs[name]) and "tags" not in jobs[name], name
    for name, job in jobs.items():
        if not gitlab_holds_secrets(job):
            continue
        # Protected variables of the default branch, in a protected environment; no other pipeline.
        assert gitlab_environment(job) in (PREVIEW_ENV, PRODUCTION_ENV, COMMENT_ENV), name
        # `prepare` and `start` are gated by the protected environment (GitLab plans to stop
        # gating `verify` and `access`, gitlab-org/gitlab#437142).
        assert job["environment"].get("action", "start") in ("start", "prepare"), name
        assert not any(gitlab_can_run(job, v) for v in [GITLAB_MERGE_REQUEST, *GITLAB_OTHER_BRANCH]), name
        for rule in job["rules"]:
            assert "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH" in rule["if"], name
            assert '$CI_COMMIT_REF_PROTECTED == "true"' in rule["if"], name
    # Who starts which: the webhook (trigger) the preview and its comment only; a merge the up.
    started = {source: {n for n, job in jobs.items() if gitlab_can_run(job, gitlab_default_branch(source))}
               for source in GITLAB_SOURCES}
    assert started["trigger"] == {"preview", "comment"}
    assert started["push"] == {"up", "preflight"} and started["schedule"] == {"drift"}
    assert gitlab_environment(jobs["preview"]) == PREVIEW_ENV and jobs["preview"]["tags"] == [PREVIEW_LABEL]


def test_the_template_ships_every_pipeline_file_as_it_is() -> None:
    for example, copy in {**GITHUB_FILES, "gitlab-ci.yml": ".gitlab-ci.yml"}.items():
        assert (TEMPLATE / copy).read_text() == (EXAMPLES / example).read_text(), copy
    shipped = {p.name for p in (TEMPLATE / ".github" / "workflows").iterdir()}
    assert shipped == {Path(copy).name for copy in GITHUB_FILES.values()}


# --- The stacks rule, on real git trees -----------------------------------------------------------

def git(directory: Path, *args: str, stdin: bytes | None = None) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@localhost", *args], cwd=directory,
                          check=True, capture_output=True, input=stdin).stdout.decode().strip()


def stacks_rule() -> str:
    """The text of the rule, the same in all four places it runs."""
    take = step(workflow("github-actions.yml")["jobs"]["preview"], TAKE_STACKS)["run"]
    rule = take[take.index("# Only stacks/Pulumi.<stack>.yaml"):]
    check = steps(workflow("github-actions-pull-request.yml")["jobs"]["check"])[-1]["run"]
    ci = gitlab()
    assert rule in check and rule == gitlab_scripts(ci["check-stacks"])[-1]
    assert rule == ci["preview"]["script"][1]
    return str(rule)


def runner_temp(cwd: Path) -> str:
    """The job's own temporary folder (GitHub's RUNNER_TEMP), beside the checkout."""
    folder = cwd.parent / "runner-temp"
    folder.mkdir(exist_ok=True)
    return str(folder)


def run_bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd,
                          env={"PATH": os.environ["PATH"], "HOME": str(cwd),
                               "RUNNER_TEMP": runner_temp(cwd), **env},
                          capture_output=True, text=True, timeout=60)


GOOD_STACK = "config:\n  margin-special-keys:keys: []\n"


def origin_with(tmp_path: Path, build: Callable[[Path], None], ref: str) -> tuple[Path, Path, str]:
    """A repository `origin` whose default branch has trusted code and one stack, and whose `ref`
    is a pull request built by `build`; and `work`, a shallow clone of the default branch."""
    origin = tmp_path / "origin"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    git(origin, "config", "uploadpack.allowAnySHA1InWant", "true")
    (origin / "stacks").mkdir()
    (origin / "__main__.py").write_text("TRUSTED = True\n")
    (origin / "stacks" / "Pulumi.old.yaml").write_text(GOOD_STACK)
    git(origin, "add", "-A")
    git(origin, "commit", "-qm", "base")
    git(origin, "checkout", "-qb", "pr")
    (origin / "__main__.py").write_text("raise SystemExit('LEAK')\n")
    build(origin)
    git(origin, "add", "-A")
    git(origin, "commit", "-qm", "pr", "--allow-empty")
    head = git(origin, "rev-parse", "HEAD")
    git(origin, "update-ref", ref, head)
    git(origin, "checkout", "-q", "main")
    work = tmp_path / "work"
    subprocess.run(["git", "clone", "-q", "--depth=1", "--branch", "main", f"file://{origin}", str(work)],
                   check=True, capture_output=True)
    return origin, work, head


GOOD_NAMES = ["Pulumi.desk-1.yaml", "Pulumi.desk_2.prod.yaml"]


def good_pr(origin: Path) -> None:
    (origin / "stacks" / "Pulumi.old.yaml").unlink()
    (origin / "stacks" / "Pulumi.desk-1.yaml").write_text(GOOD_STACK + "# desk-1\n")
    (origin / "stacks" / "Pulumi.desk_2.prod.yaml").write_text(GOOD_STACK)


def symlink(origin: Path) -> None:
    (origin / "stacks" / "Pulumi.x.yaml").symlink_to("/etc/passwd")


def folder(origin: Path) -> None:
    (origin / "stacks" / "nested").mkdir()
    (origin / "stacks" / "nested" / "Pulumi.x.yaml").write_text(GOOD_STACK)


def other_file(origin: Path) -> None:
    (origin / "stacks" / "sitecustomize.py").write_text("import os\n")


def executable(origin: Path) -> None:
    (origin / "stacks" / "Pulumi.x.yaml").write_text(GOOD_STACK)
    (origin / "stacks" / "Pulumi.x.yaml").chmod(0o755)


def too_large(origin: Path) -> None:
    (origin / "stacks" / "Pulumi.x.yaml").write_text(GOOD_STACK + "#" * 65536 + "\n")


def odd_name(origin: Path) -> None:
    (origin / "stacks" / "Pulumi.$(id).yaml").write_text(GOOD_STACK)


def submodule(origin: Path) -> None:
    (origin / "stacks" / "Pulumi.x.yaml").mkdir()  # an unpopulated submodule, as git keeps one
    commit = git(origin, "rev-parse", "HEAD")
    git(origin, "update-index", "--add", "--cacheinfo", f"160000,{commit},stacks/Pulumi.x.yaml")


REFUSED = [symlink, folder, other_file, executable, too_large, odd_name, submodule]


def test_the_preview_takes_only_regular_stack_files_from_the_pull_requests_commit(tmp_path: Path) -> None:
    take = step(workflow("github-actions.yml")["jobs"]["preview"], TAKE_STACKS)["run"]
    stacks_rule()  # one rule everywhere
    _, work, head = origin_with(tmp_path, good_pr, "refs/pull/7/head")
    done = run_bash(take, work, {"HEAD": head, "GIT_TOKEN": "not-sent-to-a-file-remote"})
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (work / "stacks").iterdir()) == GOOD_NAMES
    assert (work / "stacks" / "Pulumi.desk-1.yaml").read_text() == GOOD_STACK + "# desk-1\n"
    assert (work / "__main__.py").read_text() == "TRUSTED = True\n"  # the default branch's code
    refused = run_bash(take, work, {"HEAD": "main; id"})
    assert refused.returncode != 0 and "not a commit id" in refused.stdout


@pytest.mark.parametrize("build", REFUSED, ids=[b.__name__ for b in REFUSED])
def test_the_preview_refuses_anything_in_stacks_but_a_stack_file(tmp_path: Path,
                                                                 build: Callable[[Path], None]) -> None:
    take = step(workflow("github-actions.yml")["jobs"]["preview"], TAKE_STACKS)["run"]
    _, work, head = origin_with(tmp_path, build, "refs/pull/7/head")
    done = run_bash(take, work, {"HEAD": head})
    assert done.returncode != 0 and "::error::" in done.stdout, done.stdout + done.stderr
    assert not any(p.is_symlink() or p.is_dir() for p in (work / "stacks").iterdir())
    # The pull request's own check applies the same rule to its checkout, without secrets.
    check = steps(workflow("github-actions-pull-request.yml")["jobs"]["check"])[-1]["run"]
    git(work, "fetch", "-q", "origin", head)
    git(work, "checkout", "-q", "--force", head)
    assert run_bash(check, work, {}).returncode != 0


def test_the_preview_step_still_runs_as_the_end_to_end_test_runs_it(tmp_path: Path) -> None:
    """tests/e2e/test_trust_boundary.py drops the fetch line and runs the step where HEAD exists."""
    _, work, head = origin_with(tmp_path, good_pr, "refs/pull/7/head")
    git(work, "fetch", "-q", "origin", head)
    take = step(workflow("github-actions.yml")["jobs"]["preview"], TAKE_STACKS)["run"]
    script = take.replace('git fetch --no-tags --depth=1 origin "$HEAD"\n', "")
    done = subprocess.run(["bash", "-ec", script], cwd=work, capture_output=True, text=True, check=False,
                          env={"HEAD": head, "PATH": "/usr/bin:/bin", "RUNNER_TEMP": runner_temp(work)})
    assert done.returncode == 0, done.stderr
    assert "# desk-1" in (work / "stacks" / "Pulumi.desk-1.yaml").read_text()
    # The default branch's stack files, kept aside for the runner before the PR's replaced them.
    assert (Path(runner_temp(work)) / "trusted-stacks").is_dir()


def merge_request_event(**changes: Any) -> dict[str, Any]:
    attributes = {"iid": 7, "action": "update", "oldrev": "0" * 40, "state": "opened",
                  "target_branch": "main"}
    attributes.update(changes)
    return {"object_kind": "merge_request", "object_attributes": attributes}


@pytest.mark.parametrize(("payload", "previewed"), [
    (merge_request_event(), True),
    (merge_request_event(action="open", oldrev=None), True),
    (merge_request_event(oldrev=None), False),  # a title or label change: no new commit
    (merge_request_event(target_branch="release"), False),
    (merge_request_event(state="merged"), False),
    (merge_request_event(iid="7$(id)"), False),  # only an integer IID is taken
    ({"object_kind": "push", "object_attributes": {"iid": 7}}, False),
    (None, False),  # no payload at all (a trigger without a webhook)
])
def test_gitlab_preview_takes_only_an_iid_from_the_webhook_payload(
        tmp_path: Path, payload: dict[str, Any] | None, previewed: bool) -> None:
    ci = gitlab()
    script = "\n".join(ci["preview"]["script"][:2])
    _, work, head = origin_with(tmp_path, good_pr, "refs/merge-requests/7/head")
    env = {"CI_DEFAULT_BRANCH": "main",
           "MARGIN_SPECIAL_KEYS_TRUSTED_STACKS": str(tmp_path / "trusted-stacks")}
    if payload is not None:
        attributes = payload["object_attributes"]
        if attributes.get("oldrev", "") is None:
            del attributes["oldrev"]
        (tmp_path / "payload.json").write_text(json.dumps(payload))
        env["TRIGGER_PAYLOAD"] = str(tmp_path / "payload.json")
    done = run_bash(script, work, env)
    assert done.returncode == 0, done.stdout + done.stderr
    if previewed:
        assert (work / "merge-request-iid.txt").read_text() == "7\n"
        assert sorted(p.name for p in (work / "stacks").iterdir()) == GOOD_NAMES
        assert git(work, "rev-parse", "FETCH_HEAD") == head
        # The default branch's stack files, kept aside before the request's replaced them.
        assert [p.name for p in (tmp_path / "trusted-stacks").iterdir()] == ["Pulumi.old.yaml"]
    else:
        assert "nothing to preview" in done.stdout and not (work / "merge-request-iid.txt").exists()
        assert [p.name for p in (work / "stacks").iterdir()] == ["Pulumi.old.yaml"]


# --- The checks themselves catch the shapes they exist for ----------------------------------------

def test_the_checks_catch_a_secret_in_a_job_a_pull_request_can_start() -> None:
    old: dict[str, Any] = {"on": {"pull_request": {}, "push": {}}, "jobs": {
        "preview": {"if": "github.event_name == 'pull_request'", "runs-on": ["self-hosted", "binance-egress"],
                    "steps": [{"run": "x", "env": {"P": "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}"}}]},
        "changes": {"if": "github.event_name == 'pull_request'", "outputs": {"code": "x"}},
        "preview-code": {"needs": "changes", "environment": "special-keys-review",
                         "if": "github.event_name == 'pull_request' && needs.changes.outputs.code == 'true'",
                         "steps": [{"env": {"P": "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}"}}]},
        "up": {"if": "github.event_name == 'push'", "steps": [{"env": {"P": "${{ secrets.X }}"}}]},
        "reusable": {"uses": "./.github/workflows/x.yml"},
        "inherit": {"if": "github.event_name == 'workflow_run'", "uses": "o/r/.github/workflows/x.yml@main",
                    "secrets": "inherit"}}}
    assert secret_holding_pull_request_jobs({"old.yml": old}) == {
        ("old.yml", "preview"), ("old.yml", "preview-code"), ("old.yml", "reusable")}
    old["on"]["workflow_run"] = {}
    assert ("old.yml", "inherit") in secret_holding_pull_request_jobs({"old.yml": old})
    gated = {"on": {"workflow_run": {}}, "jobs": {"trusted": {
        "if": "github.event.workflow_run.event == 'push'", "steps": [{"env": {"P": "${{ secrets.X }}"}}]}}}
    assert secret_holding_pull_request_jobs({"gated.yml": gated}) == set()
    assert EXECUTES_A_VARIABLE.search('if [ -n "$TRUSTED_CODE" ]; then sh -c "$TRUSTED_CODE"; fi')
    assert EXECUTES_A_VARIABLE.search('eval "$X"') and EXECUTES_A_VARIABLE.search('"$CMD" --flag')
    assert not EXECUTES_A_VARIABLE.search('echo "$iid" > merge-request-iid.txt')
    assert not EXECUTES_A_VARIABLE.search('[[ $mode != 100644 || $type != blob ]]')
    old_gitlab_preview = {"environment": {"name": "special-keys-preview"},
                          "rules": [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]}
    assert gitlab_can_run(old_gitlab_preview, GITLAB_MERGE_REQUEST)
    assert gitlab_holds_secrets(old_gitlab_preview)
    assert gitlab_condition('($A == "1" || $B == "2") && $C == null', {"B": "2"})
    assert not gitlab_condition('($A == "1" || $B == "2") && $C == null', {"B": "3"})
    assert not gitlab_condition('$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH', GITLAB_MERGE_REQUEST)


def test_the_trusted_preview_keeps_the_default_branchs_stack_files_for_the_runners_check() -> None:
    """How a stack's secrets are decrypted is pinned to the default branch (docs/security.md)."""
    github = yaml.safe_load((EXAMPLES / "github-actions.yml").read_text())["jobs"]["preview"]
    take = next(step for step in github["steps"]
                if step.get("name") == "Take only stacks/ from the pull request")
    run = take["run"]
    assert run.index('cp -a stacks "$RUNNER_TEMP/trusted-stacks"') < run.index("rm -rf stacks")
    runs = [step for step in github["steps"]
            if "margin_special_keys.gitops preview" in str(step.get("run"))]
    assert [step["env"]["MARGIN_SPECIAL_KEYS_TRUSTED_STACKS"] for step in runs] == [
        "${{ runner.temp }}/trusted-stacks"]
    gitlab = yaml.safe_load((EXAMPLES / "gitlab-ci.yml").read_text())["preview"]
    assert gitlab["variables"]["MARGIN_SPECIAL_KEYS_TRUSTED_STACKS"] == "$CI_PROJECT_DIR/.trusted-stacks"
    script = "\n".join(gitlab["script"])
    assert script.index('cp -a stacks "$MARGIN_SPECIAL_KEYS_TRUSTED_STACKS"') < script.index("rm -rf stacks")
