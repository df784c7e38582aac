"""The Pulumi CLI the runner drives: its environment, built in one place, and one process per
stack operation on a project directory. (The tests' and the benchmarks' project driver builds on
it, in devtools/engine.py, outside the package.)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RunnerError


def pulumi_environment(base: Mapping[str, str] | None = None, *, backend: str | None = None,
                       passphrase: str | None = None, home: Path | None = None,
                       tools_bin: Path | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with the project's engine first on PATH and
    no network needed (no update check, no plugin downloads). `backend`, `passphrase` and `home`
    are defaults: a value `base` already has wins, so a user's own settings are never replaced."""
    env = dict(os.environ if base is None else base)
    if tools_bin is not None and tools_bin.exists() \
            and str(tools_bin) not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = f"{tools_bin}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PULUMI_SKIP_UPDATE_CHECK", "true")
    env.setdefault("PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION", "true")
    if home is not None:
        env.setdefault("PULUMI_HOME", str(home))
    if backend is not None:
        env.setdefault("PULUMI_BACKEND_URL", backend)
    if passphrase is not None and not {"PULUMI_CONFIG_PASSPHRASE",
                                       "PULUMI_CONFIG_PASSPHRASE_FILE"} & set(env):
        env["PULUMI_CONFIG_PASSPHRASE"] = passphrase
    return env


def stack_config_dir(project_dir: Path) -> Path:
    """Where the project keeps Pulumi.<stack>.yaml: Pulumi.yaml's stackConfigDir, else the project."""
    import yaml

    project_file = project_dir / "Pulumi.yaml"
    settings = yaml.safe_load(project_file.read_text()) if project_file.exists() else None
    folder = settings.get("stackConfigDir") if isinstance(settings, dict) else None
    return project_dir / str(folder) if folder else project_dir


@dataclass
class Run:
    args: list[str]
    returncode: int
    stdout: str = field(repr=False)
    stderr: str = field(repr=False)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class StackNotFound(RunnerError):
    """The backend has no stack of that name."""


NO_STACK = re.compile(r"no stack named '[^']*' found")


@dataclass
class StackCommands:
    """The official CLI on a project that exists, one process per call and nothing else: every
    call names its stack (never `pulumi stack select`, which changes the stack a person has
    selected), and no call asks for more than its caller reads (the state without secrets, no
    outputs or history after an update, unlike the automation API's up)."""

    directory: Path
    env: Mapping[str, str] = field(repr=False)

    def run(self, *args: str, stack: str, on_line: Callable[[str], None] | None = None,
            extra_env: Mapping[str, str] | None = None) -> Run:
        """One command. With `on_line`, its output (stdout and stderr together, as a person sees
        it in a terminal) goes there line by line as it comes."""
        cmd = ["pulumi", *args, "--stack", stack, "--non-interactive", "--color", "never"]
        env = {**self.env, **(extra_env or {})}
        if on_line is None:
            proc = subprocess.run(cmd, cwd=self.directory, env=env, capture_output=True, text=True)
            run = Run(cmd, proc.returncode, proc.stdout, proc.stderr)
        else:
            lines = []
            with subprocess.Popen(cmd, cwd=self.directory, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, bufsize=1) as streamed:
                assert streamed.stdout is not None
                for line in streamed.stdout:
                    lines.append(line)
                    on_line(line)
            run = Run(cmd, streamed.returncode, "".join(lines), "")
        if run.returncode != 0 and NO_STACK.search(run.stderr or run.stdout):
            raise StackNotFound(stack)
        return run

    def operation(self, *args: str, stack: str,
                  on_line: Callable[[str], None]) -> tuple[Run, list[dict[str, Any]]]:
        """preview, up, refresh or destroy, with the engine's structured events (its event log,
        as the automation API reads it), so nothing is scraped from the text."""
        with tempfile.TemporaryDirectory(prefix="pulumi-events-") as folder:
            log = Path(folder) / "events.jsonl"
            run = self.run(*args, "--event-log", str(log), stack=stack, on_line=on_line,
                           extra_env={"PULUMI_DEBUG_COMMANDS": "true"})  # enables --event-log
            text = log.read_text() if log.exists() else ""
        events = [json.loads(line) for line in text.splitlines() if line.strip()]
        return run, events

    def config(self, stack: str) -> dict[str, str]:
        """The stack's config, secrets decrypted: each value as `pulumi config --json` gives it
        (structured ones as JSON text)."""
        run = self.run("config", "--json", "--show-secrets", stack=stack)
        if run.returncode != 0:
            raise RuntimeError(f"could not read the config of stack {stack!r}: {run.stderr.strip()}")
        return {key: str(entry.get("value", "")) for key, entry in json.loads(run.stdout).items()}

    def deployment(self, stack: str) -> dict[str, Any]:
        """The stack's state as `pulumi stack export` gives it: secrets stay ciphertext."""
        run = self.run("stack", "export", stack=stack)
        if run.returncode != 0:
            raise RuntimeError(f"could not export stack {stack!r}: {run.stderr.strip()}")
        return dict(json.loads(run.stdout).get("deployment") or {})

    def latest_run_start(self, stack: str) -> float | None:
        """When the newest run in the stack's history started (unix seconds), or None for a stack
        with no history: history holds the runs that ended, newest first; a killed run leaves
        none."""
        from datetime import datetime

        run = self.run("stack", "history", "--json", "--page-size", "1", stack=stack)
        if run.returncode != 0:
            raise RuntimeError(f"could not read the history of stack {stack!r}: {run.stderr.strip()}")
        starts = [datetime.fromisoformat(str(entry["startTime"]).replace("Z", "+00:00")).timestamp()
                  for entry in json.loads(run.stdout or "[]") if entry.get("startTime")]
        return max(starts, default=None)

    def stack_names(self) -> list[str]:
        """The project's stacks in the backend, whether or not a stack file exists for them."""
        cmd = ["pulumi", "stack", "ls", "--json", "--non-interactive", "--color", "never"]
        proc = subprocess.run(cmd, cwd=self.directory, env=dict(self.env), capture_output=True,
                              text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"could not list the project's stacks: {proc.stderr.strip()}")
        return [str(entry["name"]).rsplit("/", 1)[-1] for entry in json.loads(proc.stdout or "[]")]

    def init(self, stack: str) -> None:
        run = self.run("stack", "init", stack=stack)
        if run.returncode != 0:
            raise RuntimeError(f"could not create stack {stack!r}: {run.stderr.strip()}")
