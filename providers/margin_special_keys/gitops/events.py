"""What the engine reported of a run, from its event log (never scraped from text): each key that
changes, how and why, with what Binance holds against what is declared; the summary's counts;
each error's message."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .report import our_words

GENERIC_ERRORS = ("Resource monitor has terminated", "update failed", "preview failed",
                  "refresh failed", "an unhandled error occurred: program exited",
                  "one or more errors occurred")


def error_text(exc: BaseException) -> str:
    """The engine's diagnostics for the failure, without its generic follow-up lines, and
    without what an exchange or another service wrote (report.our_words)."""
    text = our_words(str(exc))
    if "Diagnostics:" in text:
        text = text.split("Diagnostics:", 1)[1].split("\nResources:", 1)[0]
    kept = []
    for line in (ln.strip() for ln in text.splitlines()):
        # Either language host's wording: ours says "Program exited", Pulumi's "program exited".
        if not line or line.endswith("):") or any(g.lower() in line.lower() for g in GENERIC_ERRORS):
            continue
        if line.startswith(("Traceback", "File ", "^", "return ", "result = ", "raise ")):
            continue
        kept.append(line.removeprefix("error:").strip())
    return " ".join(kept)[-600:] if kept else (text.strip().splitlines() or [repr(exc)])[-1]


def summary_changes(summary: dict[str, int] | None) -> dict[str, int]:
    return {k: int(v) for k, v in (summary or {}).items() if k != "same" and v}


REPLACE_OPS = ("replace", "create-replacement", "delete-replaced")


STEP_OPS = ("create", "update", "delete", *REPLACE_OPS)


@dataclass
class KeyStep:
    """One special key that a run changes: how (create, update, replace, delete), the fields that
    change and those that force a replacement (stack-config names), and, for what a summary may
    show (never a sensitive field), what Binance holds against what is declared."""

    key: str
    op: str
    fields: list[str] = field(default_factory=list)
    because: list[str] = field(default_factory=list)
    binance: dict[str, Any] = field(default_factory=dict)
    declared: dict[str, Any] = field(default_factory=dict)
    ips_only_on_binance: list[str] = field(default_factory=list)
    ips_only_declared: list[str] = field(default_factory=list)
    gone: bool = False  # the refresh found it gone from the exchange: the plan makes it again
    # An update that rotates the key under its overlap window (op "rotate"), or retires the
    # previous key once the window has ended (op "retire"): from when the previous key goes.
    retires_at_ms: int | None = None
    urn: str = ""

    @property
    def scheduled(self) -> bool:
        """Work that time alone made due: a rotation by age (rotateAfterDays) with no declared
        change beside it, or a retirement. `gitops rotate` applies these and nothing else."""
        if self.op == "retire":
            return True
        return (self.op in ("replace", "rotate") and self.because == ["rotateAfterDays"]
                and set(self.fields) <= {"rotateAfterDays"})

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "op": self.op, "fields": self.fields, "because": self.because,
                "binance": self.binance, "declared": self.declared,
                "ipsOnlyOnBinance": self.ips_only_on_binance,
                "ipsOnlyDeclared": self.ips_only_declared, "gone": self.gone,
                "retiresAtMs": self.retires_at_ms, "scheduled": self.scheduled}


class Events:
    """What the engine reported, from its event log (never scraped from text): each key that
    changes, how and why, and each error message."""

    def __init__(self, events: list[dict[str, Any]] | None = None) -> None:
        self.events = events or []

    def key_steps(self) -> list[KeyStep]:
        """One step per special key that changes (never the Stack or a provider resource)."""
        from ..fields import DIFF_FIELDS, PYTHON_TO_CONFIG

        steps: dict[str, KeyStep] = {}
        gone = self._gone()
        for event in self.events:
            meta = (event.get("resourcePreEvent") or {}).get("metadata") or {}
            if not str(meta.get("type", "")).endswith("MarginSpecialKey"):
                continue
            op = str(meta.get("op", ""))
            if op not in STEP_OPS:
                continue
            name = str(meta.get("urn", "")).rsplit("::", 1)[-1]
            step = steps.setdefault(name, KeyStep(name, "replace" if op in REPLACE_OPS else op))
            changed = list(meta.get("diffs") or []) + [re.split(r"[.\[]", path, maxsplit=1)[0]
                                                       for path in (meta.get("detailedDiff") or {})]
            held = (meta.get("old") or {}).get("outputs")
            old_inputs = (meta.get("old") or {}).get("inputs")
            new_inputs = (meta.get("new") or {}).get("inputs")
            if op == "update" and not changed and old_inputs is not None and new_inputs is not None:
                # Dynamic providers' diffs name no properties: compare the inputs themselves.
                changed = [f for f in DIFF_FIELDS if old_inputs.get(f) != new_inputs.get(f)]
            for field_name in changed:
                shown = PYTHON_TO_CONFIG.get(field_name, field_name)
                if shown not in step.fields:
                    step.fields.append(shown)
            for field_name in meta.get("keys") or []:
                shown = PYTHON_TO_CONFIG.get(field_name, field_name)
                if shown not in step.because:
                    step.because.append(shown)
            if held is not None and new_inputs is not None:
                _held_and_declared(step, held, new_inputs, [*changed, *(meta.get("keys") or [])])
                if op == "update":
                    _rotation(step, held, new_inputs)
            step.gone = op == "create" and name in gone
            step.urn = str(meta.get("urn", ""))
        return list(steps.values())

    def stack_urn(self) -> str | None:
        """The stack resource's URN: a targeted up names it too, so the stack's outputs (each
        key's credentials) follow the keys it changes."""
        for event in self.events:
            meta = (event.get("resourcePreEvent") or {}).get("metadata") or {}
            if meta.get("type") == "pulumi:pulumi:Stack" and meta.get("urn"):
                return str(meta["urn"])
        return None

    def _gone(self) -> set[str]:
        """The keys this run's refresh found gone from the exchange: their state left, so the
        plan makes them again."""
        gone = set()
        for event in self.events:
            meta = (event.get("resOutputsEvent") or {}).get("metadata") or {}
            if str(meta.get("type", "")).endswith("MarginSpecialKey") and meta.get("op") == "refresh" \
                    and meta.get("old") and not meta.get("new"):
                gone.add(str(meta.get("urn", "")).rsplit("::", 1)[-1])
        return gone

    def changes(self) -> dict[str, int]:
        """The summary's resource changes (the last summary: an update's, not its preview's)."""
        summaries = [e["summaryEvent"] for e in self.events if e.get("summaryEvent")]
        return summary_changes(summaries[-1].get("resourceChanges") if summaries else None)

    def errors(self) -> list[str]:
        """Each error's message: the last line a person reads, never a traceback's source line."""
        found = []
        for event in self.events:
            diag = event.get("diagnosticEvent")
            if not diag or diag.get("severity") != "error":
                continue
            lines = [ln.strip() for ln in str(diag.get("message", "")).splitlines() if ln.strip()]
            if not lines or any(g.lower() in lines[-1].lower() for g in GENERIC_ERRORS):
                continue
            text = lines[-1]
            # A provider's exception arrives as "Type: message": keep the message.
            text = re.sub(r"^(?:[A-Za-z_]\w*\.)*[A-Z]\w*:\s+", "", text)
            if text not in found:
                found.append(text)
        return found


# Fields whose values a summary may show beside the key: what a person on call needs to see what
# changed. Never a sensitive one (fields.py), never keepers (they may carry a note).
SHOWN_VALUES = ("ip_whitelist", "key_type", "permission_mode", "symbol", "api_name", "rsa_bits")


def _held_and_declared(step: KeyStep, held: dict[str, Any], declared: dict[str, Any],
                       changed: list[str]) -> None:
    """What Binance holds (the refreshed state) against what is declared, for each changed field
    a summary may show; for the IP list, the addresses only one side has."""
    from ..fields import PYTHON_TO_CONFIG

    shown = [f for f in SHOWN_VALUES if f in changed]
    step.binance = {PYTHON_TO_CONFIG[f]: held.get(f) for f in shown}
    step.declared = {PYTHON_TO_CONFIG[f]: declared.get(f) for f in shown}
    if "ip_whitelist" in shown:
        on_binance = set(held.get("ip_whitelist") or [])
        wanted = set(declared.get("ip_whitelist") or [])
        step.ips_only_on_binance = sorted(on_binance - wanted)
        step.ips_only_declared = sorted(wanted - on_binance)


def _rotation(step: KeyStep, held: dict[str, Any], declared: dict[str, Any]) -> None:
    """An update that rotates under an overlap window, or retires the previous key: the
    provider's own plan (spec.plan_diff) over what the state holds and what is declared."""
    import time

    from ..fields import PYTHON_TO_CONFIG
    from ..spec import HOUR_MS, overlap_hours, plan_diff, previous_retires_at_ms

    now = int(time.time() * 1000)
    inputs = {k: v for k, v in declared.items() if not k.startswith("__")}
    plan = plan_diff({k: v for k, v in held.items() if not k.startswith("__")}, inputs, now)
    if plan.rotates:
        step.op = "rotate"
        step.because = [PYTHON_TO_CONFIG.get(f, f) for f in plan.rotates]
        step.retires_at_ms = now + overlap_hours(inputs) * HOUR_MS
    elif plan.retires:
        step.op = "retire"
        step.retires_at_ms = previous_retires_at_ms(held, inputs)


def counts(steps: list[KeyStep]) -> dict[str, int]:
    found: dict[str, int] = {}
    for step in steps:
        op = "update" if step.op in ("rotate", "retire") else step.op  # updates, to the engine
        found[op] = found.get(op, 0) + 1
    return found
