"""CONTRIBUTING.md's Layout says what the tree holds: every path it names exists, and every module and
folder of the package is named."""

from __future__ import annotations

import re

from tests.harness import ROOT


def named_paths() -> set[str]:
    block = (ROOT / "CONTRIBUTING.md").read_text().split("<!-- layout:start -->", 1)[1].split(
        "<!-- layout:end -->", 1)[0]
    paths: set[str] = set()
    stack: list[tuple[int, str]] = []  # (indent, folder)
    for line in block.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        names = line.strip().split("  ", 1)[0]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        prefix = "".join(folder for _, folder in stack)
        for name in re.split(r",\s*", names):
            paths.add(prefix + name)
        if names.endswith("/") and "," not in names:
            stack.append((indent, names))
    return paths


def test_every_path_the_layout_names_exists_and_every_package_module_is_named() -> None:
    named = named_paths()
    assert [p for p in named if not (ROOT / p).exists()] == []
    package = ROOT / "providers" / "margin_special_keys"
    modules = {f"providers/margin_special_keys/{p.name}" + ("/" if p.is_dir() else "")
               for p in package.iterdir() if p.name not in ("__init__.py", "__pycache__")}
    assert sorted(modules - named) == []
