"""`make clean` never deletes a state folder that holds a real stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import clean


def stack(root: Path, project: str, name: str) -> None:
    path = root / ".state" / ".pulumi" / "stacks" / project / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")
    path.with_name(f"{name}.json.attrs").write_text("{}")


def test_the_demos_state_goes_and_a_real_stacks_stays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(clean, "ROOT", tmp_path)
    (tmp_path / ".sandbox").mkdir()
    stack(tmp_path, "margin-special-keys", "sandbox-demo")
    assert clean.main() == 0 and not (tmp_path / ".state").exists() and not (tmp_path / ".sandbox").exists()
    stack(tmp_path, "margin-special-keys", "sandbox-demo")
    stack(tmp_path, "desk-infra", "desk-a")
    assert clean.main() == 1
    assert (tmp_path / ".state" / ".pulumi" / "stacks" / "desk-infra" / "desk-a.json").exists()
    said = capsys.readouterr().err
    assert "desk-a" in said and "pulumi stack export --stack S" in said
