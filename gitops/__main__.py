"""python -m margin_special_keys.gitops {preview,up,refresh,drift,orphans} [--stacks a,b] [--parallel N]
                   [--markdown FILE] [--json FILE] [--project DIR] [--delete]
python -m margin_special_keys.gitops exit-special-key-mode --stacks ONE [--yes]
python -m margin_special_keys.gitops preflight [--stacks a,b] [--record DIR]

`orphans` lists the special keys on the stacks' accounts that no stack's state holds: orphans
(a stack provably made them: a pending create or a declared name, after a killed run), another
stack's, or unmanaged (made by hand). `orphans --delete` deletes the orphans only, by apiKey,
after showing them and asking (or `--yes`), and refuses while a stack is locked.
`preflight` checks each stack's account before its first `pulumi up`, with read requests only:
clock, signature, the provider key's permissions, margin account, room, pairs, existing names;
exit 1 on any fail. `--record DIR` writes every raw answer, redacted, for the contract tests.
`exit-special-key-mode` asks Binance to delete every cross margin special key of one stack's
account at once (Cross Margin Classic; no new special key for 24 hours), then refreshes the stack.
Exit codes: 0 all good; 1 a stack failed; 2 drift found (drift); 3 orphaned keys left (orphans).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .engine import stack_config_dir
from .report import as_json, exit_code, markdown
from .runner import OPERATIONS, delete_orphans, discover_stacks, exit_special_key_mode, run


def _ask(what: str) -> bool:
    """Confirmation typed by a person; without a terminal there is nobody to ask."""
    if not sys.stdin.isatty():
        print(f"{what}: not confirmed (no terminal to ask; pass --yes)", file=sys.stderr)
        return False
    return input(f"{what}? type yes: ").strip() == "yes"


def _preflight(project: Path, stacks: list[str], args: argparse.Namespace) -> int:
    from margin_special_keys.binance.errors import BinanceError

    from . import preflight as checks
    from .runner import StackUnavailable, preflight

    results: dict[str, list[checks.Row]] = {}
    for name in stacks:
        try:
            results[name] = preflight(project, name, Path(args.record) if args.record else None)
        except (BinanceError, StackUnavailable, ValueError) as exc:
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
    parser.add_argument("operation", choices=(*OPERATIONS, "exit-special-key-mode", "preflight"))
    parser.add_argument("--stacks", help="comma-separated stack names (default: every stacks/*.yaml)")
    parser.add_argument("--parallel", type=int, default=4, help="stacks at once (default 4)")
    parser.add_argument("--markdown", help="write the Markdown summary here (for a PR comment)")
    parser.add_argument("--json", help="write the JSON summary here")
    parser.add_argument("--delete", action="store_true",
                        help="with orphans: delete the orphaned keys found")
    parser.add_argument("--yes", action="store_true",
                        help="with orphans --delete or exit-special-key-mode: do not ask for"
                             " confirmation")
    parser.add_argument("--record", help="with preflight: write each raw answer, redacted, here")
    parser.add_argument("--project", default=".",
                        help="the Pulumi project directory (default: the current directory); its"
                             " stacks are the Pulumi.<stack>.yaml files in Pulumi.yaml's stackConfigDir")
    args = parser.parse_args(argv)
    os.umask(0o077)  # summaries, recordings and anything the engine writes: the owner's alone

    project = Path(args.project).resolve()
    stacks = discover_stacks(project, args.stacks.split(",") if args.stacks else None)
    where = stack_config_dir(project)
    if not stacks:
        print(f"no Pulumi.<stack>.yaml found in {where}", file=sys.stderr)
        return 1
    print(f"stacks in {where}: {', '.join(stacks)}", file=sys.stderr)
    if args.operation == "exit-special-key-mode":
        if len(stacks) != 1 or not args.stacks:
            print("exit-special-key-mode acts on one account: name one stack with --stacks",
                  file=sys.stderr)
            return 1
        return exit_special_key_mode(project, stacks[0], lambda what: args.yes or _ask(what))
    if args.operation == "preflight":
        return _preflight(project, stacks, args)
    results = run(project, args.operation, stacks, args.parallel)
    if args.operation == "orphans" and args.delete:
        delete_orphans(project, results, lambda what: args.yes or _ask(what))
    summary = markdown(results, args.operation)
    print(summary)
    if args.markdown:
        Path(args.markdown).write_text(summary)
    if args.json:
        Path(args.json).write_text(as_json(results, args.operation) + "\n")
    return exit_code(results, args.operation)


if __name__ == "__main__":
    sys.exit(main())
