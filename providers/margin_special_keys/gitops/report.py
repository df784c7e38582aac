"""The runner's summary: one row per stack, as Markdown for a pull request and JSON for machines."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from ..spec import utc
from .orphans import ORPHAN, Finding

if TYPE_CHECKING:
    from .events import KeyStep

SUMMARY_OPS = ("create", "update", "replace", "delete")  # the summary's columns


@dataclass
class StackResult:
    stack: str
    operation: str
    ok: bool = True
    changes: dict[str, int] = field(default_factory=dict)
    drifted: bool = False
    error: str | None = None
    duration_s: float = 0.0
    orphans: list[Finding] = field(default_factory=list)
    busy: str | None = None  # another run holds the stack's lock: who, and what to do
    steps: list[KeyStep] = field(default_factory=list)  # each key that changes

    def count(self, op: str) -> int:
        # The engine reports replacements as "replace" in summaries and
        # "create-replacement"/"delete-replaced" in some step counts.
        if op == "replace":
            return self.changes.get("replace", 0) or self.changes.get("create-replacement", 0)
        return self.changes.get(op, 0)

    @property
    def changed(self) -> bool:
        return any(self.count(op) for op in SUMMARY_OPS)


# Exit codes, most urgent first when several apply.
EXIT_FAILED, EXIT_DRIFT, EXIT_ORPHANS, EXIT_BUSY, EXIT_NOT_OURS = 1, 2, 3, 5, 4


def exit_code(results: Iterable[StackResult], operation: str) -> int:
    """0 all good; 1 a stack failed; 2 drift; 5 a stack was busy (another run held its lock;
    nothing was run, or deleted, there: try again later); 3 orphans to act on (`orphans
    --delete`); 4 keys on the account that no state holds and that are not this project's to
    delete (made by hand, or unproven): reported, for a person to look at."""
    results = list(results)
    if any(not r.ok for r in results):
        return EXIT_FAILED
    if operation == "drift" and any(r.drifted for r in results):
        return EXIT_DRIFT
    if any(r.busy for r in results):
        return EXIT_BUSY
    found = [f for r in results for f in r.orphans if not f.deleted]
    if any(f.verdict == ORPHAN for f in found):
        return EXIT_ORPHANS
    if found:
        return EXIT_NOT_OURS
    return 0


def _status(result: StackResult) -> str:
    if not result.ok:
        return "❌ error"
    if result.busy:
        return "⏳ busy"
    if result.operation == "drift":
        return "⚠️ drift" if result.drifted else "✅ in sync"
    if result.operation == "orphans":
        if not result.orphans:
            return "✅ none"
        mine = sum(1 for o in result.orphans if o.verdict == ORPHAN)
        others = len(result.orphans) - mine
        return f"⚠️ {mine} orphan(s)" + (f", {others} not this stack's" if others else "")
    return "✅ changes" if result.changed else "✅ no changes"


EXCHANGE_WORDS = re.compile("«[^«»]*(»|$)|^[^«»]*»")


def our_words(text: str) -> str:
    """`text` without what an exchange or another service wrote into it (every such value stands
    between « and »: binance/errors.py `exchange_text`; a mark cut off by a truncation counts
    too): a pull-request summary holds our text and Binance's codes only. Pipeline logs keep the
    whole message."""
    return EXCHANGE_WORDS.sub("«…»", text)


def md(text: object) -> str:
    """A value as inert Markdown: no table cell break, link (nor a bare URL's autolink), mention
    (nor one spelled as an HTML entity), emphasis, HTML, or invisible control of the text's
    direction."""
    import unicodedata

    out = "".join(" " if c in "\n\r" else c for c in str(text)
                  if unicodedata.category(c) not in ("Cf", "Cc") or c in "\n\r")
    for char in "\\`*_[]<>|#!@~&:":
        out = out.replace(char, "\\" + char)
    return out


NEW_CREDENTIALS = "⚠️ new credentials: the trading system must switch to the new key"


def describe_step(stack: str, step: KeyStep, operation: str = "preview") -> str:
    """One line per key that changes: how, why, and (for what a summary may show) what Binance
    holds against what is declared; the drift check says it from the exchange's side."""
    line = f"- `{md(stack)}` · **{md(step.key)}** · "
    if step.gone:
        return line + f"gone from Binance: the next up makes a new key — {NEW_CREDENTIALS}"
    line += md(step.op)
    if step.op == "rotate":
        causes = "; ".join(_field_values(step, name, operation) for name in step.because)
        causes = causes.replace("rotateAfterDays", "age (rotateAfterDays)")
        until = f"until {utc(step.retires_at_ms)}" if step.retires_at_ms else "through its window"
        return (f"{line} because of {causes} — new key now; the old key stays usable {until}, then"
                " the next run retires it — ⚠️ new credentials: the trading system must switch to"
                " the new key before then")
    if step.op == "retire":
        ended = f" (its window ended {utc(step.retires_at_ms)})" if step.retires_at_ms else ""
        return f"{line} the previous key{ended}: it is deleted, the current key stays"
    if step.op == "replace":
        why = [_field_values(step, name, operation) for name in step.because or step.fields]
        text = "; ".join(why).replace("rotateAfterDays", "age (rotateAfterDays)")
        return f"{line} because of {text} — {NEW_CREDENTIALS}"
    if not step.fields:
        return line
    values = [_field_values(step, name, operation) for name in step.fields if name in step.binance]
    if "deliverTo" in step.fields:
        values.append("re-sealed for its recipients (deliverTo); the key itself does not change")
    return f"{line} ({md(', '.join(step.fields))})" + (f": {'; '.join(values)}" if values else "")


def _field_values(step: KeyStep, name: str, operation: str) -> str:
    """A field as a summary line names it: with what Binance holds and what is declared, where
    the step carries them (never for a sensitive field)."""
    if name not in step.binance:
        return md(name)
    if name != "ipWhitelist":
        return f"{md(name)}: Binance {md(step.binance[name])}, declared {md(step.declared.get(name))}"
    extra, missing = step.ips_only_on_binance, step.ips_only_declared
    if operation == "drift":
        parts = ([f"on Binance, not declared: {md(', '.join(extra))}"] if extra else []) + \
                ([f"declared, not on Binance: {md(', '.join(missing))}"] if missing else [])
    else:
        parts = ([f"adds {md(', '.join(missing))}"] if missing else []) + \
                ([f"removes {md(', '.join(extra))}"] if extra else [])
    return "; ".join(parts) or md(name)


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
    changes = [describe_step(r.stack, step, operation) for r in results for step in r.steps]
    if changes:
        rows += ["", "Keys that change:", "", *changes]
    busy = [r for r in results if r.busy]
    if busy:
        rows += ["", "Busy (another run holds the stack's lock; nothing was run there):", ""]
        rows += [f"- `{md(r.stack)}`: {md(r.busy)}" for r in busy]
    orphans = [(r.stack, o) for r in results for o in r.orphans]
    if orphans:
        rows += ["", "Special keys on the account that no stack's state holds"
                 " (orphan: this stack provably made it and lost it; only orphans are ever"
                 " deleted):", ""]
        rows += [f"- `{md(stack)}`: `{md(o.api_key)}` {md(repr(o.api_name))} on {md(o.scope)}:"
                 f" {o.verdict} ({md(o.why)})" + (" — deleted" if o.deleted else "")
                 for stack, o in orphans]
    return "\n".join(rows) + "\n"


def as_json(results: Iterable[StackResult], operation: str) -> str:
    results = list(results)
    return json.dumps(
        {"operation": operation, "exitCode": exit_code(results, operation),
         "stacks": [{**asdict(r), "orphans": [o.as_dict() for o in r.orphans],
                     "steps": [s.as_dict() for s in r.steps]} for r in results]},
        indent=2,
    )
