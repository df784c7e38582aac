"""Exit Special Key Mode for one stack's account: what it breaks, said before it asks."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from . import audit
from .discovery import commands_for, progress


def exit_special_key_mode(project_dir: Path, name: str, confirm: Callable[[str], bool]) -> int:
    """Exit Special Key Mode for one stack's account (Cross Margin Classic): Binance deletes every
    cross margin special key of the account at once and allows no new one for 24 hours. Shows
    each key that goes with the stack that holds it (or "unmanaged"), and every stack of the
    project on that account, which the 24 hours stop too; asks `confirm`; then refreshes the stack
    so its state shows the keys gone."""
    commands = commands_for(project_dir, name)
    try:
        project = audit.project_of(project_dir)
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
