"""The orphan audit's proof (gitops/orphans.py): what makes a key this stack's, and what never does."""

from __future__ import annotations

from typing import Any

from margin_special_keys.account import key_digest
from margin_special_keys.gitops.orphans import (
    HISTORY_UNREAD,
    ORPHAN,
    OTHER_STACK,
    UNMANAGED,
    UNPROVEN,
    ListedKey,
    StackKeys,
    classify,
    read_stack,
)

IPS = ["198.51.100.7"]


def key(api_key: str, name: str = "a3", scope: str | None = None, ips: list[str] | None = None,
        key_type: str | None = "ED25519", mode: str | None = "TRADE") -> ListedKey:
    return ListedKey(api_key, name, scope, frozenset(IPS if ips is None else ips), key_type, mode)


PLANNED_MS = 1_780_000_000_000


def pending(name: str = "a3", symbol: str | None = None, ips: list[str] | None = None,
            preexisting: list[str] | None = (), planned_at_ms: int | None = PLANNED_MS,  # type: ignore[assignment]
            **more: Any) -> dict[str, Any]:
    """A pending create as `pulumi stack export` shows one a killed run left."""
    inputs = {"api_name": name, "ip_whitelist": IPS if ips is None else ips, "key_type": "ED25519",
              "permission_mode": "TRADE", **more}
    if symbol:
        inputs["symbol"] = symbol
    plan: dict[str, Any] = {}
    if preexisting is not None:
        plan["preexisting_keys"] = list(preexisting)
    if planned_at_ms is not None:
        plan["planned_at_ms"] = planned_at_ms
    if plan:
        inputs["__create_plan"] = plan
    return {"type": "creating", "resource": {"type": "pulumi-python:dynamic/binance:MarginSpecialKey",
                                             "inputs": inputs}}


def stack(name: str, *creates: dict[str, Any], managed: tuple[str, ...] = (), uid: int = 1,
          latest_run_s: float | None = PLANNED_MS / 1000 - 3600) -> StackKeys:
    resources = [{"type": "pulumi-python:dynamic/binance:MarginSpecialKey", "id": k} for k in managed]
    return read_stack(name, uid, {}, {"resources": resources, "pending_operations": list(creates)},
                      latest_run_s)


NOW_MS = PLANNED_MS + 60_000  # the audit, a minute after the kill


def verdicts(listed: list[ListedKey], own: StackKeys, *others: StackKeys) -> dict[str, str]:
    return {f.api_key: f.verdict for f in classify(listed, own, list(others), NOW_MS)}


def test_a_key_its_own_pending_create_explains_is_an_orphan() -> None:
    assert verdicts([key("K1")], stack("a", pending())) == {"K1": ORPHAN}


def test_a_declared_name_is_never_proof() -> None:
    """Stack a declares `trader` and `cross-1`; its up was refused, so nothing is pending."""
    listed = [key("T", "trader"), key("C", "cross-1")]
    assert verdicts(listed, stack("a")) == {"T": UNMANAGED, "C": UNMANAGED}


def test_a_key_another_stack_holds_is_not_listed_and_one_it_is_creating_is_its_own() -> None:
    listed = [key("B1", "b1"), key("K1")]
    other = stack("b", pending(), managed=("B1",))
    assert verdicts(listed, stack("a"), other) == {"K1": OTHER_STACK}


def test_a_key_that_existed_when_the_create_was_planned_is_never_its_orphan() -> None:
    """Made by hand with the same name, IPs and type before the killed create was planned."""
    listed = [key("HAND")]
    own = stack("a", pending(preexisting=[key_digest("OTHER"), key_digest("HAND")]))
    assert verdicts(listed, own) == {"HAND": UNMANAGED}


def test_anything_the_create_did_not_send_breaks_the_match() -> None:
    own = stack("a", pending(preexisting=[]))
    assert verdicts([key("K", ips=["203.0.113.9"])], own) == {"K": UNMANAGED}
    assert verdicts([key("K", scope="BTCUSDT")], own) == {"K": UNMANAGED}
    assert verdicts([key("K", key_type="RSA")], own) == {"K": UNMANAGED}
    assert verdicts([key("K", mode="READ")], own) == {"K": UNMANAGED}
    assert verdicts([key("K", name="a4")], own) == {"K": UNMANAGED}
    # What the exchange does not say does not break it.
    assert verdicts([key("K", key_type=None, mode=None)], own) == {"K": ORPHAN}


def test_more_matching_keys_than_pending_creates_prove_none() -> None:
    listed = [key("K1"), key("K2")]
    assert verdicts(listed, stack("a", pending(preexisting=[]))) == {"K1": UNPROVEN, "K2": UNPROVEN}
    two = stack("a", pending(preexisting=[]), pending(preexisting=[]))
    assert verdicts(listed, two) == {"K1": ORPHAN, "K2": ORPHAN}


def test_pending_creates_of_two_stacks_that_match_one_key_prove_neither() -> None:
    listed = [key("K1")]
    assert verdicts(listed, stack("a", pending()), stack("b", pending())) == {"K1": UNPROVEN}


def test_an_adoption_and_other_pending_operations_make_no_key() -> None:
    adopting = pending(adopt_api_key="X" * 64)
    updating = {**pending(preexisting=None, planned_at_ms=None), "type": "updating"}  # an IP edit
    deleting = {**pending(), "type": "deleting"}
    assert verdicts([key("K1")], stack("a", adopting, updating, deleting)) == {"K1": UNMANAGED}


def test_a_pending_update_that_rotates_under_a_window_proves_its_new_key() -> None:
    """A rotation under an overlap window makes its key in an update; its inputs carry the plan."""
    rotating = {**pending(), "type": "updating"}
    assert verdicts([key("K1")], stack("a", rotating)) == {"K1": ORPHAN}
    existed = {**pending(preexisting=[key_digest("K1")]), "type": "updating"}
    assert verdicts([key("K1")], stack("a", existed)) == {"K1": UNMANAGED}


def test_a_rotated_resource_holds_its_current_and_previous_keys() -> None:
    deployment = {"resources": [{"type": "pulumi-python:dynamic/binance:MarginSpecialKey", "id": "K0",
                                 "outputs": {"api_key": "K2", "previous_api_key": "K1"}}]}
    assert read_stack("a", 1, {}, deployment).managed == {"K0", "K1", "K2"}


def test_every_state_write_changes_the_checkpoint_digest() -> None:
    assert stack("a").checkpoint != stack("a", pending()).checkpoint
    assert stack("a").checkpoint == stack("a").checkpoint


def test_a_pending_create_a_later_run_outlived_proves_nothing() -> None:
    """Pulumi keeps a killed run's pending create in every later checkpoint until a refresh
    clears it: once a run started (and ended) after it, a key made since under the same name
    could be anyone's."""
    later = stack("a", pending(), latest_run_s=PLANNED_MS / 1000 + 30)
    [finding] = classify([key("K1")], later, [], NOW_MS)
    assert finding.verdict == UNPROVEN and "--clear-pending-creates" in finding.why
    same_second = stack("a", pending(), latest_run_s=PLANNED_MS // 1000)
    assert verdicts([key("K1")], same_second) == {"K1": UNPROVEN}
    assert verdicts([key("K1")], stack("a", pending(), latest_run_s=None)) == {"K1": ORPHAN}


def test_a_pending_create_proves_nothing_without_its_record_history_or_a_sane_age() -> None:
    cases = {
        "earlier version": stack("a", pending(preexisting=None)),
        "earlier version ": stack("a", pending(planned_at_ms=None)),
        "history could not be read": stack("a", pending(), latest_run_s=HISTORY_UNREAD),
        "later than now": stack("a", pending(planned_at_ms=NOW_MS + 10 * 60_000)),
    }
    for says, own in cases.items():
        [finding] = classify([key("K1")], own, [], NOW_MS)
        assert finding.verdict == UNPROVEN and says.strip() in finding.why, finding.why
    [old] = classify([key("K1")], stack("a", pending()), [], PLANNED_MS + 25 * 3600 * 1000)
    assert old.verdict == UNPROVEN and "older than 24 hours" in old.why
