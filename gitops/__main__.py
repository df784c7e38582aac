"""python -m gitops {preview,up,refresh,drift,orphans} [--stacks a,b] [--parallel N]
                   [--markdown FILE] [--json FILE] [--project DIR] [--delete]

`orphans --delete` deletes, by apiKey, the special keys no stack manages (after a killed run).
Exit codes: 0 all good; 1 a stack failed; 2 drift found (drift); 3 orphaned keys left (orphans).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .report import as_json, exit_code, markdown
from .runner import OPERATIONS, delete_orphans, discover_stacks, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gitops", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("operation", choices=OPERATIONS)
    parser.add_argument("--stacks", help="comma-separated stack names (default: every stacks/*.yaml)")
    parser.add_argument("--parallel", type=int, default=4, help="stacks at once (default 4)")
    parser.add_argument("--markdown", help="write the Markdown summary here (for a PR comment)")
    parser.add_argument("--json", help="write the JSON summary here")
    parser.add_argument("--delete", action="store_true",
                        help="with orphans: delete the orphaned keys found")
    parser.add_argument("--project", default=str(Path(__file__).resolve().parent.parent),
                        help="the Pulumi project directory (default: this repository)")
    args = parser.parse_args(argv)

    project = Path(args.project).resolve()
    stacks = discover_stacks(project, args.stacks.split(",") if args.stacks else None)
    if not stacks:
        print("no stacks found in stacks/", file=sys.stderr)
        return 1
    results = run(project, args.operation, stacks, args.parallel)
    if args.operation == "orphans" and args.delete:
        delete_orphans(project, results)
    summary = markdown(results, args.operation)
    print(summary)
    if args.markdown:
        Path(args.markdown).write_text(summary)
    if args.json:
        Path(args.json).write_text(as_json(results, args.operation) + "\n")
    return exit_code(results, args.operation)


if __name__ == "__main__":
    sys.exit(main())
