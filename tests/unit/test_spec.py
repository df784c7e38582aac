"""Validation, normalization and the diff plan: pure functions, no network."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given
from hypothesis import strategies as st

from margin_special_keys import spec, values
from margin_special_keys.spec import check_inputs, plan_diff


def pem(private: Any) -> str:
    return str(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())


ED_PEM = pem(ed25519.Ed25519PrivateKey.generate())
RSA_PEM = pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def failures(**news: Any) -> dict[str, str]:
    """Field -> the failure as the provider reports it (its Python path, then the reason)."""
    _, found = check_inputs({"api_name": "desk", **news})
    return {f.property: f.python() for f in found}


def test_unknown_sentinel_is_pulumis() -> None:
    from pulumi.runtime import rpc

    assert spec.UNKNOWN == rpc.UNKNOWN


def test_defaults_and_normalization() -> None:
    inputs, found = check_inputs({
        "api_name": "desk", "symbol": "btcusdt",
        "ip_whitelist": ["10.0.0.2", "2001:DB8::1", "10.0.0.1", "10.0.0.2"],
    })
    assert found == []
    assert inputs == {
        "api_name": "desk", "symbol": "BTCUSDT", "key_type": "ED25519", "permission_mode": "TRADE",
        "ip_whitelist": ["10.0.0.1", "10.0.0.2", "2001:db8::1"],
    }
    rsa_inputs, _ = check_inputs({"api_name": "d", "key_type": "rsa"})
    assert rsa_inputs["rsa_bits"] == 2048 and "permission_mode" not in rsa_inputs


@pytest.mark.parametrize(("news", "field", "words"), [
    ({"api_name": ""}, "api_name", "required"),
    ({"api_name": " desk"}, "api_name", "leading or trailing"),
    ({"api_name": "x" * 129}, "api_name", "at most 128"),
    ({"api_name": "a\tb"}, "api_name", "control"),
    ({"api_name": 42}, "api_name", "required"),
    ({"symbol": "BTC/USDT"}, "symbol", "not a symbol"),
    ({"symbol": "B"}, "symbol", "not a symbol"),
    ({"symbol": 7}, "symbol", "isolated margin pair"),
    ({"ip_whitelist": ["10.0.0.0/8"]}, "ip_whitelist", "is a range; list addresses"),
    ({"ip_whitelist": ["example.com"]}, "ip_whitelist", "host names"),
    ({"ip_whitelist": ["10.0.0.256"]}, "ip_whitelist", "not an IPv4 or IPv6"),
    ({"ip_whitelist": ["0.0.0.0"]}, "ip_whitelist", "without IP restriction"),
    ({"ip_whitelist": [f"10.0.1.{i}" for i in range(31)]}, "ip_whitelist", "at most 30"),
    ({"ip_whitelist": "10.0.0.1"}, "ip_whitelist", "must be a list"),
    ({"ip_whitelist": [1]}, "ip_whitelist", "not a string"),
    ({"key_type": "DSA"}, "key_type", "ED25519, RSA, HMAC"),
    ({"key_type": "RSA", "rsa_bits": 1024}, "rsa_bits", "2048, 4096"),
    ({"key_type": "RSA", "rsa_bits": 2048.5}, "rsa_bits", "whole number"),
    ({"key_type": "RSA", "rsa_bits": "big"}, "rsa_bits", "not a number"),
    ({"rsa_bits": 2048}, "rsa_bits", "RSA keys only"),
    ({"permission_mode": "ADMIN"}, "permission_mode", "TRADE, READ"),
    ({"key_type": "HMAC", "permission_mode": "READ"}, "permission_mode", "ED25519 keys only"),
    ({"key_type": "HMAC", "public_key": ED_PEM}, "public_key", "HMAC keys have no public key"),
    ({"public_key": RSA_PEM}, "public_key", "RSA key but key_type is ED25519"),
    ({"public_key": "ssh-ed25519 AAAA"}, "public_key", "BEGIN PUBLIC KEY"),
    ({"public_key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}, "public_key",
     "not a readable PEM"),
    ({"public_key": pem(ec.generate_private_key(ec.SECP256R1()))}, "public_key", "Ed25519 or RSA"),
    ({"key_type": "RSA", "public_key": pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))},
     "public_key", "1024 bits"),
    ({"key_type": "RSA", "rsa_bits": 4096, "public_key": RSA_PEM}, "public_key", "2048 bits but rsa_bits"),
    ({"keepers": "v1"}, "keepers", "map of strings"),
    ({"keepers": {"a": [1]}}, "keepers", "keepers.a: must be a string, a number or true/false"),
    ({"symbol": ""}, "symbol", "omit symbol for a cross margin key"),
    ({"symbol": "  "}, "symbol", "omit symbol for a cross margin key"),
    ({"key_type": ""}, "key_type", "is empty: omit it for the default ED25519"),
    ({"permission_mode": ""}, "permission_mode", "is empty: omit it for the default TRADE"),
    ({"ip_whitelist": []}, "ip_whitelist", "set allowAnyIp: true"),
    ({}, "ip_whitelist", "must be locked to the IP addresses"),
    ({"rotate_after_days": 0}, "rotate_after_days", "outside 1 to 3650"),
    ({"rotate_after_days": "weekly"}, "rotate_after_days", "not a number"),
])
def test_bad_input_names_the_field(news: dict[str, Any], field: str, words: str) -> None:
    found = failures(**news)
    assert field in found, found
    assert words in found[field]


def test_range_message_names_the_entry() -> None:
    assert failures(ip_whitelist=["10.0.0.1", "10.0.0.0/8"])["ip_whitelist"] == (
        'ip_whitelist[1]: "10.0.0.0/8" is a range; list addresses')


def test_failures_carry_a_structured_path_rendered_with_either_names() -> None:
    _, found = check_inputs({"api_name": "d", "ip_whitelist": ["10.0.0.1"],
                             "keepers": {"round": [1]}})
    [failure] = found
    assert failure.path == ("keepers", "round")
    assert failure.python() == "keepers.round: must be a string, a number or true/false"
    assert failure.config(("keys", 6)) == (
        "keys[6].keepers.round: must be a string, a number or true/false")
    _, found = check_inputs({"api_name": "d", "ip_whitelist": ["10.0.0.1", "bad"]})
    assert found[0].config(("keys", 0)).startswith('keys[0].ipWhitelist[1]: "bad" is not an IPv4')


def test_thirty_declared_addresses_plus_a_default_name_the_merge() -> None:
    ips = ["192.0.2.1"] + [f"198.51.100.{i}" for i in range(30)]
    _, found = check_inputs({"api_name": "d", "ip_whitelist": ips}, merged_from=1)
    assert found[0].python() == ("ip_whitelist: 31 addresses (30 declared + 1 from defaultIpWhitelist,"
                                 " which is merged into every key); Binance allows at most 30 per key")


def test_unknowns_pass_validation_during_preview() -> None:
    inputs, found = check_inputs({"api_name": spec.UNKNOWN, "ip_whitelist": ["10.0.0.1", spec.UNKNOWN],
                                  "key_type": spec.UNKNOWN, "public_key": spec.UNKNOWN})
    assert found == []
    assert inputs["api_name"] == spec.UNKNOWN and inputs["ip_whitelist"] == spec.UNKNOWN


def test_provided_public_key_is_canonicalized_and_sets_rsa_bits() -> None:
    inputs, found = check_inputs({"api_name": "d", "key_type": "RSA", "public_key": "\n" + RSA_PEM + "\n",
                                  "ip_whitelist": ["192.0.2.1"]})
    assert found == [] and inputs["public_key"] == RSA_PEM and inputs["rsa_bits"] == 2048


def stored(**extra: Any) -> dict[str, Any]:
    inputs, _ = check_inputs({"api_name": "desk", "ip_whitelist": ["10.0.0.1"], **extra})
    return {**inputs, "api_key": "K" * 64, "key_origin": "generated", "public_key": ED_PEM,
            "created_at_ms": 1_000_000}


def news(**extra: Any) -> dict[str, Any]:
    return check_inputs({"api_name": "desk", "ip_whitelist": ["10.0.0.1"], **extra})[0]


def test_no_change_and_ip_only_change() -> None:
    assert plan_diff(stored(), news(), now_ms=2_000_000).changes == []
    plan = plan_diff(stored(), news(ip_whitelist=["10.0.0.2"]), now_ms=2_000_000)
    assert (plan.changes, plan.replaces) == (["ip_whitelist"], [])


@pytest.mark.parametrize("change", [
    {"api_name": "desk-2"}, {"symbol": "BTCUSDT"}, {"key_type": "HMAC"},
    {"permission_mode": "READ"}, {"public_key": ED_PEM}, {"keepers": {"rotation": "2"}},
])
def test_identity_changes_replace(change: dict[str, Any]) -> None:
    plan = plan_diff(stored(), news(**change), now_ms=2_000_000)
    assert plan.replaces and set(plan.replaces) <= set(spec.REPLACE_FIELDS)


def test_generated_public_key_is_not_a_declared_one() -> None:
    # The generated PEM sits in the outputs; the inputs never declared one: no diff.
    assert plan_diff(stored(), news(), now_ms=2_000_000).changes == []


def test_unknown_values_count_as_changes() -> None:
    plan = plan_diff(stored(), {**news(), "api_name": spec.UNKNOWN}, now_ms=2_000_000)
    assert "api_name" in plan.replaces
    plan = plan_diff(stored(), {**news(), "ip_whitelist": spec.UNKNOWN}, now_ms=2_000_000)
    assert plan.changes == ["ip_whitelist"] and plan.replaces == []


def test_rotation_by_age() -> None:
    day = 86_400_000
    old = stored(rotate_after_days=30)
    assert plan_diff(old, news(rotate_after_days=30), now_ms=1_000_000 + 29 * day).replaces == []
    assert plan_diff(old, news(rotate_after_days=30), now_ms=1_000_000 + 30 * day).replaces == [
        "rotate_after_days"]
    # Changing the policy alone replaces nothing.
    assert plan_diff(old, news(rotate_after_days=60), now_ms=1_000_000 + day).replaces == []


HOUR = 3_600_000


@pytest.mark.parametrize("change", [
    {"api_name": "desk-2"}, {"key_type": "HMAC"}, {"permission_mode": "READ"},
    {"public_key": ED_PEM}, {"keepers": {"rotation": "2"}},
])
def test_under_a_window_a_replacement_is_a_rotation_in_place(change: dict[str, Any]) -> None:
    plan = plan_diff(stored(overlap_hours=24), news(overlap_hours=24, **change), now_ms=2_000_000)
    assert plan.replaces == [] and plan.rotates and set(plan.rotates) <= set(spec.REPLACE_FIELDS)
    assert plan.changed and not plan.retires and plan.blocked is None


def test_a_window_does_not_span_scopes_nor_survive_delete_before_replace() -> None:
    plan = plan_diff(stored(overlap_hours=24), news(overlap_hours=24, symbol="BTCUSDT"), now_ms=2_000_000)
    assert plan.replaces == ["symbol"] and plan.rotates == []
    plan = plan_diff(stored(), news(keepers={"v": "2"}), now_ms=2_000_000)  # no window
    assert plan.replaces == ["keepers"] and plan.rotates == []


def test_the_previous_key_retires_when_its_window_ends_and_not_before() -> None:
    old = {**stored(overlap_hours=24), "previous_api_key": "P" * 64, "created_at_ms": 1_000_000}
    assert plan_diff(old, news(overlap_hours=24), now_ms=1_000_000 + 24 * HOUR - 1).changed is False
    plan = plan_diff(old, news(overlap_hours=24), now_ms=1_000_000 + 24 * HOUR)
    assert plan.retires and plan.changed and plan.replaces == []
    # The window counts from the rotation with the window declared now: shorter retires sooner.
    assert plan_diff(old, news(overlap_hours=2), now_ms=1_000_000 + 2 * HOUR).retires
    assert plan_diff(old, news(), now_ms=1_000_001).retires  # no window any more: at the next run
    # Not known yet during a preview: the up decides.
    assert not plan_diff(old, {**news(), "overlap_hours": spec.UNKNOWN}, now_ms=10**12).retires


def test_a_rotation_inside_the_window_is_blocked_and_after_it_retires_first() -> None:
    old = {**stored(overlap_hours=24), "previous_api_key": "P" * 64, "created_at_ms": 1_000_000}
    plan = plan_diff(old, news(overlap_hours=24, keepers={"v": "2"}), now_ms=1_000_000 + HOUR)
    assert plan.blocked is not None and "1970-01-02 00:16 UTC" in plan.blocked
    plan = plan_diff(old, news(overlap_hours=24, keepers={"v": "2"}), now_ms=1_000_000 + 25 * HOUR)
    assert plan.blocked is None and plan.retires and plan.rotates == ["keepers"]


def test_an_overlap_window_is_checked_against_what_it_cannot_go_with() -> None:
    _, found = check_inputs({"api_name": "d", "ip_whitelist": ["192.0.2.1"], "overlap_hours": 24,
                             "delete_before_replace": True})
    assert [f.python() for f in found] == [
        "overlap_hours: keeps the old key for a window after a rotation, but deleteBeforeReplace"
        " deletes it first: choose one"]
    _, found = check_inputs({"api_name": "d", "ip_whitelist": ["192.0.2.1"], "overlap_hours": 48,
                             "rotate_after_days": 2})
    assert [f.python() for f in found] == [
        "overlap_hours: 48 hours is not shorter than rotateAfterDays (2 days): the next rotation"
        " would come before the previous key retires"]
    _, found = check_inputs({"api_name": "d", "ip_whitelist": ["192.0.2.1"], "overlap_hours": 721})
    assert [f.python() for f in found] == ["overlap_hours: 721 is outside 0 to 720 hours"]
    inputs, found = check_inputs({"api_name": "d", "ip_whitelist": ["192.0.2.1"], "overlap_hours": 0,
                                  "delete_before_replace": True})
    assert found == [] and inputs["overlap_hours"] == 0


def usable(address: Any) -> bool:
    """An address a trading server can call from (the others are refused, tested above)."""
    if getattr(address, "ipv4_mapped", None) is not None:
        return False  # normalized to its IPv4 form: tested above
    return not (address.is_unspecified or address.is_loopback or address.is_link_local
                or address.is_multicast or address.is_reserved or str(address) == "255.255.255.255")


ipv4 = st.ip_addresses(v=4).filter(usable)
ips = st.lists(st.one_of(ipv4, st.ip_addresses(v=6).filter(usable)), max_size=30)


@given(ips, st.randoms())
def test_ip_order_and_duplicates_never_show_as_a_diff(addresses: list[Any], rnd: Any) -> None:
    texts = [str(a) for a in addresses]
    shuffled = texts + texts[: len(texts) // 2]
    rnd.shuffle(shuffled)
    assert plan_diff(stored(ip_whitelist=texts), news(ip_whitelist=shuffled), now_ms=0).changes == []


@given(ips)
def test_normalized_ip_lists_are_sorted_unique_and_parse_back(addresses: list[Any]) -> None:
    normalized = values.normalize_ip_list([str(a) for a in addresses])
    assert len(normalized) == len(set(normalized))
    assert [ipaddress.ip_address(x) for x in normalized] == sorted(
        {ipaddress.ip_address(str(a)) for a in addresses}, key=lambda a: (a.version, a))
    assert values.normalize_ip_list(normalized) == normalized


@given(st.text(max_size=40))
def test_check_never_crashes_on_any_api_name(name: str) -> None:
    inputs, found = check_inputs({"api_name": name, "ip_whitelist": ["192.0.2.1"]})
    assert bool(found) != (inputs.get("api_name") == name)


def test_a_key_open_to_any_address_is_an_explicit_choice() -> None:
    inputs, found = check_inputs({"api_name": "d", "allow_any_ip": True})
    assert found == [] and inputs["ip_whitelist"] == [] and inputs["allow_any_ip"] is True
    assert "ip_whitelist" in failures(allow_any_ip=False)


def test_keepers_of_any_scalar_type_are_the_same_keeper() -> None:
    as_text, _ = check_inputs({"api_name": "d", "keepers": {"n": "7", "on": "true"}})
    as_scalars, found = check_inputs({"api_name": "d", "keepers": {"n": 7.0, "on": True}})
    assert found == [] or [f.property for f in found] == ["ip_whitelist"]
    assert as_text["keepers"] == as_scalars["keepers"] == {"n": "7", "on": "true"}


@given(st.dictionaries(st.sampled_from(spec.INPUT_FIELDS), st.one_of(
    st.none(), st.text(max_size=8), st.integers(), st.floats(allow_nan=True), st.lists(st.text(max_size=8)))))
def test_check_returns_failures_rather_than_raising(raw: dict[str, Any]) -> None:
    _, found = check_inputs(raw)
    assert all(f.property in (*spec.INPUT_FIELDS,) for f in found)


def test_a_refused_key_type_adds_no_second_guess_about_other_fields() -> None:
    found = failures(key_type="DSA", permission_mode="READ", rsa_bits=2048)
    assert list(found) == ["key_type"] or set(found) == {"key_type", "ip_whitelist"}
    assert "None" not in " ".join(found.values())


@pytest.mark.parametrize(("entry", "words"), [
    ("::", "allowAnyIp"), ("::ffff:0.0.0.0", "allowAnyIp"), ("127.0.0.1", "loopback"),
    ("::1", "loopback"), ("169.254.1.1", "link-local"), ("fe80::1", "link-local"),
    ("224.0.0.1", "multicast"), ("255.255.255.255", "broadcast"), ("240.0.0.1", "reserved"),
])
def test_addresses_no_trading_server_can_have_are_refused_with_the_reason(entry: str, words: str) -> None:
    assert words in failures(ip_whitelist=[entry])["ip_whitelist"]


def test_an_ipv4_mapped_address_is_the_ipv4_address() -> None:
    inputs, found = check_inputs({"api_name": "d", "ip_whitelist": ["::ffff:203.0.113.10"]})
    assert found == [] and inputs["ip_whitelist"] == ["203.0.113.10"]


def test_a_declaration_is_walked_once_per_process_and_its_checked_form_not_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    walks: list[Any] = []
    real = spec._check

    def counted(news: Any, merged_from: int) -> Any:
        walks.append(news)
        return real(news, merged_from)

    monkeypatch.setattr(spec, "_check", counted)
    declared = {"api_name": "once", "symbol": "btcusdt", "ip_whitelist": ["198.51.100.9", "198.51.100.8"]}
    checked, found = check_inputs(declared)
    assert found == [] and checked["symbol"] == "BTCUSDT"
    assert check_inputs(declared) == (checked, [])
    # The resource adds what it sets itself (the provider's fingerprint): still no second walk.
    assert check_inputs({**checked, "provider": "f00d"}) == ({**checked, "provider": "f00d"}, [])
    assert len(walks) == 1
