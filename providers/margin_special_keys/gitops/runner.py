"""Run preview, up, refresh, drift or the orphan audit over many stacks, with bounded parallelism.

Each stack is a `Pulumi.<stack>.yaml` in the folder Pulumi.yaml's stackConfigDir names
(discovery.py), and each runs the project's own program through the official CLI, one process per
operation (engine.py `StackCommands`). A stack another run holds is reported busy, never run.
"""

from __future__ import annotations

import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import UnscheduledChanges
from . import audit, backends
from .discovery import backend_of, commands_for, config_of, missing, progress
from .engine import StackCommands, StackNotFound
from .events import Events, counts, error_text
from .reaping import end_leftover_plugins
from .report import StackResult, our_words

OPERATIONS = ("preview", "up", "refresh", "drift", "orphans", "rotate")


LOCK_POLL_S = 2.0


def _lock_holder(project_dir: Path, name: str, lock_timeout_s: float) -> str | None:
    """Who holds the stack's lock, in one line, after waiting up to `lock_timeout_s` for it to
    be released; None when no run holds it (or the backend cannot be read: the CLI decides)."""
    backend = backend_of(project_dir)
    if backend is None:
        progress(name, "cannot tell whether another run holds this stack (the runner has no reader"
                       " for this backend's locks); the engine's own lock still refuses a second update")
        return None
    from .audit import project_name

    project = project_name(project_dir)
    deadline = time.monotonic() + lock_timeout_s
    while True:
        try:
            held = backend.locks(project, name)
        except backends.LocksUnreadable as exc:
            progress(name, f"{exc}; the engine's own lock still refuses a second update")
            return None
        if not held:
            return None
        if time.monotonic() >= deadline:
            return held[0].describe(name)
        progress(name, f"waiting for the lock: {held[0].holder()}")
        time.sleep(min(LOCK_POLL_S, max(0.1, deadline - time.monotonic())))


# What the CLI says when another run holds the lock: a DIY backend (lock.go) names the holder;
# Pulumi Cloud answers 409.
CLI_LOCKED = re.compile(r"the stack is currently locked by \d+ lock\(s\)"
                        r"|Another update is currently in progress")


CLI_HOLDER = re.compile(r"created by (\S+)@(\S+) \(pid (\d+)\) at (\S+)")


def _locked_by_cli(name: str, output: str) -> str | None:
    if not CLI_LOCKED.search(output):
        return None
    holder = CLI_HOLDER.search(output)
    if holder is None:
        return f"stack {name!r} is locked by another run (an update is in progress)"
    user, host, pid, since = holder.groups()
    return backends.Lock(user, host, int(pid), since).describe(name)


# The official CLI's flags per operation. Every refresh runs the program (--run-program), so it
# uses the stack's config as it is now, not the provider settings stored with the last update: a
# fixed baseUrl or a rotated provider key takes effect at once.
COMMANDS = {
    # A pull request sees what the merge will do: refresh first, exactly like `up`; a refreshing
    # preview writes no state.
    "preview": ("preview", "--refresh", "--run-program"),
    "drift": ("preview", "--refresh", "--run-program"),
    # With its preview (no --skip-preview), in one process: a plan the account cannot hold (its
    # 30-key room) is refused before anything is made, never half way. Refresh first, so an up
    # restores whatever was changed on the exchange by hand.
    "up": ("up", "--yes", "--refresh", "--run-program"),
    "refresh": ("refresh", "--yes", "--skip-preview", "--run-program"),
}


def run_stack(project_dir: Path, name: str, operation: str, lock_timeout_s: float = 0.0) -> StackResult:
    """One operation on one stack (COMMANDS). A stack another run holds is `busy`: reported with
    who holds it, never run and never failed."""
    result = StackResult(stack=name, operation=operation)
    start = time.monotonic()
    progress(name, f"== {operation} started")
    events = Events()
    try:
        commands = commands_for(project_dir, name)
        if operation in COMMANDS or operation == "rotate":
            result.busy = _lock_holder(project_dir, name, lock_timeout_s)
            if result.busy is None:
                if operation == "rotate":
                    events = _rotate(commands, name, result)
                else:
                    run, logged = _operation(commands, name, operation)
                    events = Events(logged)
                    result.busy = _locked_by_cli(name, run.output) if run.returncode != 0 else None
                    if run.returncode != 0 and result.busy is None:
                        raise RuntimeError(run.output)
                result.steps = events.key_steps()
                if operation == "refresh":
                    result.changes = events.changes()
                else:
                    result.changes = counts(result.steps)
                # What time alone made due (a rotation by age, a retirement) is listed, but is
                # not drift: nobody changed anything.
                result.drifted = (operation == "drift" and result.busy is None
                                  and any(not step.scheduled for step in result.steps))
        else:
            raise ValueError(f"unknown operation {operation!r}")
    except Exception as exc:  # noqa: BLE001 - one stack's failure is reported, the others go on
        result.ok = False
        messages = events.errors()
        result.error = our_words(" / ".join(messages) if messages else error_text(exc))
    ended = end_leftover_plugins(project_dir)
    if ended:
        progress(name, f"ended {ended} process(es) a killed run left (provider or language host)")
    result.duration_s = round(time.monotonic() - start, 2)
    verdict = ("failed: " + (result.error or "") if not result.ok
               else f"not run: {result.busy}" if result.busy else "done")
    progress(name, f"== {operation} {verdict} in {result.duration_s:.1f}s")
    return result


def _rotate(commands: StackCommands, name: str, result: StackResult) -> Events:
    """The scheduled job: refresh, then apply the stack only when its preview holds nothing but
    what time made due (rotations by age, retirements after an overlap window), and then only
    those keys (`--target`): a change someone declared but nobody applied waits for its own up."""
    def out(line: str) -> None:
        progress(name, line)

    try:
        # First the exchange's truth into the state (a key deleted by hand, a retirement a killed
        # run finished): what the stack outputs hand to trading systems must not lag behind.
        run, logged = commands.operation(*COMMANDS["refresh"], stack=name, on_line=out)
        if run.returncode == 0:
            run, logged = commands.operation("preview", stack=name, on_line=out)
    except StackNotFound:
        raise missing(name) from None
    events = Events(logged)
    if run.returncode == 0:
        steps = events.key_steps()
        unscheduled = [step for step in steps if not step.scheduled]
        if unscheduled:
            result.steps, result.changes = steps, counts(steps)
            raise UnscheduledChanges(
                "not applied: the preview holds changes that time did not make due ("
                + ", ".join(f"{step.key}: {step.op}" for step in unscheduled)
                + "); apply them with a reviewed up first")
        if not steps:
            progress(name, "nothing due")
            return events
        # Only those keys, and the stack itself so that its outputs (the credentials) follow.
        urns = [step.urn for step in steps] + [urn for urn in [events.stack_urn()] if urn]
        targets = [arg for urn in urns for arg in ("--target", urn)]
        run, logged = commands.operation(*COMMANDS["up"], *targets, stack=name, on_line=out)
        events = Events(logged)
    if run.returncode != 0:
        result.busy = _locked_by_cli(name, run.output)
        if result.busy is None:
            raise RuntimeError(run.output)
    return events


def _operation(commands: StackCommands, name: str,
               operation: str) -> tuple[Any, list[dict[str, Any]]]:
    """Only `up` (a merge) may create a stack: a pull request's preview must never write to the
    shared backend."""
    def out(line: str) -> None:
        progress(name, line)

    try:
        return commands.operation(*COMMANDS[operation], stack=name, on_line=out)
    except StackNotFound:
        if operation != "up":
            raise missing(name) from None
    progress(name, "creating the stack (its first up)")
    commands.init(name)
    return commands.operation(*COMMANDS[operation], stack=name, on_line=out)


def deliver(project_dir: Path, results: list[StackResult], folder: Path) -> list[Path]:
    """Each applied stack's sealed credentials (`sealed-<name>` outputs: age files only their
    recipients open) written to `folder/<stack>/<name>.age`, for a pipeline to hand out. Files
    of keys no longer sealed are removed, so a folder never offers a key that was taken away."""
    written = []
    for result in results:
        if not result.ok or result.busy:
            continue
        commands = commands_for(project_dir, result.stack)
        run = commands.run("stack", "output", "--json", stack=result.stack)
        if run.returncode != 0:
            result.ok = False
            result.error = ("could not read the stack's outputs to deliver them: "
                            + our_words(run.stderr.strip()))
            continue
        outputs = json.loads(run.stdout or "{}")
        target = folder / result.stack
        target.mkdir(parents=True, exist_ok=True)
        keep = set()
        for output, value in sorted(outputs.items()):
            if output.startswith("sealed-") and isinstance(value, str):
                path = target / f"{output.removeprefix('sealed-')}.age"
                path.write_text(value)
                keep.add(path)
                written.append(path)
        for stale in target.glob("*.age"):
            if stale not in keep:
                stale.unlink()
    return written


def run(project_dir: Path, operation: str, stacks: list[str], parallel: int,
        lock_timeout_s: float = 0.0) -> list[StackResult]:
    if operation not in OPERATIONS:
        raise ValueError(f"operation must be one of {', '.join(OPERATIONS)}")
    if operation == "orphans":
        return audit.audit_orphans(project_dir, stacks, parallel)
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        return list(pool.map(lambda s: run_stack(project_dir, s, operation, lock_timeout_s), stacks))


def preflight(project_dir: Path, name: str, record: Path | None = None) -> list[Any]:
    """The read-only preflight of one stack's account (gitops/preflight.py); with `record`, every
    raw answer is written there, redacted."""
    from ..settings import make_client, read_settings
    from ..stack_config import keys_from_cli_config
    from . import preflight as checks

    config = config_of(commands_for(project_dir, name), name)
    settings = read_settings(config.get, os.environ)
    recorder = None
    if record is not None:
        secrets = [v for k, v in config.items() if k.startswith("binance:") and v]
        recorder = checks.Recorder(record / name, [settings.api_key, *secrets])
    client = make_client(settings, observer=recorder)
    declared = [(str(k.args["api_name"]), k.args.get("symbol"), bool(k.args.get("adopt_api_key")))
                for k in keys_from_cli_config(config)]
    return checks.run_preflight(client, other_api_keys=settings.other_api_keys,
                                recv_window_ms=settings.recv_window_ms, declared=declared)
