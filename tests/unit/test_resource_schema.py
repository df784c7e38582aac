"""The resource is the field table: its keyword arguments are the table's keywords, its output
annotations every field but the adoption ones, with the table's types."""

from __future__ import annotations

import inspect

from margin_special_keys import fields
from margin_special_keys.resource import MarginSpecialKey


def test_the_keyword_arguments_are_the_tables_keywords() -> None:
    parameters = inspect.signature(MarginSpecialKey.__init__).parameters
    keywords = [p for p in parameters if p not in ("self", "resource_name", "opts")]
    assert keywords == list(fields.KEYWORDS)
    required = [p for p in keywords if parameters[p].default is inspect.Parameter.empty]
    assert required == ["api_name"]
    for name in keywords:
        annotation = str(parameters[name].annotation)
        assert annotation.startswith("pulumi.Input["), (name, annotation)


def test_the_output_annotations_are_the_tables_fields_with_their_types() -> None:
    annotations = {k: v for k, v in MarginSpecialKey.__annotations__.items() if not k.startswith("_")}
    expected = {f.name: f"pulumi.Output[{f.type}]" for f in fields.FIELDS if f.role != "adopt"}
    assert annotations == expected


def test_every_field_declares_what_the_schema_needs() -> None:
    for f in fields.FIELDS:
        assert f.type and f.doc, f.name
        if f.role in ("identity", "update", "state") and f.name != "public_key":
            assert f.check is not None, f.name  # the walk validates it (public_key: its rule)
        if f.applies_to is not None and f.default is not None:
            assert f.name in ("rsa_bits", "permission_mode"), f.name
        if f.sensitive and f.role != "output":
            assert f.name in fields.SENSITIVE_INPUTS
