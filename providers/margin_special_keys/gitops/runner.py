"""Run preview, up, refresh, drift or the orphan audit over many stacks, with bounded parallelism.

Each stack is a `Pulumi.<stack>.yaml` in the folder Pulumi.yaml's stackConfigDir names, and each
runs the project's own program through the official CLI, one process per operation
(gitops/engine.py `StackCommands`). Progress lines go to stderr prefixed with the stack's name, so
a person watching a pipeline sees which stack is running.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import RunnerError
from . import audit, backends, orphans
from .engine import StackCommands, StackNotFound, stack_config_dir
from .report import StackResult, our_words

OPERATIONS = ("preview", "up", "refresh", "drift", "orphans")
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


def _commands(project_dir: Path, name: str) -> StackCommands:
    """The CLI on the project, with the project's own .tools/bin first on PATH if it has one, for
    a stack whose checkpoint can be read."""
    from .engine import pulumi_environment

    backend = _backend(project_dir)
    broken = backend.empty_checkpoint_attrs(name) if isinstance(backend, backends.FileBackend) else []
    if broken:
        raise StackUnavailable(
            f"the backend's {broken[0].name} is empty (a run killed while it wrote the checkpoint"
            f" leaves this; the checkpoint itself is intact): remove it with `rm {broken[0]}`,"
            " then run the command again")
    return StackCommands(project_dir, pulumi_environment(tools_bin=project_dir / ".tools" / "bin"))


def _backend(project_dir: Path) -> backends.Backend | None:
    """The backend's lock reader, or None where the runner has none (then the CLI's own lock
    refuses a second run, and the runner reports what it says)."""
    try:
        return backends.open_backend(backends.resolve_url(project_dir, os.environ), project_dir)
    except backends.LocksUnreadable:
        return None


LOCK_POLL_S = 2.0


def _lock_holder(project_dir: Path, name: str, lock_timeout_s: float) -> str | None:
    """Who holds the stack's lock, in one line, after waiting up to `lock_timeout_s` for it to
    be released; None when no run holds it (or the backend cannot be read: the CLI decides)."""
    backend = _backend(project_dir)
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


def _missing(name: str) -> StackUnavailable:
    return StackUnavailable(
        f"stack {name!r} does not exist in the backend, and only `up` creates stacks: run"
        f" `pulumi stack init {name}` (or the `up` job on the main branch) first")


def _config(commands: StackCommands, name: str) -> dict[str, str]:
    try:
        return commands.config(name)
    except StackNotFound:
        raise _missing(name) from None


GENERIC_ERRORS = ("Resource monitor has terminated", "update failed", "preview failed",
                  "refresh failed", "an unhandled error occurred: program exited",
                  "one or more errors occurred")


def _error_text(exc: BaseException) -> str:
    """The engine's diagnostics for the failure, without its generic follow-up lines, and
    without what an exchange or another service wrote (report.our_words)."""
    text = our_words(str(exc))
    if "Diagnostics:" in text:
        text = text.split("Diagnostics:", 1)[1].split("\nResources:", 1)[0]
    kept = []
    for line in (ln.strip() for ln in text.splitlines()):
        # Either language host's wording: ours says "Program exited", Pulumi's "program exited".
        if not line or line.endswith("):") or any(g.lower() in line.lower() for g in GENERIC_ERRORS):
            continue
        if line.startswith(("Traceback", "File ", "^", "return ", "result = ", "raise ")):
            continue
        kept.append(line.removeprefix("error:").strip())
    return " ".join(kept)[-600:] if kept else (text.strip().splitlines() or [repr(exc)])[-1]


def _changes(summary: dict[str, int] | None) -> dict[str, int]:
    return {k: int(v) for k, v in (summary or {}).items() if k != "same" and v}


REPLACE_OPS = ("replace", "create-replacement", "delete-replaced")
CHANGE_OPS = ("create", "update", "delete", *REPLACE_OPS)


class Events:
    """What the engine reported, from its event log (never scraped from text): each key that
    changes, how and why, and each error message."""

    def __init__(self, events: list[dict[str, Any]] | None = None) -> None:
        self.events = events or []

    def key_steps(self) -> list[dict[str, Any]]:
        """One entry per special key that changes (never the Stack or a provider resource): its
        operation, the fields (stack-config names) and why, and what Binance holds against what
        is declared for each changed field a summary may show (never a sensitive one)."""
        from margin_special_keys.fields import DIFF_FIELDS, PYTHON_TO_CONFIG

        steps: dict[str, dict[str, Any]] = {}
        for event in self.events:
            meta = (event.get("resourcePreEvent") or {}).get("metadata") or {}
            if not str(meta.get("type", "")).endswith("MarginSpecialKey"):
                continue
            op = str(meta.get("op", ""))
            if op not in CHANGE_OPS:
                continue
            name = str(meta.get("urn", "")).rsplit("::", 1)[-1]
            step = steps.setdefault(name, {"key": name, "op": op, "fields": [], "because": []})
            if op in REPLACE_OPS:
                step["op"] = "replace"
            changed = list(meta.get("diffs") or []) + [re.split(r"[.\[]", path, maxsplit=1)[0]
                                                       for path in (meta.get("detailedDiff") or {})]
            held = (meta.get("old") or {}).get("outputs")
            old_inputs = (meta.get("old") or {}).get("inputs")
            new_inputs = (meta.get("new") or {}).get("inputs")
            if op == "update" and not changed and old_inputs is not None and new_inputs is not None:
                # Dynamic providers' diffs name no properties: compare the inputs themselves.
                changed = [f for f in DIFF_FIELDS if old_inputs.get(f) != new_inputs.get(f)]
            for field_name in changed:
                shown = PYTHON_TO_CONFIG.get(field_name, field_name)
                if shown not in step["fields"]:
                    step["fields"].append(shown)
            for field_name in meta.get("keys") or []:
                shown = PYTHON_TO_CONFIG.get(field_name, field_name)
                if shown not in step["because"]:
                    step["because"].append(shown)
            if held is not None and new_inputs is not None:
                step.update(_held_and_declared(held, new_inputs, [*changed, *(meta.get("keys") or [])]))
            if op == "create" and name in self._gone():
                step["gone"] = True
        return list(steps.values())

    def _gone(self) -> set[str]:
        """The keys this run's refresh found gone from the exchange: their state left, so the
        plan makes them again."""
        gone = set()
        for event in self.events:
            meta = (event.get("resOutputsEvent") or {}).get("metadata") or {}
            if str(meta.get("type", "")).endswith("MarginSpecialKey") and meta.get("op") == "refresh" \
                    and meta.get("old") and not meta.get("new"):
                gone.add(str(meta.get("urn", "")).rsplit("::", 1)[-1])
        return gone

    def changes(self) -> dict[str, int]:
        """The summary's resource changes (the last summary: an update's, not its preview's)."""
        summaries = [e["summaryEvent"] for e in self.events if e.get("summaryEvent")]
        return _changes(summaries[-1].get("resourceChanges") if summaries else None)

    def errors(self) -> list[str]:
        """Each error's message: the last line a person reads, never a traceback's source line."""
        found = []
        for event in self.events:
            diag = event.get("diagnosticEvent")
            if not diag or diag.get("severity") != "error":
                continue
            lines = [ln.strip() for ln in str(diag.get("message", "")).splitlines() if ln.strip()]
            if not lines or any(g.lower() in lines[-1].lower() for g in GENERIC_ERRORS):
                continue
            text = lines[-1]
            # A provider's exception arrives as "Type: message": keep the message.
            text = re.sub(r"^(?:[A-Za-z_]\w*\.)*[A-Z]\w*:\s+", "", text)
            if text not in found:
                found.append(text)
        return found


# Fields whose values a summary may show beside the key: what a person on call needs to see what
# changed. Never a sensitive one (fields.py), never keepers (they may carry a note).
SHOWN_VALUES = ("ip_whitelist", "key_type", "permission_mode", "symbol", "api_name", "rsa_bits")


def _held_and_declared(held: dict[str, Any], declared: dict[str, Any],
                       changed: list[str]) -> dict[str, Any]:
    """What Binance holds (the refreshed state) against what is declared, for each changed field
    a summary may show; for the IP list, the addresses only one side has."""
    from margin_special_keys.fields import PYTHON_TO_CONFIG

    shown = [f for f in SHOWN_VALUES if f in changed]
    out: dict[str, Any] = {
        "binance": {PYTHON_TO_CONFIG[f]: held.get(f) for f in shown},
        "declared": {PYTHON_TO_CONFIG[f]: declared.get(f) for f in shown},
    }
    if "ip_whitelist" in shown:
        on_binance = set(held.get("ip_whitelist") or [])
        wanted = set(declared.get("ip_whitelist") or [])
        out["ipsOnlyOnBinance"] = sorted(on_binance - wanted)
        out["ipsOnlyDeclared"] = sorted(wanted - on_binance)
    return out


def _counts(steps: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for step in steps:
        counts[step["op"]] = counts.get(step["op"], 0) + 1
    return counts


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _has_engine_ancestor(pid: int) -> bool:
    """Whether a `pulumi` CLI process (the engine) is among the process's ancestors. Between
    them stands the launcher script `pulumi-resource-pulumi-python`, which outlives the engine."""
    for _ in range(8):
        pid = _parent(pid)
        if pid <= 1:
            return False
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if argv and Path(argv[0].decode(errors="replace")).name == "pulumi":
            return True
    return False


# Processes the engine starts that outlive it when a run is killed: Pulumi's dynamic provider host
# (no watchdog: it keeps listening on loopback with the provider's credentials loaded) and its
# launcher script, and the Python language host with the program it runs (Pulumi's Go host lingers
# for up to five minutes; the program's environment holds the stack's decrypted config).
LEFTOVER_MARKERS = (b"pulumi.dynamic", b"pulumi-language-python", b"language_host.py")


def end_leftover_plugins(project_dir: Path) -> int:
    """End the processes killed runs left in this project (LEFTOVER_MARKERS). Only this user's,
    only this project's (their working directory), only those whose engine is gone."""
    import signal

    ended = 0
    proc_root = Path("/proc")
    if not proc_root.exists():
        return 0
    for entry in proc_root.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if not any(m in arg for arg in argv[:5] for m in LEFTOVER_MARKERS):
                continue
            if os.readlink(entry / "cwd") != str(project_dir) or _has_engine_ancestor(pid):
                continue  # another project's, or a run in progress
            launcher = _parent(pid)
            launcher_argv = Path(f"/proc/{launcher}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        # Only these processes: their process group may be ours.
        for victim in (pid, launcher) if b"pulumi-resource-pulumi-python" in launcher_argv else (pid,):
            try:
                os.kill(victim, signal.SIGTERM)
            except OSError:
                continue
        ended += 1
    return ended


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
        commands = _commands(project_dir, name)
        if operation in COMMANDS:
            result.busy = _lock_holder(project_dir, name, lock_timeout_s)
            if result.busy is None:
                run, logged = _operation(commands, name, operation)
                events = Events(logged)
                result.busy = _locked_by_cli(name, run.output) if run.returncode != 0 else None
                if run.returncode != 0 and result.busy is None:
                    raise RuntimeError(run.output)
                result.steps = events.key_steps()
                if operation == "refresh":
                    result.changes = events.changes()
                else:
                    result.changes = _counts(result.steps)
                result.drifted = operation == "drift" and bool(result.steps) and result.busy is None
        else:
            raise ValueError(f"unknown operation {operation!r}")
    except Exception as exc:  # noqa: BLE001 - one stack's failure is reported, the others go on
        result.ok = False
        messages = events.errors()
        result.error = our_words(" / ".join(messages) if messages else _error_text(exc))
    ended = end_leftover_plugins(project_dir)
    if ended:
        progress(name, f"ended {ended} process(es) a killed run left (provider or language host)")
    result.duration_s = round(time.monotonic() - start, 2)
    verdict = ("failed: " + (result.error or "") if not result.ok
               else f"not run: {result.busy}" if result.busy else "done")
    progress(name, f"== {operation} {verdict} in {result.duration_s:.1f}s")
    return result


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
            raise _missing(name) from None
    progress(name, "creating the stack (its first up)")
    commands.init(name)
    return commands.operation(*COMMANDS[operation], stack=name, on_line=out)


def run(project_dir: Path, operation: str, stacks: list[str], parallel: int,
        lock_timeout_s: float = 0.0) -> list[StackResult]:
    if operation not in OPERATIONS:
        raise ValueError(f"operation must be one of {', '.join(OPERATIONS)}")
    if operation == "orphans":
        return audit_orphans(project_dir, stacks, parallel)
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        return list(pool.map(lambda s: run_stack(project_dir, s, operation, lock_timeout_s), stacks))


def _project(project_dir: Path, parallel: int = 4) -> audit.Project:
    """Every stack of the project as the audit reads them: each stack file, and every stack the
    backend holds for the project (gitops/audit.py)."""
    return audit.Project.read(project_dir, lambda s: _commands(project_dir, s),
                              discover_stacks(project_dir), parallel)


def audit_orphans(project_dir: Path, stacks: list[str], parallel: int) -> list[StackResult]:
    """The orphan audit of `stacks`; every stack of the project counts, whatever is selected."""
    start = time.monotonic()
    for name in stacks:
        progress(name, "== orphans started")
    project = _project(project_dir, parallel)
    found = audit.audit(project, stacks, lambda name: functools.partial(progress, name))
    results = []
    for name in stacks:
        result = StackResult(stack=name, operation="orphans")
        outcome = found[name]
        if isinstance(outcome, audit.Busy):
            result.busy = str(outcome)
        elif isinstance(outcome, Exception):
            result.ok, result.error = False, our_words(_error_text(outcome))
        else:
            result.orphans = outcome
        result.duration_s = round(time.monotonic() - start, 2)
        verdict = ("failed: " + (result.error or "") if not result.ok
                   else f"not run: {result.busy}" if result.busy else "done")
        progress(name, f"== orphans {verdict} in {result.duration_s:.1f}s")
        results.append(result)
    end_leftover_plugins(project_dir)
    return results


def preflight(project_dir: Path, name: str, record: Path | None = None) -> list[Any]:
    """The read-only preflight of one stack's account (gitops/preflight.py); with `record`, every
    raw answer is written there, redacted."""
    from margin_special_keys.settings import make_client, read_settings
    from margin_special_keys.stack_config import keys_from_cli_config

    from . import preflight as checks

    config = _config(_commands(project_dir, name), name)
    settings = read_settings(config.get, os.environ)
    recorder = None
    if record is not None:
        secrets = [v for k, v in config.items() if k.startswith("binance:") and v]
        recorder = checks.Recorder(record / name, [settings.api_key, *secrets])
    client = make_client(settings, observer=recorder)
    declared = [(str(k.args["api_name"]), str(k.args["symbol"]).upper() if k.args.get("symbol") else None,
                 bool(k.args.get("adopt_api_key"))) for k in keys_from_cli_config(config)]
    return checks.run_preflight(client, other_api_keys=settings.other_api_keys,
                                recv_window_ms=settings.recv_window_ms, declared=declared)


def exit_special_key_mode(project_dir: Path, name: str, confirm: Callable[[str], bool]) -> int:
    """Exit Special Key Mode for one stack's account (Cross Margin Classic): Binance deletes every
    cross margin special key of the account at once and allows no new one for 24 hours. Shows
    each key that goes with the stack that holds it (or "unmanaged"), and every stack of the
    project on that account, which the 24 hours stop too; asks `confirm`; then refreshes the stack
    so its state shows the keys gone."""
    commands = _commands(project_dir, name)
    try:
        project = _project(project_dir)
        own_account, same_names = project.account(name)
        states = project.states([*same_names, name])
        # A running up of any stack on the account may be making keys this would delete.
        project.require_unlocked([name, *same_names])
    except audit.Busy as exc:
        progress(name, f"not sent: {exc}")
        return 5
    except audit.Refused as exc:
        progress(name, f"not sent: {exc}")
        return 1
    own = states[name]
    same = [states[n] for n in same_names]
    client = audit.account_keys(own_account.config).client
    doomed = client.list_special_keys(None)
    holders = {key: s.stack for s in [own, *same] for key in s.managed}
    progress(name, f"account at {client.base_url}: {len(doomed)} cross margin special key(s)"
                   " will be deleted by Binance:")
    for key in doomed:
        holder = f"stack {holders[key.api_key]!r}" if key.api_key in holders else "unmanaged"
        progress(name, f"  {key.api_key} {key.api_name!r}: {holder}")
    affected = ", ".join(repr(s.stack) for s in [own, *same])
    progress(name, f"and no new special key can be made on this account for 24 hours: stack(s)"
                   f" {affected} cannot create or rotate keys until then")
    if not confirm(f"exit special key mode for stack {name!r}"):
        progress(name, "not confirmed: nothing was sent")
        return 1
    client.exit_special_key_mode()
    reopen = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(time.time() + 24 * 3600))
    progress(name, f"special key mode exited; new special keys can be created from about {reopen}")
    run = commands.run("refresh", "--yes", "--skip-preview", "--run-program", stack=name,
                       on_line=lambda line: progress(name, line))
    return 0 if run.returncode == 0 else 1


def delete_orphans(project_dir: Path, results: list[StackResult],
                   confirm: Callable[[str], bool]) -> None:
    """Delete, by apiKey, the keys each stack provably made and lost (gitops/audit.py): only
    after `confirm`, and never while a run holds a stack of the account or where the runner
    cannot tell. Every other verdict is reported and never touched. A stack whose deletion is
    refused reads busy (another run holds a stack) or failed (with why), in its summary row."""
    doomed = [(r.stack, f) for r in results if r.ok for f in r.orphans if f.verdict == orphans.ORPHAN]
    if not doomed:
        return
    print("these keys will be deleted, by apiKey:", file=sys.stderr)
    for stack, f in doomed:
        print(f"  [{stack}] {f.api_key} {f.api_name!r} on {f.scope}", file=sys.stderr)
    if not confirm(f"delete {len(doomed)} orphaned key(s)"):
        return
    try:
        project = _project(project_dir)
    except audit.Refused as exc:
        for result in results:
            if any(s == result.stack for s, _ in doomed):
                result.ok, result.error = False, f"nothing deleted: {exc}"
        return
    by_stack = {r.stack: r for r in results}
    for stack in dict.fromkeys(s for s, _ in doomed):
        shown = {f.api_key: f for s, f in doomed if s == stack}
        def mark(finding: orphans.Finding, shown: dict[str, orphans.Finding] = shown) -> None:
            shown[finding.api_key].deleted = True

        try:
            audit.delete_proven(project, stack, set(shown), functools.partial(progress, stack), mark)
        except audit.Busy as exc:
            progress(stack, f"refusing to delete: {exc}")
            by_stack[stack].busy = str(exc)
            continue
        except Exception as exc:  # noqa: BLE001 - said in the stack's row; the others go on
            progress(stack, f"refusing to delete: {_error_text(exc)}")
            by_stack[stack].ok, by_stack[stack].error = False, our_words(
                f"nothing more deleted: {_error_text(exc)}")
            continue


def delete_key(project_dir: Path, stack: str, api_key: str, confirm: Callable[[str], bool]) -> int:
    """`delete-key`: one key a person names, on one stack's account (gitops/audit.py)."""
    return audit.delete_key(lambda: _project(project_dir), stack, api_key, confirm,
                            functools.partial(progress, stack))
