"""The CrossGuard policy pack's rules (margin_special_keys.policies), in process: each policy on
plain input dicts (a violation, none, values not known during a preview, the config schema's
defaults), then through pulumi_policy's own classes and its analyzer servicer, as the engine's
requests reach them. tests/e2e/test_policy_pack.py runs the pack on the real engine."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from typing import Any

import pytest
import yaml

from margin_special_keys import policies
from margin_special_keys.policies import RESOURCE_TYPE, UNKNOWN, PolicyConfigError
from tests.harness import ROOT

UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # pulumi.runtime.rpc.UNKNOWN


def violations(policy: str, props: dict[str, Any], config: dict[str, Any] | None = None,
               name: str = "desk-a", resource_type: str = RESOURCE_TYPE) -> list[str]:
    return policies.resource_violations(policies.BY_NAME[policy], resource_type, name, props, config)


def stack_violations(resources: list[tuple[str, dict[str, Any]]], config: dict[str, Any] | None = None,
                     resource_type: str = RESOURCE_TYPE) -> list[str]:
    return policies.stack_violations(policies.BY_NAME["max-keys-per-scope"],
                                     [(resource_type, name, props) for name, props in resources], config)


def key(**props: Any) -> dict[str, Any]:
    """A key's inputs as the provider's check hands them to the engine (normalized, defaults in)."""
    base: dict[str, Any] = {"api_name": "desk-a", "ip_whitelist": ["203.0.113.10"], "key_type": "ED25519",
                            "permission_mode": "TRADE", "__provider": "c2VjcmV0"}
    return {**base, **props}


NETWORKS = {"networks": ["203.0.113.0/24", "2001:db8:1::/48"]}
OUTSIDE = ('key "desk-a": ipWhitelist has 192.0.2.7, outside the allowed networks'
           " (203.0.113.0/24, 2001:db8:1::/48)")


# --- allowed-ip-networks ------------------------------------------------------------------------

def test_allowed_ip_networks_checks_nothing_until_networks_are_configured() -> None:
    assert violations("allowed-ip-networks", key(ip_whitelist=["192.0.2.7"])) == []
    assert violations("allowed-ip-networks", key(ip_whitelist=[], allow_any_ip=True)) == []


def test_allowed_ip_networks_names_the_key_the_field_and_each_address_outside() -> None:
    assert violations("allowed-ip-networks", key(ip_whitelist=["203.0.113.10", "2001:db8:1::7"]),
                      NETWORKS) == []
    assert violations("allowed-ip-networks",
                      key(ip_whitelist=["192.0.2.7", "203.0.113.10", "2001:db8:2::1"]), NETWORKS) == [
        'key "desk-a": ipWhitelist has 192.0.2.7, 2001:db8:2::1, outside the allowed networks'
        " (203.0.113.0/24, 2001:db8:1::/48)"]
    # An IPv4-mapped IPv6 address is its IPv4 address, as the exchange matches it.
    assert violations("allowed-ip-networks", key(ip_whitelist=["::ffff:203.0.113.9"]), NETWORKS) == []


def test_allowed_ip_networks_refuses_allow_any_ip_with_no_addresses() -> None:
    [message] = violations("allowed-ip-networks", key(ip_whitelist=[], allow_any_ip=True), NETWORKS)
    assert message.startswith('key "desk-a": allowAnyIp is true with no ipWhitelist')
    assert violations("allowed-ip-networks", {"api_name": "x", "allow_any_ip": True}, NETWORKS) != []
    # allowAnyIp beside addresses that are all inside: this policy is satisfied (no-allow-any-ip is not).
    assert violations("allowed-ip-networks", key(allow_any_ip=True), NETWORKS) == []


def test_allowed_ip_networks_checks_what_is_known_during_a_preview() -> None:
    assert violations("allowed-ip-networks", key(ip_whitelist=UNKNOWN_STRING), NETWORKS) == []
    assert violations("allowed-ip-networks", key(ip_whitelist=[UNKNOWN_STRING]), NETWORKS) == []
    assert violations("allowed-ip-networks", key(ip_whitelist=[], allow_any_ip=UNKNOWN_STRING),
                      NETWORKS) == []
    # A known address outside is a violation whatever else is not known yet.
    assert violations("allowed-ip-networks", key(ip_whitelist=[UNKNOWN_STRING, "192.0.2.7"]),
                      NETWORKS) == [OUTSIDE]


def test_allowed_ip_networks_never_shows_an_entry_that_is_not_an_address() -> None:
    pasted = "-----BEGIN PRIVATE KEY-----MC4CAQAwBQYDK2VwBCIEI"
    assert violations("allowed-ip-networks", key(ip_whitelist=[pasted, "203.0.113.10"]), NETWORKS) == [
        'key "desk-a": ipWhitelist has 1 entry that is not an IP address (not shown)']


@pytest.mark.parametrize("network", ["10.0.0.1/8", "10.0.0.0/33", "not-a-network", 7])
def test_allowed_ip_networks_refuses_a_config_it_cannot_read(network: Any) -> None:
    with pytest.raises(PolicyConfigError, match=r"allowed-ip-networks\.networks\[1\]"):
        violations("allowed-ip-networks", key(), {"networks": ["203.0.113.0/24", network]})


# --- allowed-key-types --------------------------------------------------------------------------

def test_allowed_key_types_by_default_flags_hmac_only() -> None:
    assert violations("allowed-key-types", key()) == []
    assert violations("allowed-key-types", {"api_name": "desk-a"}) == []  # ED25519 by default
    assert violations("allowed-key-types", key(key_type="RSA", rsa_bits=2048)) == []
    assert violations("allowed-key-types", key(key_type="HMAC")) == [
        'key "desk-a": keyType HMAC is not allowed here (allowed: ED25519, RSA)']


def test_allowed_key_types_follows_its_config() -> None:
    assert violations("allowed-key-types", key(key_type="RSA"), {"keyTypes": ["ED25519"]}) == [
        'key "desk-a": keyType RSA is not allowed here (allowed: ED25519)']
    assert violations("allowed-key-types", key(key_type="HMAC"), {"keyTypes": ["ED25519", "HMAC"]}) == []
    assert violations("allowed-key-types", key(key_type=UNKNOWN_STRING), {"keyTypes": ["ED25519"]}) == []
    assert violations("allowed-key-types", key(key_type="dsa secret"), {"keyTypes": ["ED25519"]}) == [
        'key "desk-a": keyType is not a key type (value not shown)']
    with pytest.raises(PolicyConfigError, match="keyTypes"):
        violations("allowed-key-types", key(), {"keyTypes": ["ECDSA"]})


# --- permission-mode-by-name --------------------------------------------------------------------

READERS = {"rules": [{"pattern": "*-reader", "mode": "READ"}]}


def test_permission_mode_by_name_matches_the_resource_name() -> None:
    assert violations("permission-mode-by-name", key(), READERS, name="desk-a") == []
    assert violations("permission-mode-by-name", key(permission_mode="READ"), READERS,
                      name="desk-reader") == []
    assert violations("permission-mode-by-name", key(), READERS, name="desk-reader") == [
        'key "desk-reader": permissionMode is TRADE; keys matching "*-reader" (here its name'
        ' "desk-reader") must be READ']
    # TRADE is the default of an Ed25519 key that does not say.
    assert violations("permission-mode-by-name", {"api_name": "x"}, READERS, name="desk-reader") != []
    # Case-sensitive, whatever the platform.
    assert violations("permission-mode-by-name", key(), READERS, name="desk-READER") == []


def test_permission_mode_by_name_matches_the_api_name_too() -> None:
    assert violations("permission-mode-by-name", key(api_name="desk a reader"),
                      {"rules": [{"pattern": "* reader", "mode": "READ"}]}, name="desk-a") == [
        'key "desk-a": permissionMode is TRADE; keys matching "* reader" (here its apiName'
        ' "desk a reader") must be READ']


def test_permission_mode_by_name_shows_no_api_name_the_check_would_refuse() -> None:
    [message] = violations("permission-mode-by-name", key(api_name=MARK * 20 + "-reader"), READERS)
    assert message.endswith('keys matching "*-reader" (here its apiName (not shown)) must be READ')
    assert MARK not in message


def test_permission_mode_by_name_the_first_matching_rule_decides() -> None:
    rules = {"rules": [{"pattern": "desk-a-*", "mode": "TRADE"}, {"pattern": "*", "mode": "READ"}]}
    assert violations("permission-mode-by-name", key(), rules, name="desk-a-btc") == []
    assert violations("permission-mode-by-name", key(), rules, name="desk-b-btc") != []
    assert violations("permission-mode-by-name", key(permission_mode="READ"), rules, name="desk-a-btc") != []


def test_permission_mode_by_name_rsa_and_hmac_keys_always_trade() -> None:
    assert violations("permission-mode-by-name", key(key_type="RSA", permission_mode=None), READERS,
                      name="desk-reader") == [
        'key "desk-reader": keyType RSA keys always trade (permissionMode is Ed25519 only); keys'
        ' matching "*-reader" (here its name "desk-reader") must be READ: use keyType ED25519 with'
        " permissionMode READ"]


def test_permission_mode_by_name_says_nothing_of_what_is_not_known() -> None:
    assert violations("permission-mode-by-name", key(permission_mode=UNKNOWN_STRING), READERS,
                      name="desk-reader") == []
    assert violations("permission-mode-by-name", key(key_type=UNKNOWN_STRING), READERS,
                      name="desk-reader") == []
    # Whether a rule applies through an apiName not known yet cannot be told...
    assert violations("permission-mode-by-name", key(api_name=UNKNOWN_STRING), READERS,
                      name="desk-a") == []
    # ...but a rule that matches the resource name still decides.
    assert violations("permission-mode-by-name", key(api_name=UNKNOWN_STRING), READERS,
                      name="desk-reader") != []
    assert violations("permission-mode-by-name", key(permission_mode="owner secret"), READERS,
                      name="desk-reader") == [
        'key "desk-reader": permissionMode is not TRADE or READ (value not shown); keys matching'
        ' "*-reader" (here its name "desk-reader") must be READ']


@pytest.mark.parametrize("rule", [{"pattern": "*"}, {"pattern": "", "mode": "READ"},
                                  {"pattern": "*", "mode": "ADMIN"},
                                  {"pattern": "*", "mode": "READ", "x": 1}])
def test_permission_mode_by_name_refuses_a_rule_it_cannot_read(rule: dict[str, Any]) -> None:
    with pytest.raises(PolicyConfigError, match=r"permission-mode-by-name\.rules\[0\]"):
        violations("permission-mode-by-name", key(), {"rules": [rule]})


# --- rotation -------------------------------------------------------------------------------------

def test_rotation_checks_nothing_by_default() -> None:
    assert violations("rotation", key()) == []
    assert violations("rotation", key(rotate_after_days=3650)) == []


def test_rotation_requires_rotate_after_days_when_configured() -> None:
    config = {"requireRotateAfterDays": True, "maxRotateAfterDays": 90}
    assert violations("rotation", key(), config) == [
        'key "desk-a": rotateAfterDays is not set; every key here needs one of at most 90 days']
    assert violations("rotation", key(), {"requireRotateAfterDays": True}) == [
        'key "desk-a": rotateAfterDays is not set; every key here needs one']
    assert violations("rotation", key(rotate_after_days=30), config) == []
    assert violations("rotation", key(rotate_after_days=UNKNOWN_STRING), config) == []


def test_rotation_bounds_rotate_after_days() -> None:
    # The engine hands numbers over as floats, in the key and in the config.
    assert violations("rotation", key(rotate_after_days=90.0), {"maxRotateAfterDays": 90.0}) == []
    assert violations("rotation", key(rotate_after_days=120), {"maxRotateAfterDays": 90}) == [
        'key "desk-a": rotateAfterDays is 120; at most 90 days allowed here']
    assert violations("rotation", key(rotate_after_days="ninety"), {"maxRotateAfterDays": 90}) == [
        'key "desk-a": rotateAfterDays is not a whole number of days (value not shown)']
    with pytest.raises(PolicyConfigError, match="maxRotateAfterDays"):
        violations("rotation", key(), {"maxRotateAfterDays": 0})
    with pytest.raises(PolicyConfigError, match="requireRotateAfterDays"):
        violations("rotation", key(), {"requireRotateAfterDays": "yes"})


# --- no-allow-any-ip ------------------------------------------------------------------------------

def test_no_allow_any_ip() -> None:
    assert violations("no-allow-any-ip", key()) == []
    assert violations("no-allow-any-ip", key(allow_any_ip=False)) == []
    assert violations("no-allow-any-ip", key(allow_any_ip=UNKNOWN_STRING)) == []
    assert violations("no-allow-any-ip", key(ip_whitelist=[], allow_any_ip=True)) == [
        'key "desk-a": allowAnyIp is true: a trading key with no IP restriction is not allowed here;'
        " list the addresses that use it in ipWhitelist"]


# --- max-keys-per-scope ---------------------------------------------------------------------------

def test_max_keys_per_scope_counts_each_scope_of_the_stack() -> None:
    keys = [("a", key()), ("b", key()), ("btc-1", key(symbol="BTCUSDT")), ("btc-2", key(symbol="btcusdt")),
            ("eth", key(symbol="ETHUSDT"))]
    assert stack_violations(keys) == []  # 30 by default
    assert stack_violations(keys, {"maxKeys": 2}) == []
    assert stack_violations(keys, {"maxKeys": 1.0}) == [
        'symbol absent (cross margin): 2 keys ("a", "b"); at most 1 per scope in one stack',
        'symbol BTCUSDT (isolated margin): 2 keys ("btc-1", "btc-2"); at most 1 per scope in one stack']


def test_max_keys_per_scope_counts_no_key_whose_symbol_is_not_known_and_no_other_resource() -> None:
    keys = [("a", key()), ("b", key(symbol=UNKNOWN_STRING))]
    assert stack_violations(keys, {"maxKeys": 1}) == []
    resources = [(RESOURCE_TYPE, "a", key()), ("pulumi-python:dynamic:Resource", "b", key()),
                 ("pulumi:pulumi:Stack", "stack", {})]
    assert policies.stack_violations(policies.BY_NAME["max-keys-per-scope"], resources,
                                     {"maxKeys": 1}) == []


# --- every policy ---------------------------------------------------------------------------------

def test_other_resources_are_never_checked() -> None:
    bad = key(ip_whitelist=["192.0.2.7"], allow_any_ip=True, key_type="HMAC")
    for spec in policies.POLICIES:
        if spec.check is not None:
            assert violations(spec.name, bad, NETWORKS if spec.name == "allowed-ip-networks" else None,
                              resource_type="pulumi-python:dynamic:Resource") == []
    assert violations("no-allow-any-ip", bad) != []


STRICT: dict[str, dict[str, Any]] = {
    "allowed-ip-networks": NETWORKS, "allowed-key-types": {"keyTypes": ["ED25519"]},
    "permission-mode-by-name": {"rules": [{"pattern": "*", "mode": "READ"}]},
    "rotation": {"maxRotateAfterDays": 1, "requireRotateAfterDays": True},
    "no-allow-any-ip": {}, "max-keys-per-scope": {"maxKeys": 1}}
MARK = "SENSITIVE-d2b1"


@pytest.mark.parametrize("raw", [False, True])
def test_messages_name_the_key_and_field_but_never_a_sensitive_value(raw: bool) -> None:
    """Every policy violated at once, by keys that carry a marker in every sensitive field and, as
    a check the provider refused would hand them over (raw), in every field it may show."""
    sensitive = {"public_key": MARK, "adopt_private_key": MARK, "adopt_secret_key": MARK,
                 "private_key": MARK, "secret_key": MARK, "adopt_api_key": MARK, "keepers": {"k": MARK}}
    shown = ({"ip_whitelist": [MARK], "key_type": MARK, "permission_mode": MARK, "rotate_after_days": MARK,
              "symbol": MARK} if raw else
             {"ip_whitelist": ["192.0.2.7"], "key_type": "HMAC", "rotate_after_days": 7})
    props = key(allow_any_ip=True, **sensitive, **shown)
    found = [m for spec in policies.POLICIES if spec.check is not None
             for m in violations(spec.name, props, STRICT[spec.name], name="desk-a")]
    found += stack_violations([("desk-a", props), ("desk-b", props)], STRICT["max-keys-per-scope"])
    assert len(found) >= (5 if raw else 6)  # raw: permission-mode-by-name leaves a bad keyType to the check
    assert all(MARK not in m for m in found), found
    assert all('"desk-a"' in m for m in found)
    for spelled in ("ipWhitelist", "keyType", "allowAnyIp", "rotateAfterDays", "symbol"):
        assert any(spelled in m for m in found), spelled


def test_properties_are_read_without_the_provider_and_unknowns_become_unknown() -> None:
    assert policies.key_properties({"__provider": "x", "__other": 1, "symbol": UNKNOWN_STRING,
                                    "ip_whitelist": ["1.2.3.4", UNKNOWN_STRING]}) == {
        "symbol": UNKNOWN, "ip_whitelist": ["1.2.3.4", UNKNOWN]}


def test_the_unknown_sentinels_are_pulumi_policys() -> None:
    from pulumi_policy import proxy

    assert policies.UNKNOWN_SENTINELS == {value for name, value in vars(proxy).items()
                                          if name.startswith("UNKNOWN_") and name.endswith("_VALUE")}
    from pulumi.runtime.rpc import UNKNOWN as PULUMI_UNKNOWN

    assert PULUMI_UNKNOWN == UNKNOWN_STRING in policies.UNKNOWN_SENTINELS


# --- config ---------------------------------------------------------------------------------------

def test_config_defaults_are_the_schemas_and_are_what_the_rules_run_on_without_config() -> None:
    assert {spec.name: spec.config(None) for spec in policies.POLICIES} == {
        "allowed-ip-networks": {"networks": []},
        "allowed-key-types": {"keyTypes": ["ED25519", "RSA"]},
        "permission-mode-by-name": {"rules": []},
        "rotation": {"requireRotateAfterDays": False},
        "no-allow-any-ip": {},
        "max-keys-per-scope": {"maxKeys": 30},
    }
    assert {spec.name: spec.enforcement for spec in policies.POLICIES} == {
        "allowed-ip-networks": "mandatory", "allowed-key-types": "advisory",
        "permission-mode-by-name": "mandatory", "rotation": "mandatory", "no-allow-any-ip": "mandatory",
        "max-keys-per-scope": "mandatory"}


def test_a_property_no_policy_has_is_refused_since_the_engine_passes_it_on_silently() -> None:
    with pytest.raises(PolicyConfigError, match="rotation: no property maxRotateAfterDay "):
        violations("rotation", key(), {"maxRotateAfterDay": 30})
    assert violations("rotation", key(), {"enforcementLevel": "mandatory"}) == []


def test_the_example_config_is_valid_and_typos_are_found() -> None:
    example = json.loads((ROOT / "policies" / "config.example.json").read_text())
    assert policies.check_config_file(example) == []
    assert set(example) == set(policies.BY_NAME)  # it shows every policy
    assert policies.check_config_file({"version": 2, "policies": example}) == []
    assert policies.check_config_file({
        "allowed-ip-network": {"networks": ["10.0.0.0/8"]},
        "rotation": {"maxRotateAfterDay": 30},
        "no-allow-any-ip": "mandatoy",
        "allowed-key-types": {"enforcementLevel": "strict"},
        "all": {"enforcementLevel": "advisory", "networks": []},
        "max-keys-per-scope": 3,
    }) == [
        "allowed-ip-network: no such policy (policies: all, allowed-ip-networks, allowed-key-types,"
        " permission-mode-by-name, rotation, no-allow-any-ip, max-keys-per-scope)",
        "rotation: no property maxRotateAfterDay (its properties: maxRotateAfterDays,"
        " requireRotateAfterDays)",
        'no-allow-any-ip: "mandatoy" is not one of advisory, mandatory, remediate, disabled',
        'allowed-key-types.enforcementLevel: "strict" is not one of advisory, mandatory, remediate, disabled',
        "all: only enforcementLevel applies to every policy, not networks",
        "max-keys-per-scope: must be an enforcement level or an object",
    ]


def test_check_config_command(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "prod.json", tmp_path / "dev.json"
    good.write_text((ROOT / "policies" / "config.example.json").read_text())
    bad.write_text('{"allowed-ip-networks": {"networks": ["10.0.0.1/8"]}}')
    assert policies.main(["check-config", str(good)]) == 0
    assert policies.main(["check-config", str(good), str(bad)]) == 1
    assert f'{bad}: allowed-ip-networks.networks[0]: "10.0.0.1/8" is not a network' in capsys.readouterr().err
    assert policies.main([]) == 2


# --- through pulumi_policy ------------------------------------------------------------------------

def test_the_pack_s_policies_as_pulumi_policy_builds_them() -> None:
    from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

    built = {p.name: p for p in policies.policies()}
    assert list(built) == [spec.name for spec in policies.POLICIES]
    assert isinstance(built["max-keys-per-scope"], StackValidationPolicy)
    assert all(isinstance(p, ResourceValidationPolicy) for n, p in built.items() if n != "max-keys-per-scope")
    assert built["allowed-key-types"].enforcement_level == EnforcementLevel.ADVISORY
    assert built["no-allow-any-ip"].enforcement_level == EnforcementLevel.MANDATORY
    schema = built["rotation"].config_schema
    assert schema is not None and set(schema.properties) == {"maxRotateAfterDays", "requireRotateAfterDays"}


def proxied(props: dict[str, Any]) -> Any:
    """Properties as pulumi_policy hands them to a policy: deserialized, behind its proxy that
    raises on reading a value not known during a preview."""
    from pulumi_policy.deserialize import deserialize_properties
    from pulumi_policy.proxy import unknown_checking_proxy

    return unknown_checking_proxy(deserialize_properties(props))


def options() -> Any:
    from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions

    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def run_resource_policy(name: str, props: dict[str, Any], config: dict[str, Any] | None = None,
                        resource_name: str = "desk-a") -> list[tuple[str, str | None]]:
    from pulumi_policy import ResourceValidationArgs

    [policy] = [p for p in policies.policies() if p.name == name]
    reported: list[tuple[str, str | None]] = []
    opts = options()
    urn = f"urn:pulumi:s::p::{RESOURCE_TYPE}::{resource_name}"
    args = ResourceValidationArgs(RESOURCE_TYPE, proxied(props), urn, resource_name, opts, None, config)
    policy.validate(args, lambda message, urn=None: reported.append((message, urn)))  # type: ignore[attr-defined]
    return reported


def test_a_resource_policy_reads_pulumi_policys_proxies_and_reads_no_unknown() -> None:
    assert run_resource_policy("allowed-ip-networks", key(ip_whitelist=[UNKNOWN_STRING]), NETWORKS) == []
    assert run_resource_policy("allowed-ip-networks", key(ip_whitelist=[UNKNOWN_STRING, "192.0.2.7"]),
                               NETWORKS) == [(OUTSIDE, None)]
    assert run_resource_policy("no-allow-any-ip", key(allow_any_ip=UNKNOWN_STRING)) == []
    assert run_resource_policy("rotation", key(rotate_after_days=UNKNOWN_STRING),
                               {"requireRotateAfterDays": True}) == []
    # The secret signature around a value: pulumi_policy unwraps it (and the rules never show one).
    secret = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": MARK}
    assert run_resource_policy("permission-mode-by-name", key(public_key=secret, adopt_private_key=secret),
                               READERS, resource_name="desk-reader") == [
        ('key "desk-reader": permissionMode is TRADE; keys matching "*-reader" (here its name'
         ' "desk-reader") must be READ', None)]


def test_the_stack_policy_reads_pulumi_policys_resources() -> None:
    from pulumi_policy import PolicyResource, StackValidationArgs

    [policy] = [p for p in policies.policies() if p.name == "max-keys-per-scope"]
    opts = options()
    resources = [PolicyResource(RESOURCE_TYPE, proxied(props), f"urn:{name}", name, opts, None, None, [], {})
                 for name, props in [("a", key()), ("b", key()), ("c", key(symbol=UNKNOWN_STRING))]]
    reported: list[tuple[str, str | None]] = []
    policy.validate(StackValidationArgs(resources, {"maxKeys": 1.0}),  # type: ignore[attr-defined]
                    lambda message, urn=None: reported.append((message, urn)))
    assert reported == [('symbol absent (cross margin): 2 keys ("a", "b"); at most 1 per scope in one stack',
                         None)]


def analyzer(config: dict[str, Any]) -> Any:
    """pulumi_policy's analyzer servicer (what `PolicyPack` serves over gRPC), configured as the
    engine configures it (every policy: its enforcement level, its schema's defaults under what
    was given); called in process with the engine's request messages."""
    from google.protobuf import struct_pb2
    from pulumi.runtime.proto import analyzer_pb2
    from pulumi_policy import EnforcementLevel
    from pulumi_policy.policy import _PolicyAnalyzerServicer

    servicer = _PolicyAnalyzerServicer(policies.PACK_NAME, "0.2.0", policies.policies(),
                                       EnforcementLevel.ADVISORY, None, policies.PACK_DESCRIPTION,
                                       None, None, None, None, None)
    request = analyzer_pb2.ConfigureAnalyzerRequest()
    for spec in policies.POLICIES:
        struct = struct_pb2.Struct()
        struct.update(spec.config(config.get(spec.name)))
        level = analyzer_pb2.EnforcementLevel.Value(spec.enforcement.upper())
        request.policyConfig[spec.name].CopyFrom(analyzer_pb2.PolicyConfig(enforcementLevel=level,
                                                                             properties=struct))
    servicer.Configure(request, None)
    return servicer


def analyze(servicer: Any, props: dict[str, Any], name: str = "desk-a") -> list[Any]:
    from google.protobuf import struct_pb2
    from pulumi.runtime.proto import analyzer_pb2

    struct = struct_pb2.Struct()
    struct.update(props)
    urn = f"urn:pulumi:test::p::{RESOURCE_TYPE}::{name}"
    response = servicer.Analyze(analyzer_pb2.AnalyzeRequest(type=RESOURCE_TYPE, properties=struct,
                                                            urn=urn, name=name), None)
    return list(response.diagnostics)


def test_through_the_analyzer_an_unknown_value_gives_no_diagnostic_at_all() -> None:
    """Not even pulumi_policy's advisory "can't run policy ... during preview", which a policy that
    read an unknown through the proxy would give."""
    from pulumi.runtime.proto import analyzer_pb2

    servicer = analyzer({"allowed-ip-networks": NETWORKS, "rotation": {"requireRotateAfterDays": True},
                         "permission-mode-by-name": READERS})
    assert analyze(servicer, key(ip_whitelist=[UNKNOWN_STRING], allow_any_ip=UNKNOWN_STRING,
                                 rotate_after_days=UNKNOWN_STRING, permission_mode=UNKNOWN_STRING,
                                 key_type="ED25519"), name="desk-reader") == []
    [diagnostic] = analyze(servicer, key(ip_whitelist=["192.0.2.7"], rotate_after_days=7))
    assert (diagnostic.policyName, diagnostic.policyPackName, diagnostic.enforcementLevel) == (
        "allowed-ip-networks", "margin-special-keys", analyzer_pb2.MANDATORY)
    assert diagnostic.message == (
        "Every address in a margin special key's ipWhitelist is inside one of the firm's networks.\n"
        + OUTSIDE)


# --- the pack's files -----------------------------------------------------------------------------

def test_the_pack_runs_this_package_at_its_version_with_pinned_requirements() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    pack = yaml.safe_load((ROOT / "policies" / "PulumiPolicy.yaml").read_text())
    assert pack["version"] == version
    assert pack["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": "../.venv"}}
    requirements = [line for line in (ROOT / "policies" / "requirements.txt").read_text().splitlines()
                    if line and not line.startswith("#")]
    dev_lock = (ROOT / "requirements-dev.lock").read_text()
    [policy_sdk] = [r for r in requirements if r.startswith("pulumi-policy==")]
    assert f"\n{policy_sdk} \\" in dev_lock
    assert f"margin-special-keys=={version}" in requirements
    main = (ROOT / "policies" / "__main__.py").read_text()
    assert "PolicyPack(PACK_NAME, policies()" in main


def test_the_package_imports_the_rules_without_pulumi_policy_or_pulumis_sdk() -> None:
    program = ("import json, sys\n"
               "sys.modules['pulumi_policy'] = None  # not installed\n"
               "from margin_special_keys import policies as p\n"
               "found = p.resource_violations(p.BY_NAME['no-allow-any-ip'], p.RESOURCE_TYPE, 'k',"
               " {'allow_any_ip': True})\n"
               "print(json.dumps([len(found), sorted(m for m in ('pulumi', 'grpc') if m in sys.modules)]))\n")
    run = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert json.loads(run.stdout) == [1, []]


def test_the_docs_table_is_current() -> None:
    assert policies.markdown_table() in (ROOT / "docs" / "policy-pack.md").read_text()
