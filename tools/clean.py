"""`make clean`: removes what the clone made for itself, and never a state folder holding a real
stack. `.state/` is the demo's file backend; a stack other than the demo's found in it is someone's
real state (its encrypted keys and the only record of which keys it owns): refused, with where to
move it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO_STACK = "sandbox-demo"
THROWAWAY = (".sandbox", ".pytest_cache", ".mypy_cache", ".ruff_cache")


def foreign_stacks(state: Path) -> list[str]:
    """Stacks in a file backend folder other than the demo's (`.pulumi/stacks/<project>/<stack>.json`)."""
    stacks = state / ".pulumi" / "stacks"
    names = {p.name.split(".json")[0] for p in stacks.rglob("*.json*")} if stacks.is_dir() else set()
    return sorted(names - {DEMO_STACK})


def main() -> int:
    state = ROOT / ".state"
    others = foreign_stacks(state)
    for name in THROWAWAY:
        shutil.rmtree(ROOT / name, ignore_errors=True)
    if others:
        print(f"make clean: kept {state}: it holds stack(s) {', '.join(others)} besides the demo's,"
              " and their state is the only record of the keys they own. Move each to your real"
              " backend first: `pulumi stack export --stack S --file S.json`, then, logged in to"
              " it, `pulumi stack init S && pulumi stack import --stack S --file S.json`"
              " (the secrets provider moves with `pulumi stack change-secrets-provider`)",
              file=sys.stderr)
        return 1
    shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
