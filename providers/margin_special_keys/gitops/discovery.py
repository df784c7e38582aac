"""The stacks of a project: its Pulumi.<stack>.yaml files (refused whole when the folder holds
anything else), the CLI opened on one of them, and the progress lines a person watching a
pipeline reads (each prefixed with its stack's name)."""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import RunnerError
from . import backends
from .engine import StackCommands, StackNotFound, stack_config_dir

_print_lock = threading.Lock()


STACK_NAME = re.compile(r"[A-Za-z0-9_.-]+")


STACK_FILE = re.compile(r"Pulumi\.(.+)\.yaml")


MAX_STACK_FILE_BYTES = 1 << 20


# Top-level keys a stack file may hold. `environment:` (Pulumi ESC imports) is refused: an
# environment can set variables such as PYTHONPATH for every process of the run, so a pull request
# that adds one would run code of its choosing beside the secrets.
STACK_FILE_KEYS = {"config", "encryptionsalt", "secretsprovider", "encryptedkey"}


# How a stack's config is decrypted. A pull request that changes them can aim the CLI at a key
# service of its choosing (`secretsprovider: awskms://…?endpoint=http://…`, whose answer then
# reaches the comment) or decrypt one stack's config with another's salt or data key, and so sign
# with another desk's provider key. Where the run names a trusted copy of the stack files (the
# default branch's, TRUSTED_STACKS_ENV), each must match it.
ENCRYPTION_KEYS = ("encryptionsalt", "secretsprovider", "encryptedkey")


TRUSTED_STACKS_ENV = "MARGIN_SPECIAL_KEYS_TRUSTED_STACKS"


def stack_file_problems(project_dir: Path) -> list[str]:
    """What makes the stack folder unsafe to run: a pull request may add files to it, and the
    runner takes it as data only. In a folder of their own (Pulumi.yaml's stackConfigDir), only
    regular Pulumi.<stack>.yaml files may be there; in the project folder, the stack files are
    checked. Never a symlink (it can point at any file of the runner), never an ESC environment."""
    folder = stack_config_dir(project_dir)
    if folder.is_symlink():
        return [f"{folder.name} is a symlink"]
    dedicated = folder.resolve() != project_dir.resolve()
    trusted_dir = os.environ.get(TRUSTED_STACKS_ENV)
    trusted = Path(trusted_dir) if trusted_dir else None
    problems = []
    for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
        match = STACK_FILE.fullmatch(entry.name)
        if not match and not dedicated:
            continue
        if entry.name == ".gitkeep" and entry.is_file() and not entry.is_symlink() \
                and entry.stat().st_size == 0:
            continue
        if entry.is_symlink():
            problems.append(f"{entry.name} is a symlink")
        elif not entry.is_file():
            problems.append(f"{entry.name} is not a regular file")
        elif not match:
            problems.append(f"{entry.name} is not a Pulumi.<stack>.yaml file")
        elif not STACK_NAME.fullmatch(match.group(1)):
            problems.append(f"{entry.name}: stack names are letters, digits, '.', '_' or '-'")
        elif entry.stat().st_size > MAX_STACK_FILE_BYTES:
            problems.append(f"{entry.name} is larger than 1 MiB")
        else:
            import yaml

            try:
                document = yaml.safe_load(entry.read_text())
            except yaml.YAMLError:
                problems.append(f"{entry.name} is not valid YAML")
                continue
            extra = sorted(set(document or {}) - STACK_FILE_KEYS) if isinstance(document, dict) \
                else ["(not a map)"]
            if extra:
                problems.append(f"{entry.name} holds {', '.join(map(str, extra))}: a stack file holds"
                                f" only {', '.join(sorted(STACK_FILE_KEYS))} (ESC environments are"
                                " set by the pipeline, never by a stack file)")
            elif trusted is not None:
                problems += _encryption_problems(entry.name, document or {}, trusted)
    return problems


def _encryption_problems(name: str, document: dict[str, Any], trusted: Path) -> list[str]:
    """How the stack's config is decrypted must be what the trusted copy says (ENCRYPTION_KEYS)."""
    import yaml

    try:
        pinned = yaml.safe_load((trusted / name).read_text()) or {}
    except FileNotFoundError:
        return [f"{name} is not on the default branch: a new stack is previewed after its merge"]
    except (OSError, yaml.YAMLError):
        return [f"{name}: the trusted copy in {TRUSTED_STACKS_ENV} cannot be read"]
    changed = [k for k in ENCRYPTION_KEYS if document.get(k) != (pinned or {}).get(k)]
    return [f"{name} changes {', '.join(changed)}: how a stack's secrets are decrypted is never"
            " changed by a pull request"] if changed else []


def discover_stacks(project_dir: Path, selection: Iterable[str] | None = None) -> list[str]:
    """The stacks of the project: its Pulumi.<stack>.yaml files, refused whole, before anything
    runs, when the folder holds anything else (stack_file_problems)."""
    folder = stack_config_dir(project_dir)
    problems = stack_file_problems(project_dir)
    if problems:
        raise SystemExit(f"refusing to run: {folder} must hold only regular Pulumi.<stack>.yaml"
                         f" files: {'; '.join(problems)}")
    found = sorted(m.group(1) for p in folder.glob("Pulumi.*.yaml")
                   if (m := STACK_FILE.fullmatch(p.name)))
    if selection:
        wanted = list(dict.fromkeys(selection))
        missing = [s for s in wanted if s not in found]
        if missing:
            raise SystemExit(f"no {folder}/Pulumi.<stack>.yaml for: {', '.join(missing)}")
        return wanted
    return found


def progress(stack: str, line: str) -> None:
    text = line.rstrip()
    if text:
        with _print_lock:
            print(f"[{stack}] {text}", file=sys.stderr, flush=True)


class StackUnavailable(RunnerError):
    """The stack cannot be worked on as it is; the message says what to do."""


def commands_for(project_dir: Path, name: str) -> StackCommands:
    """The CLI on the project, with the project's own .tools/bin first on PATH if it has one, for
    a stack whose checkpoint can be read."""
    from .engine import pulumi_environment

    backend = backend_of(project_dir)
    broken = backend.empty_checkpoint_attrs(name) if isinstance(backend, backends.FileBackend) else []
    if broken:
        raise StackUnavailable(
            f"the backend's {broken[0].name} is empty (a run killed while it wrote the checkpoint"
            f" leaves this; the checkpoint itself is intact): remove it with `rm {broken[0]}`,"
            " then run the command again")
    return StackCommands(project_dir, pulumi_environment(tools_bin=project_dir / ".tools" / "bin"))


def backend_of(project_dir: Path) -> backends.Backend | None:
    """The backend's lock reader, or None where the runner has none (then the CLI's own lock
    refuses a second run, and the runner reports what it says)."""
    try:
        return backends.open_backend(backends.resolve_url(project_dir, os.environ), project_dir)
    except backends.LocksUnreadable:
        return None


def missing(name: str) -> StackUnavailable:
    return StackUnavailable(
        f"stack {name!r} does not exist in the backend, and only `up` creates stacks: run"
        f" `pulumi stack init {name}` (or the `up` job on the main branch) first")


def config_of(commands: StackCommands, name: str) -> dict[str, str]:
    try:
        return commands.config(name)
    except StackNotFound:
        raise missing(name) from None
