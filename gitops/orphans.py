"""The orphan audit: which keys on an account a stack provably made and lost.

A key is an **orphan** of stack S only when S can prove it made it: its apiName and scope match
one of S's pending creates (a create the engine never heard back from, read from S's state
before `pulumi refresh --clear-pending-creates` throws the record away) or one of the keys S
declares, and its apiKey is in no stack's state. Every stack of the project whose provider points
at the same account is read, whatever `--stacks` selects. Keys made by hand are `unmanaged`, and
keys another stack declares are `another stack's`: both are reported, never deleted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ORPHAN = "orphan"
UNMANAGED = "unmanaged"
OTHER_STACK = "another stack's"


@dataclass
class StackKeys:
    """What one stack's files and state say about its account's keys."""

    stack: str
    account: tuple[str, str]  # (base URL, provider apiKey): which account the provider signs for
    managed: set[str] = field(default_factory=set)  # apiKeys in the state
    declared: set[tuple[str, str | None]] = field(default_factory=set)  # (apiName, symbol)
    pending: set[tuple[str, str | None]] = field(default_factory=set)  # pending creates
    # The stack's config, secrets decrypted: the provider credentials the audit signs with.
    config: dict[str, str] = field(default_factory=dict, repr=False)


def declared_keys(config: dict[str, str]) -> list[tuple[str, str | None, bool]]:
    """(apiName, symbol, adopted) of each key a stack's config declares (its values as
    `pulumi config --json` gives them: structured ones as JSON text)."""
    from margin_special_keys.stack_config import CONFIG_NAMESPACE, parse_keys

    raw_keys = config.get(f"{CONFIG_NAMESPACE}:keys")
    raw_defaults = config.get(f"{CONFIG_NAMESPACE}:defaultIpWhitelist")
    return [
        (str(k.args["api_name"]), str(k.args["symbol"]).upper() if k.args.get("symbol") else None,
         bool(k.args.get("adopt_api_key")))
        for k in parse_keys(json.loads(raw_keys) if raw_keys else None,
                            json.loads(raw_defaults) if raw_defaults else None)
    ]


def read_stack(name: str, config: dict[str, str], deployment: dict[str, Any]) -> StackKeys:
    """What a stack says of its account: from its config (as `pulumi config --json` gives it) and
    its state (as `pulumi stack export` gives it; no secret is needed)."""
    from margin_special_keys.settings import read_settings

    settings = read_settings(config.get, os.environ)
    found = StackKeys(name, (settings.base_url, settings.api_key), config=config)
    for resource in deployment.get("resources", []):
        if str(resource.get("type", "")).endswith("MarginSpecialKey") and resource.get("id"):
            found.managed.add(str(resource["id"]))
    for operation in deployment.get("pending_operations", []) or []:
        resource = operation.get("resource", {})
        inputs = resource.get("inputs", {}) or {}
        if operation.get("type") == "creating" and str(resource.get("type", "")).endswith(
                "MarginSpecialKey") and isinstance(inputs.get("api_name"), str):
            found.pending.add((inputs["api_name"], inputs.get("symbol") or None))
    found.declared = {(api_name, symbol) for api_name, symbol, _ in declared_keys(config)}
    return found


def classify(listed: Iterable[tuple[str, str, str | None]], own: StackKeys,
             same_account: list[StackKeys]) -> list[dict[str, str]]:
    """Each listed (apiKey, apiName, scope) that no stack of the account manages, with its verdict."""
    managed = set().union(own.managed, *(s.managed for s in same_account))
    out = []
    for api_key, api_name, scope in listed:
        if api_key in managed:
            continue
        ident = (api_name, scope)
        if ident in own.pending or ident in own.declared:
            verdict = ORPHAN
        elif any(ident in s.pending or ident in s.declared for s in same_account):
            verdict = OTHER_STACK
        else:
            verdict = UNMANAGED
        out.append({"apiKey": api_key, "apiName": api_name, "scope": scope or "cross margin",
                    "verdict": verdict})
    return out


def locked(project_dir: Path, stack: str, backend_url: str | None) -> bool:
    """Whether a file backend holds a lock for `stack` (an update is running, or a killed one
    left its lock: `pulumi cancel` removes it). Other backends lock on their own."""
    root = _file_backend(project_dir, backend_url)
    if root is None:
        return False
    return any((root / ".pulumi" / "locks").glob(f"**/{stack}/*.json"))


def empty_checkpoint_attrs(project_dir: Path, stack: str, backend_url: str | None) -> list[Path]:
    """0-byte `<stack>.json.attrs` files: a `kill -9` during a checkpoint write can leave one,
    and every command on the stack then fails with `failed to load checkpoint: EOF`."""
    root = _file_backend(project_dir, backend_url)
    if root is None:
        return []
    return [p for p in (root / ".pulumi" / "stacks").glob(f"**/{stack}.json.attrs")
            if p.stat().st_size == 0]


def _file_backend(project_dir: Path, backend_url: str | None) -> Path | None:
    url = backend_url or ""
    if not url.startswith("file://"):
        return None
    path = url.removeprefix("file://")
    if path.startswith("~"):
        path = os.path.expanduser(path)
    return (project_dir / path).resolve() if not os.path.isabs(path) else Path(path)
