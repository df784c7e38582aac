"""The output the docs show (docs/captured/, written by `python -m tools.capture`) is what the
engine prints now: the same scenario, run again, has the same structure once the parts that change
from run to run are normalized (tools/capture.py `structure`)."""

from __future__ import annotations

from pathlib import Path

from tools import capture


def test_the_captured_output_the_docs_show_is_what_the_engine_prints_now(
        tmp_path: Path, pulumi_home: Path) -> None:
    fresh = capture.run_scenario(tmp_path, pulumi_home)
    assert sorted(fresh) == sorted(capture.FILES)
    for name in capture.FILES:
        committed = (capture.CAPTURED / name).read_text()
        assert capture.normalize(committed) == committed, f"docs/captured/{name} is not normalized"
        assert capture.structure(name, fresh[name]) == capture.structure(name, committed), (
            f"docs/captured/{name} is stale: run `.venv/bin/python -m tools.capture` and commit it")
