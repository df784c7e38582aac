"""Run preview, up, refresh, drift or the orphan audit over many stacks, with bounded parallelism.

Built on `pulumi.automation`: each stack is a `Pulumi.<stack>.yaml` in the project's `stacks/`
folder, and each runs the project's own program. Progress lines go to stderr prefixed with the
stack's name, so a person watching a pipeline sees which stack is running.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .report import StackResult

OPERATIONS = ("preview", "up", "refresh", "drift", "orphans")
_print_lock = threading.Lock()


def discover_stacks(project_dir: Path, selection: Iterable[str] | None = None) -> list[str]:
    found = sorted(
        m.group(1)
        for p in (project_dir / "stacks").glob("Pulumi.*.yaml")
        if (m := re.fullmatch(r"Pulumi\.(.+)\.yaml", p.name))
    )
    if selection:
        wanted = list(dict.fromkeys(selection))
        missing = [s for s in wanted if s not in found]
        if missing:
            raise SystemExit(f"no stacks/Pulumi.<stack>.yaml for: {', '.join(missing)}")
        return wanted
    return found


def progress(stack: str, line: str) -> None:
    text = line.rstrip()
    if text:
        with _print_lock:
            print(f"[{stack}] {text}", file=sys.stderr, flush=True)


def _environment(project_dir: Path) -> dict[str, str]:
    tools = project_dir / ".tools" / "bin"
    env: dict[str, str] = {}
    if tools.exists():
        env["PATH"] = f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"
    env.setdefault("PULUMI_SKIP_UPDATE_CHECK", "true")
    return env


def _stack(project_dir: Path, name: str) -> Any:
    from pulumi import automation as auto

    env = _environment(project_dir)
    if "PATH" in env:  # the automation API looks the CLI up on this process's PATH
        os.environ["PATH"] = env["PATH"]
    return auto.create_or_select_stack(
        name, work_dir=str(project_dir), opts=auto.LocalWorkspaceOptions(env_vars=env)
    )


GENERIC_ERRORS = ("Resource monitor has terminated", "update failed", "preview failed",
                  "refresh failed", "an unhandled error occurred: Program exited")


def _error_text(exc: BaseException) -> str:
    """The engine's diagnostics for the failure, without its generic follow-up lines."""
    text = str(exc)
    if "Diagnostics:" in text:
        text = text.split("Diagnostics:", 1)[1].split("\nResources:", 1)[0]
    kept = []
    for line in (ln.strip() for ln in text.splitlines()):
        if not line or line.endswith("):") or any(g in line for g in GENERIC_ERRORS):
            continue
        if line.startswith(("Traceback", "File ", "^", "return ", "result = ", "raise ")):
            continue
        kept.append(line.removeprefix("error:").strip())
    return " ".join(kept)[-600:] if kept else (text.strip().splitlines() or [repr(exc)])[-1]


def _changes(summary: dict[str, int] | None) -> dict[str, int]:
    return {k: int(v) for k, v in (summary or {}).items() if k != "same" and v}


def run_stack(project_dir: Path, name: str, operation: str,
              managed: dict[str, set[str]] | None = None) -> StackResult:
    """One operation on one stack; orphans are only listed here (see delete_orphans).

    For `orphans`, the stack's own keys are recorded in `managed`, so the caller can tell
    keys that another stack of the same account manages from true orphans.
    """
    result = StackResult(stack=name, operation=operation)
    start = time.monotonic()
    progress(name, f"== {operation} started")
    try:
        stack = _stack(project_dir, name)
        out: Callable[[str], None] = lambda line: progress(name, line)  # noqa: E731
        if operation == "preview":
            result.changes = _changes(stack.preview(on_output=out, color="never").change_summary)
        elif operation == "up":
            # Refresh first, so an up restores whatever was changed on the exchange by hand.
            up = stack.up(on_output=out, color="never", refresh=True)
            result.changes = _changes(up.summary.resource_changes)
        elif operation == "refresh":
            refreshed = stack.refresh(on_output=out, color="never")
            result.changes = _changes(refreshed.summary.resource_changes)
        elif operation == "drift":
            # Refresh from the exchange, then plan: anything to do means the exchange, the state
            # and the declared config differ. (The SDK's preview_refresh passes --yes with
            # --preview-only, which this CLI refuses; a refreshing preview writes no state either.)
            planned = _changes(stack.preview(on_output=out, color="never", refresh=True).change_summary)
            result.changes = planned
            result.drifted = bool(planned)
        elif operation == "orphans":
            own = _managed_keys(stack)
            if managed is not None:
                managed[name] = own
            result.orphans = find_orphans(stack, own)
        else:
            raise ValueError(f"unknown operation {operation!r}")
    except Exception as exc:  # noqa: BLE001 - one stack's failure is reported, the others go on
        result.ok = False
        result.error = _error_text(exc)
    result.duration_s = round(time.monotonic() - start, 2)
    verdict = "failed: " + (result.error or "") if not result.ok else "done"
    progress(name, f"== {operation} {verdict} in {result.duration_s:.1f}s")
    return result


def _managed_keys(stack: Any) -> set[str]:
    """The apiKeys of the special keys in this stack's state."""
    return {
        str(r.get("id"))
        for r in (stack.export_stack().deployment or {}).get("resources", [])
        if str(r.get("type", "")).endswith("MarginSpecialKey")
    }


def _account_client(stack: Any) -> Any:
    """A client signed with this stack's own provider credentials."""
    from providers.settings import make_client, read_settings

    config = {k: v.value for k, v in stack.get_all_config().items()}
    return make_client(read_settings(config.get, os.environ))


def find_orphans(stack: Any, managed: set[str]) -> list[dict[str, str]]:
    """Special keys on this stack's account that this stack (its `managed` keys) does not own."""
    client = _account_client(stack)
    orphans = []
    for scope in [None, *client.isolated_symbols()]:
        for key in client.list_special_keys(scope):
            if key.api_key not in managed:
                orphans.append({"apiKey": key.api_key, "apiName": key.api_name,
                                "scope": scope or "cross margin"})
    return orphans


def run(project_dir: Path, operation: str, stacks: list[str], parallel: int) -> list[StackResult]:
    if operation not in OPERATIONS:
        raise ValueError(f"operation must be one of {', '.join(OPERATIONS)}")
    managed: dict[str, set[str]] = {}
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        results = list(pool.map(lambda s: run_stack(project_dir, s, operation, managed), stacks))
    if operation == "orphans":
        # Stacks may share an account: a key managed by any stack is nobody's orphan.
        everyone: set[str] = set().union(*managed.values())
        for r in results:
            r.orphans = [o for o in r.orphans if o["apiKey"] not in everyone]
    return results


def delete_orphans(project_dir: Path, results: list[StackResult]) -> None:
    """Delete the listed orphans, by apiKey: after a killed run, keys nobody can use."""
    for r in results:
        if not r.ok or not r.orphans:
            continue
        client = _account_client(_stack(project_dir, r.stack))
        for orphan in r.orphans:
            scope = None if orphan["scope"] == "cross margin" else orphan["scope"]
            client.delete_special_key(orphan["apiKey"], scope)
            orphan["deleted"] = "yes"
            progress(r.stack, f"deleted orphan {orphan['apiKey']} ({orphan['apiName']!r}"
                              f" on {orphan['scope']})")
