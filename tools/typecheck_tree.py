"""Lays out the installed import tree (`margin_special_keys` and its subpackages) under
.tools/typecheck as symlinks to this repository's folders, from pyproject.toml's package-dir.

mypy names modules by their place in the file tree and cannot follow setuptools' package-dir
mapping (the editable install's import hook); on this tree it checks the code under the names
everything imports it by, without a second copy of any file.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / ".tools" / "typecheck"


def build(tree: Path = TREE) -> Path:
    mapping: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())[
        "tool"]["setuptools"]["package-dir"]
    if tree.exists():
        shutil.rmtree(tree)
    for package, folder in sorted(mapping.items(), key=lambda item: item[0].count(".")):
        target = tree.joinpath(*package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for entry in sorted((ROOT / folder).iterdir()):
            if entry.name == "__pycache__" or not (entry.suffix == ".py" or entry.is_dir()):
                continue
            if entry.is_dir() and f"{package}.{entry.name}" in mapping:
                continue  # mapped on its own
            (target / entry.name).symlink_to(entry)
    return tree


if __name__ == "__main__":
    print(build())
