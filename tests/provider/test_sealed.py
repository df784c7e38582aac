"""Sealed hand-off (deliverTo), called as the engine calls the provider: each key's credentials
sealed to its own trading systems' age recipients; other recipients re-seal without a rotation;
a removed recipient cannot open what is sealed next; a rotation under a window seals both keys."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from margin_special_keys import age
from margin_special_keys.margin_special_key import MarginSpecialKeyProvider
from margin_special_keys.spec import check_inputs
from tests.harness import SandboxAccount, SandboxProcess
from tests.provider.conftest import checked


def opened(outs: dict[str, Any], identity: age.Identity) -> dict[str, Any]:
    return dict(json.loads(age.decrypt(outs["sealed_credentials"].encode(), [identity])))


def test_a_key_is_sealed_to_its_recipients_only_and_a_new_recipient_list_reseals_it(
    provider: MarginSpecialKeyProvider, sandbox: SandboxProcess, account: SandboxAccount,
    tmp_path: Path,
) -> None:
    desk, risk, other = age.generate_identity(), age.generate_identity(), age.generate_identity()
    news = checked(provider, api_name="bot", deliver_to=[str(desk.recipient), str(risk.recipient)])
    made = provider.create(news)
    outs = dict(made.outs or {})
    sealed = outs["sealed_credentials"]
    assert sealed.startswith("-----BEGIN AGE ENCRYPTED FILE-----")
    assert outs["private_key"] not in sealed and "PRIVATE KEY" not in sealed
    for identity in (desk, risk):
        assert opened(outs, identity) | {"sealedAtMs": 0} == {
            "apiName": "bot", "symbol": None, "keyType": "ED25519", "apiKey": made.id,
            "privateKey": outs["private_key"], "sealedAtMs": 0}
    with pytest.raises(age.AgeError):
        opened(outs, other)
    # The age CLI opens it too (the trading host may use either).
    identity_file = tmp_path / "desk.key"
    identity_file.write_text(desk.to_text() + "\n")
    run = subprocess.run(["age", "-d", "-i", str(identity_file)], input=sealed.encode(),
                         capture_output=True, check=True)
    assert json.loads(run.stdout)["apiKey"] == made.id

    # Risk no longer reads it: an update that re-seals, and no new key.
    fewer = {**news, "deliver_to": [str(desk.recipient)]}
    plan = provider.diff(made.id, outs, fewer)
    assert (plan.changes, plan.replaces) == (True, [])
    sandbox.reset_requests()
    resealed = dict(provider.update(made.id, outs, fewer).outs or {})
    assert sandbox.mutations() == []  # nothing sent to the exchange
    assert resealed["api_key"] == made.id and resealed["private_key"] == outs["private_key"]
    assert opened(resealed, desk)["apiKey"] == made.id
    with pytest.raises(age.AgeError):
        opened(resealed, risk)
    # Without deliverTo there is nothing sealed.
    dropped = dict(provider.update(made.id, resealed, checked(provider, api_name="bot")).outs or {})
    assert "sealed_credentials" not in dropped
    provider.delete(made.id, dropped)


def test_a_rotation_under_a_window_seals_the_new_key_and_the_previous_one(
    provider: MarginSpecialKeyProvider,
) -> None:
    desk = age.generate_identity()
    news = checked(provider, api_name="bot", key_type="HMAC", keepers={"v": "1"}, overlap_hours=12,
                   deliver_to=[str(desk.recipient)])
    made = provider.create(news)
    first = dict(made.outs or {})
    outs = dict(provider.update(made.id, first, {**news, "keepers": {"v": "2"}}).outs or {})
    sealed = opened(outs, desk)
    assert sealed["apiKey"] == outs["api_key"] and sealed["secretKey"] == outs["secret_key"]
    assert sealed["previous"] == {
        "apiKey": first["api_key"], "keyType": "HMAC", "secretKey": first["secret_key"],
        "retiresAtMs": outs["previous_retires_at_ms"], "retiresAt": sealed["previous"]["retiresAt"]}
    assert sealed["previous"]["retiresAt"].endswith(" UTC")
    provider.delete(made.id, outs)


@pytest.mark.parametrize(("given", "problem"), [
    ([], "deliver_to: is empty: list the age recipients"),
    (["age1notarecipient"], "deliver_to[0]: invalid age recipient"),
    ("age1…", "deliver_to: must be a list of age recipients"),
])
def test_a_bad_recipient_list_is_named_at_its_path(given: Any, problem: str) -> None:
    _, found = check_inputs({"api_name": "d", "ip_whitelist": ["192.0.2.1"], "deliver_to": given})
    assert len(found) == 1 and found[0].python().startswith(problem)


def test_a_secret_identity_pasted_as_a_recipient_is_named_never_echoed() -> None:
    secret = age.generate_identity().to_text()
    _, found = check_inputs({"api_name": "d", "ip_whitelist": ["192.0.2.1"],
                             "deliver_to": [secret]})
    [failure] = found
    assert failure.python().startswith("deliver_to[0]: this is a secret identity")
    assert secret not in failure.python() and secret[15:40] not in failure.python()
