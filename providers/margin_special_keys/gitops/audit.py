"""The orphan audit over a project's stacks, the deletions it allows, and deleting one named key.

What counts as proof is gitops/orphans.py; this module reads the stacks, lists the accounts and
deletes, in an order that keeps a create in flight from looking like an orphan:

1. no run holds the lock of any stack on the account (read where the stacks live; "cannot tell"
   refuses);
2. the account's keys are listed;
3. every stack's state is read, after the list, the stack's own last: a key a running create
   just made is then either in a state or explained by a pending create that the engine wrote
   before making it;
4. the locks are read again, and the stack's state must be the one read before step 1;
5. each key still deletable is deleted by apiKey, the locks read again before each, and the
   deletion confirmed against the key list (AccountKeys.delete).

The stacks are every `Pulumi.<stack>.yaml` of the project and every stack the backend holds for
it; apiKeys are unique, so a key any of their states holds is never listed as anyone's orphan.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import RunnerError
from . import backends, orphans
from .discovery import commands_for, discover_stacks, progress
from .events import error_text
from .orphans import Finding, ListedKey, StackKeys
from .reaping import end_leftover_plugins
from .report import StackResult, our_words

if TYPE_CHECKING:
    from ..account import AccountKeys
    from .engine import StackCommands

CommandsFor = Callable[[str], "StackCommands"]
Say = Callable[[str], None]


class Refused(RunnerError):
    """Nothing was deleted; the message says why and what to do."""


class Busy(Refused):
    """Another run holds the lock of a stack on the account."""


def project_name(project_dir: Path) -> str:
    import yaml

    return str(yaml.safe_load((project_dir / "Pulumi.yaml").read_text())["name"])


def account_keys(config: dict[str, str]) -> AccountKeys:
    """The account a stack's provider signs for, as the provider sees it."""
    from ..account import AccountKeys
    from ..settings import make_client, read_settings

    settings = read_settings(config.get, os.environ)
    return AccountKeys(make_client(settings), settings.other_api_keys)


def listed_keys(keys: AccountKeys) -> list[ListedKey]:
    from ..values import held_ips

    return [ListedKey(key.api_key, key.api_name, scope, frozenset(held_ips(key.ips)),
                      key.key_type.value if key.key_type else None, key.permission_mode)
            for scope, key in keys.every_key()]


@dataclass
class StackAccount:
    """Which account a stack's provider signs for. A stack whose config cannot be read here (a
    revoked provider key, a runner off its IP list) or that the backend holds without a stack
    file has no known uid: it counts as on every account, its locks and pending creates too."""

    stack: str
    uid: int | None
    config: dict[str, str] = field(default_factory=dict, repr=False)
    unreadable: str | None = None  # why its config or account could not be read


@dataclass
class Project:
    """The stacks of one project, as the audit sees them."""

    directory: Path
    commands_for: CommandsFor
    accounts: dict[str, StackAccount]
    parallel: int = 4

    @classmethod
    def read(cls, directory: Path, commands_for: CommandsFor, files: list[str],
             parallel: int = 4) -> Project:
        """Each stack file's config and account, and every other stack the backend holds. A
        stack file the backend does not hold yet (merged, never `up`) holds no key: left out."""
        from .engine import StackNotFound

        def read(name: str) -> StackAccount | None:
            try:
                config = commands_for(name).config(name)
            except StackNotFound:
                return None
            except Exception as exc:  # noqa: BLE001 - its uid is unknown: it counts everywhere
                return StackAccount(name, None, unreadable=_first_line(exc))
            try:
                return StackAccount(name, account_keys(config).uid(), config)
            except Exception as exc:  # noqa: BLE001 - likewise
                return StackAccount(name, None, config, unreadable=_first_line(exc))

        with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            accounts = {a.stack: a for a in pool.map(read, files) if a is not None}
        if files:
            try:
                for name in commands_for(files[0]).stack_names():
                    accounts.setdefault(name, StackAccount(name, None))
            except RuntimeError as exc:
                raise Refused(f"could not list the project's stacks in the backend, so keys they"
                              f" hold cannot be told apart: {_first_line(exc)}") from None
        return cls(directory, commands_for, accounts, parallel)

    def account(self, name: str) -> tuple[StackAccount, list[str]]:
        """The stack's account, and the other stacks that may sign for it (the same uid, or one
        unknown)."""
        own = self.accounts.get(name)
        if own is None:
            raise Refused(f"stack {name!r} does not exist in the backend yet: it holds no key")
        if own.unreadable is not None:
            raise Refused(f"stack {name!r}'s provider settings could not be read: {own.unreadable}")
        same = [s.stack for s in self.accounts.values()
                if s.stack != name and (s.uid == own.uid or s.uid is None or own.uid is None)]
        return own, same

    def states(self, names: Iterable[str], audited: Iterable[str] = ()) -> dict[str, StackKeys]:
        """Each stack's state, read now, in the order given (the last is read last); for the
        `audited` ones with pending creates, the newest run in their history too. A state that
        cannot be read refuses: keys it holds might be listed."""
        audited = set(audited)

        def read(name: str) -> StackKeys:
            commands = self.commands_for(name)
            try:
                deployment = commands.deployment(name)
            except Exception as exc:  # noqa: BLE001 - refused, with the reason
                raise Refused(f"the state of stack {name!r} could not be read, so keys it may hold"
                              f" cannot be told apart: {_first_line(exc)}") from None
            latest: float | None = None
            if name in audited and deployment.get("pending_operations"):
                try:
                    latest = commands.latest_run_start(name)
                except Exception:  # noqa: BLE001 - its pending creates then prove nothing
                    latest = orphans.HISTORY_UNREAD
            account = self.accounts.get(name)
            return orphans.read_stack(name, account.uid if account else None, {}, deployment, latest)

        *first, last = list(names)
        with ThreadPoolExecutor(max_workers=max(1, self.parallel)) as pool:
            found = dict(zip(first, pool.map(read, first), strict=True))
        found[last] = read(last)
        return found

    def require_unlocked(self, names: Iterable[str]) -> None:
        """No run holds any of these stacks; Busy (or Refused where the runner cannot tell)."""
        try:
            backend = backends.open_backend(backends.resolve_url(self.directory, os.environ),
                                            self.directory)
            project = project_name(self.directory)
            for name in names:
                held = backend.locks(project, name)
                if held:
                    raise Busy(held[0].describe(name, can_wait=False))
        except backends.LocksUnreadable as exc:
            raise Refused(str(exc)) from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def audit(project: Project, names: list[str],
          say_for: Callable[[str], Say]) -> dict[str, list[Finding] | Exception]:
    """Each key on each stack's account that no stack's state holds, with its verdict. The keys
    of every account are listed first, then every state is read once. A stack's failure (or a
    Busy) is its outcome; the others go on."""
    listed: dict[str, list[ListedKey] | Exception] = {}
    for name in names:
        try:
            own, same = project.account(name)
            try:
                project.require_unlocked([name, *same])
            except Busy:
                raise
            except Refused as exc:
                say_for(name)(f"cannot tell whether a run holds a stack of this account ({exc}):"
                              " a key a running create is making may be listed below")
            listed[name] = listed_keys(account_keys(own.config))
        except Exception as exc:  # noqa: BLE001 - this stack's audit fails, the others go on
            listed[name] = exc
    out: dict[str, list[Finding] | Exception] = dict(
        (n, v) for n, v in listed.items() if isinstance(v, Exception))
    pending = [n for n, v in listed.items() if not isinstance(v, Exception)]
    if not pending:
        return out
    try:
        states = project.states(list(project.accounts), audited=pending)
    except Exception as exc:  # noqa: BLE001 - no verdict without every state
        return {**out, **dict.fromkeys(pending, exc)}
    for name in pending:
        keys = listed[name]
        assert not isinstance(keys, Exception)
        out[name] = orphans.classify(keys, states[name], [s for n, s in states.items() if n != name])
    return out


def delete_proven(project: Project, stack: str, confirmed: set[str], say: Say,
                  deleted_one: Callable[[Finding], None] = lambda _: None) -> list[Finding]:
    """Delete the keys of `confirmed` that are still this stack's proven orphans, in the order the
    module's docstring gives; `deleted_one` hears of each as it goes. Returns what was deleted;
    Refused when nothing (more) may be."""
    own, same = project.account(stack)
    before = orphans.read_stack(stack, None, {}, project.commands_for(stack).deployment(stack)).checkpoint
    project.require_unlocked([stack, *same])
    keys = account_keys(own.config)
    listed = listed_keys(keys)
    states = project.states([*[n for n in project.accounts if n != stack], stack], audited=[stack])
    project.require_unlocked([stack, *same])
    if states[stack].checkpoint != before:
        raise Refused(f"stack {stack!r}'s state changed during the audit (a run wrote it): run the"
                      " audit again")
    deleted = []
    for finding in orphans.classify(listed, states[stack], [s for n, s in states.items() if n != stack]):
        if finding.verdict != orphans.ORPHAN or finding.api_key not in confirmed:
            continue
        project.require_unlocked([stack, *same])
        keys.delete(finding.api_key, None if finding.scope == "cross margin" else finding.scope)
        finding.deleted = True
        deleted.append(finding)
        deleted_one(finding)
        say(f"deleted orphan {finding.api_key} ({finding.api_name!r} on {finding.scope})")
    return deleted


# What `delete-key` may delete: a key nobody else's pending create explains.
NAMED_DELETABLE = (orphans.ORPHAN, orphans.UNMANAGED, orphans.UNPROVEN)


def _named(project: Project, stack: str, api_key: str) -> tuple[AccountKeys, ListedKey, Finding]:
    """The key as the exchange lists it now and its verdict, from states read after the list;
    Refused where it may not be deleted by name."""
    own, same = project.account(stack)
    project.require_unlocked([stack, *same])
    keys = account_keys(own.config)
    listed = listed_keys(keys)
    states = project.states([*[n for n in project.accounts if n != stack], stack], audited=[stack])
    project.require_unlocked([stack, *same])
    holders = [n for n, s in states.items() if api_key in s.managed]
    if holders:
        raise Refused(f"stack {holders[0]!r} manages {api_key}: remove its entry from that"
                      " stack's config and run `up`, which deletes it by apiKey")
    key = next((k for k in listed if k.api_key == api_key), None)
    if key is None:
        raise Refused(f"no special key {api_key} on the account of stack {stack!r}")
    [finding] = [f for f in orphans.classify([key], states[stack], [s for n, s in states.items()
                                                                    if n != stack])]
    if finding.verdict not in NAMED_DELETABLE or "pending creates of this stack and of" in finding.why:
        raise Refused(f"{api_key} is {finding.verdict} ({finding.why}): that stack's own audit"
                      " decides")
    return keys, key, finding


def delete_named(read_project: Callable[[], Project], stack: str, api_key: str,
               confirm: Callable[[str], bool], say: Say) -> int:
    """Delete one key a person names by apiKey, on the account of `stack`: for a key the audit
    cannot prove. Shows the key and whose it is, asks, then checks everything again before it
    deletes; never a key any state holds or another stack's pending create explains, and never
    while a run holds a stack of the account or where the runner cannot tell."""
    try:
        _, key, finding = _named(read_project(), stack, api_key)
    except Busy as exc:
        say(f"not deleted: {exc}")
        return 5
    except Refused as exc:
        say(f"not deleted: {exc}")
        return 1
    say(f"{api_key} {finding.api_name!r} on {finding.scope}, type {key.key_type or 'unstated'},"
        f" IPs {', '.join(sorted(key.ips)) or 'none (any address)'}: {finding.verdict}"
        f" ({finding.why})")
    if not confirm(f"delete special key {api_key}"):
        say("not confirmed: nothing was sent")
        return 1
    try:  # the person may have taken a while: everything again, as it is now
        keys, _, _ = _named(read_project(), stack, api_key)
    except Busy as exc:
        say(f"not deleted: {exc}")
        return 5
    except Refused as exc:
        say(f"not deleted: {exc}")
        return 1
    keys.delete(api_key, None if finding.scope == "cross margin" else finding.scope)
    say(f"deleted {api_key}; the key list confirms it is gone")
    return 0


# --- the audit as the runner runs it ---


def project_of(project_dir: Path, parallel: int = 4) -> Project:
    """Every stack of the project as the audit reads them: each stack file, and every stack the
    backend holds for the project (gitops/audit.py)."""
    return Project.read(project_dir, lambda s: commands_for(project_dir, s),
                              discover_stacks(project_dir), parallel)


def audit_orphans(project_dir: Path, stacks: list[str], parallel: int) -> list[StackResult]:
    """The orphan audit of `stacks`; every stack of the project counts, whatever is selected."""
    start = time.monotonic()
    for name in stacks:
        progress(name, "== orphans started")
    project = project_of(project_dir, parallel)
    found = audit(project, stacks, lambda name: functools.partial(progress, name))
    results = []
    for name in stacks:
        result = StackResult(stack=name, operation="orphans")
        outcome = found[name]
        if isinstance(outcome, Busy):
            result.busy = str(outcome)
        elif isinstance(outcome, Exception):
            result.ok, result.error = False, our_words(error_text(outcome))
        else:
            result.orphans = outcome
        result.duration_s = round(time.monotonic() - start, 2)
        verdict = ("failed: " + (result.error or "") if not result.ok
                   else f"not run: {result.busy}" if result.busy else "done")
        progress(name, f"== orphans {verdict} in {result.duration_s:.1f}s")
        results.append(result)
    end_leftover_plugins(project_dir)
    return results


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
        project = project_of(project_dir)
    except Refused as exc:
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
            delete_proven(project, stack, set(shown), functools.partial(progress, stack), mark)
        except Busy as exc:
            progress(stack, f"refusing to delete: {exc}")
            by_stack[stack].busy = str(exc)
            continue
        except Exception as exc:  # noqa: BLE001 - said in the stack's row; the others go on
            progress(stack, f"refusing to delete: {error_text(exc)}")
            by_stack[stack].ok, by_stack[stack].error = False, our_words(
                f"nothing more deleted: {error_text(exc)}")
            continue


def delete_key(project_dir: Path, stack: str, api_key: str, confirm: Callable[[str], bool]) -> int:
    """`delete-key`: one key a person names, on one stack's account (gitops/audit.py)."""
    return delete_named(lambda: project_of(project_dir), stack, api_key, confirm,
                            functools.partial(progress, stack))
