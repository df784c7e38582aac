"""A stack's keys in config: exact paths in every error, defaults merged."""

from __future__ import annotations

from typing import Any

import pytest

from margin_special_keys.stack_config import StackConfigError, parse_keys


def problems(keys: Any, default_ips: Any = None) -> list[str]:
    with pytest.raises(StackConfigError) as raised:
        parse_keys(keys, default_ips)
    return raised.value.problems


def test_parses_keys_with_defaults_merged() -> None:
    declared = parse_keys(
        [{"name": "a", "ipWhitelist": ["10.0.0.2"]}, {"name": "b", "apiName": "Desk B", "keyType": "HMAC",
                                                      "deleteBeforeReplace": True}],
        ["10.0.0.1"])
    # Checked once, and the checked declaration is what the resource takes: normalized, defaults in.
    assert [(d.name, d.args) for d in declared] == [
        ("a", {"api_name": "a", "key_type": "ED25519", "ip_whitelist": ["10.0.0.1", "10.0.0.2"],
               "permission_mode": "TRADE"}),
        ("b", {"api_name": "Desk B", "key_type": "HMAC", "ip_whitelist": ["10.0.0.1"]}),
    ]
    assert declared[1].options == {"delete_before_replace": True}


def test_the_exact_path_of_a_range() -> None:
    keys = [{"name": "a", "allowAnyIp": True}, {"name": "b", "ipWhitelist": ["192.0.2.1"]},
            {"name": "c", "ipWhitelist": ["10.0.0.0/8"]}]
    assert problems(keys) == ['keys[2].ipWhitelist[0]: "10.0.0.0/8" is a range; list addresses']


@pytest.mark.parametrize(("keys", "expected"), [
    ("a", "keys: must be a list"),
    (["a"], "keys[0]: must be a map"),
    ([{"name": "a"}, {"name": "a"}], "keys[1].name: 'a' is already the name of keys[0]"),
    ([{"name": "bad name"}], "keys[0].name: 'bad name' is not a name"),
    ([{}], "keys[0].name: None is not a name"),
    ([{"name": "a", "colour": "red"}], "keys[0].colour: unknown field"),
    ([{"name": "a", "keyType": "DSA"}], "keys[0].keyType: 'DSA' is not one of"),
    ([{"name": "a", "symbol": "BTC/USDT"}], "keys[0].symbol:"),
    ([{"name": "a", "ipWhitelist": "10.0.0.1"}], "keys[0].ipWhitelist: must be a list"),
    ([{"name": "a", "keyType": "HMAC", "permissionMode": "READ"}], "keys[0].permissionMode: applies to"),
    ([{"name": "a", "protect": "yes"}], "keys[0].protect: must be true or false"),
    ([{"name": "a", "rotateAfterDays": -1}], "keys[0].rotateAfterDays:"),
])
def test_malformed_config_names_the_path(keys: Any, expected: str) -> None:
    found = problems(keys)
    assert any(p.startswith(expected) for p in found), found


def test_bad_default_whitelist_names_its_path() -> None:
    assert problems([{"name": "a"}], ["nope"])[0].startswith('defaultIpWhitelist[0]: "nope"')


def test_no_keys_is_an_empty_stack() -> None:
    assert parse_keys(None) == []


def test_paths_are_structured_and_rendered_with_config_names() -> None:
    keys: list[dict[str, Any]] = [{"name": f"k{i}", "ipWhitelist": ["192.0.2.1"]} for i in range(6)]
    keys.append({"name": "k6", "ipWhitelist": ["192.0.2.1"], "keepers": {"round": ["x"]}})
    assert problems(keys) == ["keys[6].keepers.round: must be a string, a number or true/false"]


def test_an_unknown_field_suggests_the_likely_one() -> None:
    [problem] = problems([{"name": "a", "ipWhitelist": ["192.0.2.1"], "ipWhiteList": ["192.0.2.2"]}])
    assert problem.startswith("keys[0].ipWhiteList: unknown field; did you mean ipWhitelist?")


def test_the_docs_field_table_is_the_field_table() -> None:
    from pathlib import Path

    from margin_special_keys.fields import markdown_table

    docs = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    between = docs.split("<!-- fields:start -->\n", 1)[1].split("<!-- fields:end -->", 1)[0]
    assert between == markdown_table(), \
        "run `python -m margin_special_keys.fields` and paste it into docs/configuration.md"
