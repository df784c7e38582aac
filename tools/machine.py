"""One line that says which machine a figure was measured on."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def describe_machine() -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    cpu = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")),
               platform.processor())
    engine = subprocess.run([str(ROOT / ".tools" / "bin" / "pulumi"), "version"], capture_output=True,
                            text=True, check=False).stdout.strip()
    return {"cores": str(os.cpu_count()), "cpu": cpu, "python": platform.python_version(),
            "pulumi": engine, "os": f"{platform.system()} {platform.release()}"}


def machine_line() -> str:
    m = describe_machine()
    return f"{m['cores']} cores ({m['cpu']}), Python {m['python']}, Pulumi CLI {m['pulumi']}, {m['os']}"
