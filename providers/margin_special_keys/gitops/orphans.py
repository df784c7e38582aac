"""The orphan audit: which keys on an account a stack provably made and lost.

A run killed while it creates keys can leave a key on the exchange that no state records. Such a
key is an **orphan** of stack S only when S can prove it made it:

1. **S's own pending create explains it.** The engine writes a pending create into S's state
   before it asks the provider to make the key, and a killed run leaves it there. (A rotation
   under an overlap window makes its key in an update: a pending update whose inputs carry the
   plan counts as a pending create.) Only a run of S
   writes S's state. The key must match that create in everything the exchange lists: apiName,
   scope, key type, permission mode and the exact IP list.
2. **The key did not exist when the create was planned.** The provider records, in the create's
   inputs (`__create_plan`: state_format.CREATE_PLAN_KEY), a digest of every apiKey the scope
   held when it checked the new key (`preexisting_keys`) and when (`planned_at_ms`): a key made
   by hand or by another stack before that moment can never match. A pending create recorded
   without them (by an earlier version) proves nothing.
3. **The pending create is the stack's last word.** Pulumi keeps a killed run's pending creates
   in every later checkpoint until a refresh clears them; once any run of the stack has started
   and ended after the create was planned (the stack's history), it proves nothing more: a key
   made since under the same name could be anyone's.
4. **Nothing else explains it.** No state of any stack of the project holds it (apiKeys are
   unique, whichever account a stack's provider signs for now); no other stack's pending create
   matches it; and no more keys match than S had such pending creates.

A declared name is never proof: declaring `trader` does not make the live `trader` key of another
desk ours. What the audit cannot prove is reported, never deleted. Deletion (gitops/audit.py)
also requires that no run holds the lock of any stack on the account, read where the stacks live
(gitops/backends.py), and reads the states again after the key list, so a create in flight is
seen as one.

A key younger than the stack's last checkpoint does **not** wait for a later audit: a killed run's
orphan is by nature younger than its last checkpoint (the engine records the pending create, then
the provider makes the key, then the run dies). A running update is told apart by its lock, not
by age, and Binance's key list gives no creation time to compare anyway.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..account import key_digest
from ..key_type import KeyType
from ..state_format import CREATE_PLAN_KEY

ORPHAN = "orphan"  # provably this stack's: the only verdict ever deleted
OTHER_STACK = "another stack's"  # another stack's pending create explains it: its own audit decides
UNPROVEN = "unproven"  # a pending create of this stack matches it, but the proof does not hold
UNMANAGED = "unmanaged"  # no state and no pending create explains it: made by hand, or elsewhere

KEY_TYPE = "MarginSpecialKey"
# A pending create proves for a day at most: the recovery runs soon after a kill; later, a stack
# that never ran again still keeps it, and a key made since under its name could be anyone's.
PROOF_MAX_AGE_MS = 24 * 3600 * 1000
CLOCK_TOLERANCE_MS = 5 * 60 * 1000  # how far the killed run's clock may run ahead of this one


@dataclass(frozen=True)
class ListedKey:
    """A key as the exchange lists it."""

    api_key: str
    api_name: str
    scope: str | None  # None: the cross margin account
    ips: frozenset[str]
    key_type: str | None  # None: the exchange did not say
    permission_mode: str | None

    @property
    def where(self) -> str:
        return self.scope or "cross margin"


@dataclass(frozen=True)
class PendingCreate:
    """A create the engine recorded before calling the provider, and never heard back from."""

    api_name: str
    scope: str | None
    key_type: str
    permission_mode: str | None
    ips: frozenset[str]
    preexisting: frozenset[str] | None  # None: recorded by a version that kept no digests
    planned_at_ms: int | None = None  # None: likewise
    superseded: bool = False  # a run of the stack started and ended after it was planned
    history_unread: bool = False  # the stack's history could not be read to tell

    @property
    def identity(self) -> tuple[Any, ...]:
        return (self.api_name, self.scope, self.key_type, self.permission_mode, self.ips)

    @classmethod
    def from_inputs(cls, inputs: Mapping[str, Any]) -> PendingCreate | None:
        """From the pending resource's checked inputs; None for an adoption (it makes no key)."""
        api_name = inputs.get("api_name")
        if not isinstance(api_name, str) or inputs.get("adopt_api_key"):
            return None
        ips = inputs.get("ip_whitelist") or []
        plan = inputs.get(CREATE_PLAN_KEY)
        plan = plan if isinstance(plan, dict) else {}
        preexisting = plan.get("preexisting_keys")
        planned = plan.get("planned_at_ms")
        return cls(
            api_name=api_name,
            scope=str(inputs["symbol"]) if inputs.get("symbol") else None,
            key_type=str(inputs.get("key_type") or KeyType.ED25519.value),
            permission_mode=str(inputs["permission_mode"]) if inputs.get("permission_mode") else None,
            ips=frozenset(str(ip) for ip in ips if isinstance(ip, str)),
            preexisting=frozenset(map(str, preexisting)) if isinstance(preexisting, list) else None,
            planned_at_ms=int(planned) if isinstance(planned, (int, float)) else None,
        )

    def doubt(self, now_ms: int) -> str | None:
        """Why this pending create cannot prove a key is its orphan (module docstring), or None."""
        if self.preexisting is None or self.planned_at_ms is None:
            return "it matches a pending create recorded by an earlier version, which kept no proof"
        if self.superseded:
            return ("it matches a pending create of this stack that a later run outlived (clear it:"
                    " `pulumi refresh --clear-pending-creates`)")
        if self.history_unread:
            return "it matches a pending create of this stack, whose history could not be read"
        if self.planned_at_ms > now_ms + CLOCK_TOLERANCE_MS:
            return "it matches a pending create planned later than now by this machine's clock"
        if now_ms - self.planned_at_ms > PROOF_MAX_AGE_MS:
            return ("it matches a pending create older than 24 hours: a key made since under its"
                    " name could be anyone's")
        return None

    def matches(self, key: ListedKey) -> bool:
        """The key is what this create sent: every field the exchange lists agrees."""
        return (key.api_name == self.api_name and key.scope == self.scope
                and key.key_type in (None, self.key_type)
                and (key.permission_mode is None or self.permission_mode is None
                     or key.permission_mode == self.permission_mode)
                and key.ips == self.ips)

    def existed_before(self, key: ListedKey) -> bool:
        return self.preexisting is not None and key_digest(key.api_key) in self.preexisting


@dataclass
class StackKeys:
    """What one stack's state says about its account's keys."""

    stack: str
    uid: int | None  # the Binance account its provider signs for
    managed: set[str] = field(default_factory=set)  # apiKeys in the state
    pending: list[PendingCreate] = field(default_factory=list)
    checkpoint: str = ""  # a digest of the whole state: any run that writes it changes this
    # The stack's config, secrets decrypted: the provider credentials the audit signs with.
    config: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass
class Finding:
    """A key on the account that no stack's state holds, and what the audit concluded."""

    api_key: str
    api_name: str
    scope: str
    verdict: str
    why: str
    deleted: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"apiKey": self.api_key, "apiName": self.api_name, "scope": self.scope,
                "verdict": self.verdict, "why": self.why, "deleted": self.deleted}


HISTORY_UNREAD = -1.0  # `latest_run_s` when the stack's history could not be read


def read_stack(name: str, uid: int | None, config: dict[str, str], deployment: Mapping[str, Any],
               latest_run_s: float | None = None) -> StackKeys:
    """What a stack's state (as `pulumi stack export` gives it, no secret needed) says;
    `latest_run_s`: when the newest run in the stack's history started (None: no run ended yet;
    HISTORY_UNREAD: it could not be read)."""
    import dataclasses

    found = StackKeys(name, uid, config=config,
                      checkpoint=hashlib.sha256(json.dumps(deployment, sort_keys=True).encode()).hexdigest())
    for resource in deployment.get("resources") or []:
        if str(resource.get("type", "")).endswith(KEY_TYPE) and resource.get("id"):
            # The id is the apiKey of the key the resource first made; after a rotation under an
            # overlap window it holds the current key and, until it retires, the previous one.
            outputs = resource.get("outputs") or {}
            found.managed.update(str(k) for k in (resource["id"], outputs.get("api_key"),
                                                  outputs.get("previous_api_key")) if k)
    for operation in deployment.get("pending_operations") or []:
        resource = operation.get("resource") or {}
        inputs = resource.get("inputs") or {}
        # A pending update makes a key only when it rotates under a window, and then its inputs
        # carry the plan (margin_special_key.py check); one without a plan made no key.
        makes_key = operation.get("type") == "creating" or (
            operation.get("type") == "updating" and isinstance(inputs.get(CREATE_PLAN_KEY), dict))
        if makes_key and str(resource.get("type", "")).endswith(KEY_TYPE):
            pending = PendingCreate.from_inputs(inputs)
            if pending is not None and latest_run_s == HISTORY_UNREAD:
                pending = dataclasses.replace(pending, history_unread=True)
            elif pending is not None and pending.planned_at_ms is not None and latest_run_s is not None \
                    and latest_run_s >= pending.planned_at_ms // 1000:
                # History keeps whole seconds: a run in the same second counts as after.
                pending = dataclasses.replace(pending, superseded=True)
            if pending is not None:
                found.pending.append(pending)
    return found


def classify(listed: Iterable[ListedKey], own: StackKeys, others: list[StackKeys],
             now_ms: int | None = None) -> list[Finding]:
    """A verdict for each listed key that no state holds. `others`: every other stack of the
    project, read after `listed` was taken."""
    import time

    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    managed = set().union(own.managed, *(s.managed for s in others))
    unheld = [k for k in listed if k.api_key not in managed]
    # How many of this stack's pending creates sent each identity, and how many unheld keys
    # could be one of them: more keys than creates, and none of them can be told to be ours.
    creates = Counter(p.identity for p in own.pending)
    candidates = Counter(identity for k in unheld
                         for identity in {p.identity for p in own.pending
                                          if p.matches(k) and not p.existed_before(k)})
    findings = []
    for key in unheld:
        mine = [p for p in own.pending if p.matches(key)]
        ours = [p for p in mine if not p.existed_before(key)]
        theirs = sorted({s.stack for s in others for p in s.pending if p.matches(key)})
        if ours and theirs:
            verdict, why = UNPROVEN, (f"pending creates of this stack and of {', '.join(theirs)}"
                                      " both match it")
        elif ours and candidates[ours[0].identity] > creates[ours[0].identity]:
            verdict, why = UNPROVEN, (f"{candidates[ours[0].identity]} keys match"
                                      f" {creates[ours[0].identity]} pending create(s) of this"
                                      " stack: which the run made cannot be told")
        elif ours and any(p.doubt(now_ms) for p in ours):
            verdict, why = UNPROVEN, next(d for p in ours if (d := p.doubt(now_ms)))
        elif ours:
            verdict, why = ORPHAN, "this stack's pending create (a killed run) made it"
        elif theirs:
            verdict, why = OTHER_STACK, f"a pending create of {', '.join(theirs)} matches it"
        elif mine:
            verdict, why = UNMANAGED, ("it matches a pending create of this stack, but existed"
                                       " before that create was planned")
        else:
            verdict, why = UNMANAGED, "no stack's state holds it and no pending create made it"
        findings.append(Finding(key.api_key, key.api_name, key.where, verdict, why))
    return findings
