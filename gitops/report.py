"""The runner's summary: one row per stack, as Markdown for a pull request and JSON for machines."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

CHANGE_OPS = ("create", "update", "replace", "delete")


@dataclass
class StackResult:
    stack: str
    operation: str
    ok: bool = True
    changes: dict[str, int] = field(default_factory=dict)
    drifted: bool = False
    error: str | None = None
    duration_s: float = 0.0
    orphans: list[dict[str, str]] = field(default_factory=list)
    # One entry per key that changes: {"key", "op", "fields", "because"} (config names).
    steps: list[dict[str, Any]] = field(default_factory=list)

    def count(self, op: str) -> int:
        # The engine reports replacements as "replace" in summaries and
        # "create-replacement"/"delete-replaced" in some step counts.
        if op == "replace":
            return self.changes.get("replace", 0) or self.changes.get("create-replacement", 0)
        return self.changes.get(op, 0)

    @property
    def changed(self) -> bool:
        return any(self.count(op) for op in CHANGE_OPS)


def exit_code(results: Iterable[StackResult], operation: str) -> int:
    results = list(results)
    if any(not r.ok for r in results):
        return 1
    if operation == "drift" and any(r.drifted for r in results):
        return 2
    if operation == "orphans" and any(o.get("deleted") != "yes" for r in results for o in r.orphans):
        return 3
    return 0


def _status(result: StackResult) -> str:
    if not result.ok:
        return "❌ error"
    if result.operation == "drift":
        return "⚠️ drift" if result.drifted else "✅ in sync"
    if result.operation == "orphans":
        if not result.orphans:
            return "✅ none"
        mine = sum(1 for o in result.orphans if o.get("verdict") == "orphan")
        others = len(result.orphans) - mine
        return f"⚠️ {mine} orphan(s)" + (f", {others} not this stack's" if others else "")
    return "✅ changes" if result.changed else "✅ no changes"


def md(text: object) -> str:
    """A value as inert Markdown: no table cell break, link, mention, emphasis or HTML."""
    out = str(text).replace("\n", " ").replace("\r", " ")
    for char in "\\`*_[]<>|#!@~":
        out = out.replace(char, "\\" + char)
    return out


NEW_CREDENTIALS = "⚠️ new credentials: the trading system must switch to the new key"


def describe_step(stack: str, step: dict[str, Any]) -> str:
    fields = ", ".join(step.get("fields") or [])
    line = f"- `{md(stack)}` · **{md(step['key'])}** · {md(step['op'])}"
    if step["op"] == "replace":
        why = ", ".join(step.get("because") or []) or fields
        why = why.replace("rotateAfterDays", "age (rotateAfterDays)")
        return f"{line} because of {md(why)} — {NEW_CREDENTIALS}"
    return f"{line} ({md(fields)})" if fields else line


def markdown(results: Iterable[StackResult], operation: str) -> str:
    results = list(results)
    rows = [
        f"### margin special keys: `{operation}`",
        "",
        "| stack | result | create | update | replace | delete | errors | duration |",
        "|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for r in results:
        error = r.error or ""
        if len(error) > 240:
            error = error[:237] + "..."
        rows.append(
            f"| `{md(r.stack)}` | {_status(r)} | {r.count('create')} | {r.count('update')} |"
            f" {r.count('replace')} | {r.count('delete')} | {md(error)} | {r.duration_s:.1f}s |"
        )
    changes = [describe_step(r.stack, step) for r in results for step in r.steps]
    if changes:
        rows += ["", "Keys that change:", "", *changes]
    orphans = [(r.stack, o) for r in results for o in r.orphans]
    if orphans:
        rows += ["", "Special keys on the account that no stack's state holds"
                 " (orphan: this stack made it and lost it; only orphans are ever deleted):", ""]
        rows += [f"- `{md(stack)}`: `{md(o['apiKey'])}` {md(repr(o['apiName']))} on {md(o['scope'])}:"
                 f" {o['verdict']}" + (" — deleted" if o.get("deleted") == "yes" else "")
                 for stack, o in orphans]
    return "\n".join(rows) + "\n"


def as_json(results: Iterable[StackResult], operation: str) -> str:
    results = list(results)
    return json.dumps(
        {"operation": operation, "exitCode": exit_code(results, operation),
         "stacks": [asdict(r) for r in results]},
        indent=2,
    )
