"""The orphan audit over a project's stacks, the deletions it allows, and deleting one named key.

What counts as proof is gitops/orphans.py; this module reads the stacks, lists the accounts and
deletes, in an order that keeps a create in flight from looking like an orphan:

1. no run holds the stack's lock (read where the stack lives; "cannot tell" refuses);
2. the account's keys are listed;
3. every stack's state is read again, after the list: a key a running create just made is then
   either in a state or explained by a pending create that the engine wrote before making it;
4. the lock is read again, and the stack's state must be the one read before step 1;
5. each proven orphan the person confirmed is deleted by apiKey, the lock read before each, and
   the deletion confirmed against the key list (AccountKeys.delete).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from . import backends, orphans
from .orphans import Finding, ListedKey, StackKeys

if TYPE_CHECKING:
    from margin_special_keys.account import AccountKeys

    from .engine import StackCommands


class Refused(Exception):
    """Nothing was deleted; the message says why and what to do."""


def project_name(project_dir: Path) -> str:
    import yaml

    return str(yaml.safe_load((project_dir / "Pulumi.yaml").read_text())["name"])


def account_keys(config: dict[str, str]) -> AccountKeys:
    """The account a stack's provider signs for, as the provider sees it."""
    from margin_special_keys.account import AccountKeys
    from margin_special_keys.settings import make_client, read_settings

    settings = read_settings(config.get, os.environ)
    return AccountKeys(make_client(settings), settings.other_api_keys)


def listed_keys(keys: AccountKeys) -> list[ListedKey]:
    from margin_special_keys.spec import held_ips

    return [ListedKey(key.api_key, key.api_name, scope, frozenset(held_ips(key.ips)),
                      key.key_type.value if key.key_type else None, key.permission_mode)
            for scope, key in keys.every_key()]


Accounts = dict[str, StackKeys | Exception]


def read_accounts(commands_for: Callable[[str], StackCommands], names: list[str],
                  parallel: int) -> Accounts:
    """What each of `names` says of its account: its provider's account uid, its config and its
    state (read without secrets), or why it could not be read."""
    def read(name: str) -> StackKeys | Exception:
        try:
            commands = commands_for(name)
            config = commands.config(name)
            uid = account_keys(config).uid()
            return orphans.read_stack(name, uid, config, commands.deployment(name))
        except Exception as exc:  # noqa: BLE001 - reported by each audit that needs this stack
            return exc

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        return dict(zip(names, pool.map(read, names), strict=True))


def _same_account(name: str, accounts: Accounts) -> tuple[StackKeys, list[StackKeys]]:
    """The stack and every other stack whose provider signs for the same Binance account (the
    same uid, whatever the host spelling or provider key). A stack that cannot be read fails the
    audit, since keys it holds might be among those listed."""
    own = accounts[name]
    if isinstance(own, Exception):
        raise own
    same = []
    for other, theirs in accounts.items():
        if other == name:
            continue
        if isinstance(theirs, Exception):
            raise Refused(f"stack {other!r} of the same project could not be read, so keys it may"
                          f" hold cannot be told apart: {str(theirs).splitlines()[0]}")
        # An account that did not say its uid might be this one: it counts as the same.
        if theirs.uid == own.uid or theirs.uid is None or own.uid is None:
            same.append(theirs)
    return own, same


def audit(name: str, accounts: Accounts) -> list[Finding]:
    """Each key on the stack's account that no stack's state holds, with its verdict."""
    own, same = _same_account(name, accounts)
    return orphans.classify(listed_keys(account_keys(own.config)), own, same)


def _require_unlocked(backend: backends.Backend, project: str, stack: str) -> None:
    try:
        held = backend.locks(project, stack)
    except backends.LocksUnreadable as exc:
        raise Refused(str(exc)) from None
    if held:
        raise Refused(held[0].describe(stack))


def delete_proven(project_dir: Path, stack: str, confirmed: set[str], accounts: Accounts,
                  commands_for: Callable[[str], StackCommands],
                  say: Callable[[str], None]) -> list[Finding]:
    """Delete the keys of `confirmed` that are still this stack's proven orphans, in the order
    the module's docstring gives. Returns what was deleted; Refused when nothing may be."""
    try:
        backend = backends.open_backend(backends.resolve_url(project_dir, os.environ), project_dir)
    except backends.LocksUnreadable as exc:
        raise Refused(str(exc)) from None
    project = project_name(project_dir)
    before = orphans.read_stack(stack, None, {}, commands_for(stack).deployment(stack)).checkpoint
    _require_unlocked(backend, project, stack)
    own, same = _same_account(stack, accounts)
    keys = account_keys(own.config)
    listed = listed_keys(keys)
    fresh = {s.stack: orphans.read_stack(s.stack, s.uid, s.config, commands_for(s.stack).deployment(s.stack))
             for s in [own, *same]}
    _require_unlocked(backend, project, stack)
    if fresh[stack].checkpoint != before:
        raise Refused(f"stack {stack!r}'s state changed during the audit (a run wrote it): run the"
                      " audit again")
    deleted = []
    for finding in orphans.classify(listed, fresh[stack], [fresh[s.stack] for s in same]):
        if finding.verdict != orphans.ORPHAN or finding.api_key not in confirmed:
            continue
        _require_unlocked(backend, project, stack)
        keys.delete(finding.api_key, None if finding.scope == "cross margin" else finding.scope)
        finding.deleted = True
        deleted.append(finding)
        say(f"deleted orphan {finding.api_key} ({finding.api_name!r} on {finding.scope})")
    return deleted


def delete_key(project_dir: Path, stack: str, api_key: str, accounts: Accounts,
               confirm: Callable[[str], bool], say: Callable[[str], None]) -> int:
    """Delete one key a person names by apiKey, on the account of `stack`: for a key the audit
    cannot prove. Shows the key and whose it is, and asks first; never a key any state holds."""
    try:
        own, same = _same_account(stack, accounts)
    except Refused as exc:
        say(f"not deleted: {exc}")
        return 1
    holders = [s.stack for s in [own, *same] if api_key in s.managed]
    if holders:
        say(f"not deleted: stack {holders[0]!r} manages {api_key}: remove its entry from that"
            " stack's config and run `up`, which deletes it by apiKey")
        return 1
    keys = account_keys(own.config)
    listed = listed_keys(keys)
    found = [f for f in orphans.classify(listed, own, same) if f.api_key == api_key]
    if not found:
        say(f"not deleted: no special key {api_key} on the account of stack {stack!r}")
        return 1
    finding = found[0]
    key = next(k for k in listed if k.api_key == api_key)
    say(f"{api_key} {finding.api_name!r} on {finding.scope}, type {key.key_type or 'unstated'},"
        f" IPs {', '.join(sorted(key.ips)) or 'none (any address)'}: {finding.verdict}"
        f" ({finding.why})")
    try:
        backend = backends.open_backend(backends.resolve_url(project_dir, os.environ), project_dir)
        held = backend.locks(project_name(project_dir), stack)
    except backends.LocksUnreadable as exc:
        say(f"warning: {exc}")
        held = []
    if held:
        say(f"not deleted: {held[0].describe(stack)}")
        return 5
    if not confirm(f"delete special key {api_key}"):
        say("not confirmed: nothing was sent")
        return 1
    keys.delete(api_key, None if finding.scope == "cross margin" else finding.scope)
    say(f"deleted {api_key}; the key list confirms it is gone")
    return 0


def print_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
