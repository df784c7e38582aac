"""python -m margin_special_keys.gitops {preview,up,refresh,drift,orphans,rotate} [--stacks a,b]
                   [--parallel N] [--markdown FILE] [--json FILE] [--project DIR] [--delete]
                   [--lock-timeout S]
python -m margin_special_keys.gitops delete-key --stacks ONE --api-key KEY [--yes]
python -m margin_special_keys.gitops exit-special-key-mode --stacks ONE [--yes]
python -m margin_special_keys.gitops preflight [--stacks a,b] [--record DIR]

`orphans` lists the special keys on the stacks' accounts that no stack's state holds, each with
its verdict: orphan (the stack provably made it: its own pending create from a killed run matches
it, and the key did not exist when that create was planned), another stack's, unproven, or
unmanaged. `orphans --delete` deletes the orphans only, by apiKey, after showing them and asking
(or `--yes`), and refuses while a run holds the stack's lock, or where it cannot tell.
`delete-key` deletes one key a person names by apiKey (one the audit cannot prove), after showing
it and asking; never a key any stack's state holds.
A stack another run holds is reported as busy, with who holds the lock; `--lock-timeout S` waits
up to S seconds for it first.
`rotate` is the scheduled job: it refreshes each stack, then applies only what time made due
(rotations by age, rotateAfterDays; retirements of previous keys whose overlap window ended),
and only to those keys; a stack whose preview holds anything else is not applied (exit 1).
`drift` lists such due work too, but does not count it as drift. `up --deliver DIR` (or
`rotate --deliver DIR`) then writes each key's sealed credentials (deliverTo) to
DIR/<stack>/<name>.age: age files only that key's trading systems can open.
`preflight` checks each stack's account before its first `pulumi up`, with read requests only:
clock, signature, the provider key's permissions, margin account, room, pairs, existing names;
exit 1 on any fail. `--record DIR` writes every raw answer, redacted, for the contract tests.
`exit-special-key-mode` asks Binance to delete every cross margin special key of one stack's
account at once (Cross Margin Classic; no new special key for 24 hours), then refreshes the stack.
Exit codes: 0 all good; 1 a stack failed; 2 drift found (drift); 3 orphans to act on (orphans);
4 keys no state holds that are not this project's to delete (orphans: made by hand, another
stack's or unproven); 5 a stack was busy (another run held its lock; nothing was run there).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .audit import delete_key, delete_orphans
from .discovery import discover_stacks
from .engine import stack_config_dir
from .exit_mode import exit_special_key_mode
from .report import as_json, exit_code, markdown
from .runner import OPERATIONS, run


def _ask(what: str) -> bool:
    """Confirmation typed by a person; without a terminal there is nobody to ask."""
    if not sys.stdin.isatty():
        print(f"{what}: not confirmed (no terminal to ask; pass --yes)", file=sys.stderr)
        return False
    return input(f"{what}? type yes: ").strip() == "yes"


def _preflight(project: Path, stacks: list[str], args: argparse.Namespace) -> int:
    from ..errors import MarginSpecialKeysError
    from . import preflight as checks
    from .runner import preflight

    results: dict[str, list[checks.Row]] = {}
    for name in stacks:
        try:
            results[name] = preflight(project, name, Path(args.record) if args.record else None)
        except (MarginSpecialKeysError, ValueError) as exc:
            results[name] = [checks.Row("settings", checks.FAIL, str(exc).splitlines()[0],
                                        "fix the stack's binance:* config")]
    summary = "\n".join(checks.table(name, rows) for name, rows in results.items())
    print(summary)
    if args.markdown:
        Path(args.markdown).write_text(summary)
    if args.json:
        Path(args.json).write_text(checks.as_json(results) + "\n")
    return 1 if any(r.status == checks.FAIL for rows in results.values() for r in rows) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m margin_special_keys.gitops", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("operation",
                        choices=(*OPERATIONS, "delete-key", "exit-special-key-mode", "preflight"))
    parser.add_argument("--stacks", help="comma-separated stack names (default: every stacks/*.yaml)")
    parser.add_argument("--parallel", type=int, default=4, help="stacks at once (default 4)")
    parser.add_argument("--markdown", help="write the Markdown summary here (for a PR comment)")
    parser.add_argument("--json", help="write the JSON summary here")
    parser.add_argument("--delete", action="store_true",
                        help="with orphans: delete the orphaned keys found")
    parser.add_argument("--yes", action="store_true",
                        help="with orphans --delete, delete-key or exit-special-key-mode: do not"
                             " ask for confirmation")
    parser.add_argument("--api-key", help="with delete-key: the apiKey of the key to delete")
    parser.add_argument("--lock-timeout", type=float, default=0.0, metavar="SECONDS",
                        help="wait up to this long for a stack another run holds (default: no"
                             " wait; the stack is reported busy, exit code 5)")
    parser.add_argument("--record", help="with preflight: write each raw answer, redacted, here")
    parser.add_argument("--deliver", metavar="DIR",
                        help="with up or rotate: write each key's sealed credentials (deliverTo)"
                             " to DIR/<stack>/<name>.age")
    parser.add_argument("--project", default=".",
                        help="the Pulumi project directory (default: the current directory); its"
                             " stacks are the Pulumi.<stack>.yaml files in Pulumi.yaml's stackConfigDir")
    args = parser.parse_args(argv)
    if not (args.lock_timeout >= 0 and args.lock_timeout < float("inf")):  # nan fails this too
        parser.error("--lock-timeout must be a number of seconds, 0 or more")
    os.umask(0o077)  # summaries, recordings and anything the engine writes: the owner's alone

    project = Path(args.project).resolve()
    stacks = discover_stacks(project, args.stacks.split(",") if args.stacks else None)
    where = stack_config_dir(project)
    if not stacks:
        print(f"no Pulumi.<stack>.yaml found in {where}", file=sys.stderr)
        return 1
    print(f"stacks in {where}: {', '.join(stacks)}", file=sys.stderr)
    confirm = lambda what: args.yes or _ask(what)  # noqa: E731
    if args.operation in ("exit-special-key-mode", "delete-key"):
        if len(stacks) != 1 or not args.stacks:
            print(f"{args.operation} acts on one account: name one stack with --stacks",
                  file=sys.stderr)
            return 1
        if args.operation == "exit-special-key-mode":
            return exit_special_key_mode(project, stacks[0], confirm)
        if not args.api_key:
            print("delete-key needs --api-key: the apiKey the orphan audit listed", file=sys.stderr)
            return 1
        return delete_key(project, stacks[0], args.api_key.strip(), confirm)
    if args.operation == "preflight":
        return _preflight(project, stacks, args)
    if args.deliver and args.operation not in ("up", "rotate"):
        parser.error("--deliver goes with up or rotate")
    results = run(project, args.operation, stacks, args.parallel, args.lock_timeout)
    if args.deliver:
        from .runner import deliver

        for path in deliver(project, results, Path(args.deliver).resolve()):
            print(f"delivered {path}", file=sys.stderr)
    if args.operation == "orphans" and args.delete:
        delete_orphans(project, results, confirm)
    summary = markdown(results, args.operation)
    print(summary)
    if args.markdown:
        Path(args.markdown).write_text(summary)
    if args.json:
        Path(args.json).write_text(as_json(results, args.operation) + "\n")
    return exit_code(results, args.operation)


if __name__ == "__main__":
    sys.exit(main())
