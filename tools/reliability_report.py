"""Turn the proofs' JSON lines (PROOF_REPORT) into docs/reliability.md."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tools.machine import machine_line


def main(source: Path, target: Path) -> None:
    rows = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_kind.setdefault(row["kind"], []).append(row)
    out = [
        "# Reliability and security: what the proofs showed",
        "",
        f"Written by `make proof` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {machine_line()}.",
        "Every figure comes from tests in `tests/proof/`, run whole by `make proof`; `make test` (and",
        "so CI) runs one cell per operation of these engine-level tables, and every cell at the",
        "provider level (`tests/provider/`). The exchange is the sandbox, read through its admin",
        "interface, never through the client.",
        "",
        "## Fault matrix",
        "",
        "Two keys (HMAC and Ed25519) per cell; the fault hits the first two requests of the operation",
        "(the clock skew hits every request). *Ups* is how many `pulumi up` runs it took (at most 2",
        "allowed); *agree* means the exchange's keys are exactly the state's, with no duplicate.",
        "",
        "| operation | fault | ups | exchange keys | state keys | agree | duplicates | requests | refused |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in by_kind.get("fault", []):
        agree = "yes" if r["agree"] else "NO"
        out.append(f"| {r['operation']} | {r['fault']} | {r['ups']} | {r['exchange']} | {r['state']} |"
                   f" {agree} | {r['duplicates']} | {r['requests']} | {r['refused']} |")
    out += [
        "",
        "## Killed runs",
        "",
        "`kill -9` of the whole `gitops up` process group (the runner, the engine, the language host,",
        "the provider) while it creates 20 keys on Pulumi's `postgres://` backend, another desk's",
        "stack holding keys on the same account; creates act at once and answer 1.5 s later, so a",
        "kill leaves keys whose create never heard back. Before `pulumi cancel`, `orphans --delete`",
        "refuses, naming the killed run's lock. Then the documented recovery: `pulumi cancel --yes`,",
        "`python -m margin_special_keys.gitops orphans --stacks S --delete --yes`, `pulumi refresh",
        "--yes --clear-pending-creates --run-program`, `pulumi up --yes`; the other desk's keys are",
        "untouched and it previews no changes.",
        "Pulumi's dynamic provider process and Pulumi's Go language host (with the program it ran)",
        "outlive the killed engine; the runner's next command in the project (the audit) ends them.",
        "",
        "| killed once the exchange held | keys on exchange at kill | keys in state at kill |"
        " orphans deleted | after recovery: exchange / state | agree |",
        "|---:|---:|---:|---:|---|---|",
    ]
    for r in by_kind.get("kill", []):
        agree = "yes" if r["agree"] else "NO"
        out.append(f"| {r['kill_at_keys']} keys | {r['exchange_at_kill']} | {r['state_at_kill']} |"
                   f" {r['orphans_deleted']} | {r['exchange']} / {r['state']} | {agree} |")
    out += ["", "## Leaks", ""]
    for r in by_kind.get("leaks", []):
        out.append(
            f"A lifecycle of every key type (create, IP edit, rotation, refresh, a failing create,"
            f" destroy) under `-v=11 --logflow` (stderr and log files): {r['secrets']} secret values"
            f" (generated private keys, HMAC secrets, the provider's key and private key) searched in"
            f" {r['places']} places ({r['bytes_searched']:,} bytes: command output, engine logs,"
            f" `stack export` after each step, state files, stack config, the sandbox's logs, error"
            f" messages, the pickled provider). Found: {r['leaks']}. A control search of"
            " `stack export --show-secrets` finds every generated secret.")
    bad = by_kind.get("bad input", [])
    config_cases = sum(r.get("cases", 0) for r in bad if r["where"] == "stack config")
    settings_cases = [r["case"] for r in bad if r["where"] == "provider settings"]
    out += [
        "",
        "## Bad input",
        "",
        f"{config_cases + len(settings_cases)} distinct bad inputs, each failing at `pulumi preview`"
        " with a message naming the field, and no request reaching the exchange:",
        f"- {config_cases} in stack config (IP forms and counts, symbols, names, key types, RSA sizes,"
        " permission modes, public keys of the wrong type, size or encoding, rotation inputs,"
        " adoption inputs, unknown fields, malformed entries), all reported by one preview with"
        " their exact paths;",
        f"- {len(settings_cases)} in provider settings: " + "; ".join(settings_cases) + ".",
        "",
        "Property-based tests (hypothesis) cover validation and diff in `tests/unit/test_spec.py`.",
        "",
        "## Contention",
        "",
    ]
    for r in by_kind.get("contention", []):
        extra = f", {r['throttled']} requests answered 429 and waited out" if "throttled" in r else ""
        out.append(f"- {r['case']}: {r['outcome']}{extra}.")
    target.write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
