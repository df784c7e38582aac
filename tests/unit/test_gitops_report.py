"""The runner's summary and exit codes, as a pipeline reads them."""

from __future__ import annotations

import json

from margin_special_keys.gitops.events import KeyStep, error_text
from margin_special_keys.gitops.orphans import ORPHAN, OTHER_STACK, UNMANAGED, UNPROVEN, Finding
from margin_special_keys.gitops.report import StackResult, as_json, exit_code, markdown


def test_exit_codes() -> None:
    ok = StackResult("a", "preview", changes={"update": 1})
    assert exit_code([ok], "preview") == 0
    assert exit_code([ok, StackResult("b", "preview", ok=False, error="boom")], "preview") == 1
    assert exit_code([StackResult("a", "drift", drifted=True)], "drift") == 2
    busy = StackResult("b", "drift", busy="stack 'b' is locked by another run")
    assert exit_code([StackResult("a", "drift"), busy], "drift") == 5
    assert exit_code([StackResult("a", "drift", drifted=True), busy], "drift") == 2


def test_orphan_exit_codes_separate_what_to_act_on_from_keys_that_are_not_ours() -> None:
    def finding(verdict: str, deleted: bool = False) -> Finding:
        return Finding("K", "x", "cross margin", verdict, "why", deleted)

    def code(*findings: Finding) -> int:
        return exit_code([StackResult("a", "orphans", orphans=list(findings))], "orphans")

    assert code() == 0
    assert code(finding(ORPHAN)) == 3
    assert code(finding(ORPHAN, deleted=True)) == 0
    # One hand-made key does not keep a nightly job red as "orphans to act on".
    assert code(finding(UNMANAGED)) == 4
    assert code(finding(UNPROVEN), finding(OTHER_STACK)) == 4
    assert code(finding(UNMANAGED), finding(ORPHAN)) == 3
    summary = json.loads(as_json([StackResult("a", "orphans", orphans=[finding(UNMANAGED)])], "orphans"))
    assert summary["stacks"][0]["orphans"] == [
        {"apiKey": "K", "apiName": "x", "scope": "cross margin", "verdict": "unmanaged", "why": "why",
         "deleted": False}]
    assert summary["exitCode"] == 4


def test_markdown_rows_and_escaping() -> None:
    md = markdown([
        StackResult("desk-a", "up", changes={"create": 2, "replace": 1}, duration_s=3.21),
        StackResult("desk-b", "up", ok=False, error="a | b\nc", duration_s=1.0),
    ], "up")
    assert "| `desk-a` | ✅ changes | 2 | 0 | 1 | 0 |  | 3.2s |" in md
    assert "| `desk-b` | ❌ error | 0 | 0 | 0 | 0 | a \\| b c | 1.0s |" in md


def test_json_summary_carries_the_exit_code() -> None:
    data = json.loads(as_json([StackResult("a", "drift", drifted=True)], "drift"))
    assert data["exitCode"] == 2 and data["stacks"][0]["drifted"] is True


def test_error_text_keeps_the_diagnostic_and_drops_generic_lines() -> None:
    raw = """stderr: ...
Diagnostics:
  pulumi:pulumi:Stack (margin-special-keys-desk-c):
    error: stack config is not valid:
      keys[0].ipWhitelist[0]: "10.0.0.0/8" is a range; list addresses
    error: an unhandled error occurred: Program exited with non-zero exit code: 1

Resources:
    1 errored
"""
    assert error_text(Exception(raw)) == (
        'stack config is not valid: keys[0].ipWhitelist[0]: "10.0.0.0/8" is a range; list addresses')


def test_the_summary_names_each_key_that_changes_and_flags_new_credentials() -> None:
    steps = [KeyStep("bot-01", "replace", ["keepers"], ["keepers"]),
             KeyStep("bot-02", "update", ["ipWhitelist"], [], {"ipWhitelist": ["10.0.0.1"]},
                     {"ipWhitelist": ["10.0.0.2"]}, ["10.0.0.1"], ["10.0.0.2"]),
             KeyStep("bot-03", "replace", ["rotateAfterDays"], [])]
    result = StackResult("sub2", "preview", changes={"replace": 2, "update": 1}, steps=steps)
    md = markdown([result], "preview")
    assert "| `sub2` | ✅ changes | 0 | 1 | 2 | 0 |" in md
    assert ("- `sub2` · **bot-01** · replace because of keepers — ⚠️ new credentials: the trading"
            " system must switch to the new key") in md
    assert "- `sub2` · **bot-02** · update (ipWhitelist): adds 10.0.0.2; removes 10.0.0.1" in md
    assert "because of age (rotateAfterDays)" in md
    assert json.loads(as_json([result], "preview"))["stacks"][0]["steps"] == [s.as_dict() for s in steps]
    drift = markdown([StackResult("sub2", "drift", drifted=True, steps=steps[1:2])], "drift")
    assert "on Binance, not declared: 10.0.0.1; declared, not on Binance: 10.0.0.2" in drift


def test_a_rotation_under_a_window_and_a_retirement_say_when_the_old_key_goes() -> None:
    ms = 1_796_306_400_000  # 2026-12-03 14:00 UTC
    rotate = KeyStep("bot-01", "rotate", ["keepers"], ["keepers"], retires_at_ms=ms)
    retire = KeyStep("bot-02", "retire", [], [], retires_at_ms=ms)
    md = markdown([StackResult("sub2", "preview", changes={"update": 2}, steps=[rotate, retire])],
                  "preview")
    assert ("- `sub2` · **bot-01** · rotate because of keepers — new key now; the old key stays"
            " usable until 2026-12-03 14:00 UTC, then the next run retires it — ⚠️ new"
            " credentials: the trading system must switch to the new key before then") in md
    assert ("- `sub2` · **bot-02** · retire the previous key (its window ended 2026-12-03 14:00"
            " UTC): it is deleted, the current key stays") in md
    # Only what time made due is scheduled: what `rotate` applies, and what drift does not count.
    aged = KeyStep("bot-03", "replace", ["rotateAfterDays"], ["rotateAfterDays"])
    aged_and_edited = KeyStep("bot-04", "replace", ["rotateAfterDays", "keepers"],
                              ["rotateAfterDays", "keepers"])
    assert [s.scheduled for s in (rotate, retire, aged, aged_and_edited)] == [False, True, True, False]


def test_nothing_put_into_markdown_can_inject_a_row_a_link_or_a_mention() -> None:
    evil = "x | ✅ no changes | 0 | 0 | 0 | 0 |  | 0s |\n| [click](https://evil.example) @everyone"
    md = markdown([StackResult(evil, "preview", ok=False, error=evil)], "preview")
    table_rows = [line for line in md.splitlines() if line.startswith("| `")]
    assert len(table_rows) == 1 and table_rows[0].count(" | ") == 7
    assert "[click](" not in md and " @everyone" not in md
    sneaky = "see https://evil.example &#64;team \u202egnp.exe"
    md = markdown([StackResult("a", "preview", ok=False, error=sneaky)], "preview")
    assert "https://" not in md and "&#64;" not in md and "\u202e" not in md
    assert "https\\://evil.example \\&\\#64;team" in md
