"""Processes a killed run leaves in the project: Pulumi's dynamic provider host (with the
provider's credentials loaded, listening on loopback) and language host. The runner ends them
after every run; only this user's, only this project's, only those whose engine is gone."""

from __future__ import annotations

import os
from pathlib import Path


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _has_engine_ancestor(pid: int) -> bool:
    """Whether a `pulumi` CLI process (the engine) is among the process's ancestors. Between
    them stands the launcher script `pulumi-resource-pulumi-python`, which outlives the engine."""
    for _ in range(8):
        pid = _parent(pid)
        if pid <= 1:
            return False
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if argv and Path(argv[0].decode(errors="replace")).name == "pulumi":
            return True
    return False


# Processes the engine starts that outlive it when a run is killed: Pulumi's dynamic provider host
# (no watchdog: it keeps listening on loopback with the provider's credentials loaded) and its
# launcher script, and the Python language host with the program it runs (Pulumi's Go host lingers
# for up to five minutes; the program's environment holds the stack's decrypted config).
LEFTOVER_MARKERS = (b"pulumi.dynamic", b"pulumi-language-python", b"language_host.py")


def end_leftover_plugins(project_dir: Path) -> int:
    """End the processes killed runs left in this project (LEFTOVER_MARKERS). Only this user's,
    only this project's (their working directory), only those whose engine is gone."""
    import signal

    ended = 0
    proc_root = Path("/proc")
    if not proc_root.exists():
        return 0
    for entry in proc_root.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if not any(m in arg for arg in argv[:5] for m in LEFTOVER_MARKERS):
                continue
            if os.readlink(entry / "cwd") != str(project_dir) or _has_engine_ancestor(pid):
                continue  # another project's, or a run in progress
            launcher = _parent(pid)
            launcher_argv = Path(f"/proc/{launcher}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        # Only these processes: their process group may be ours.
        for victim in (pid, launcher) if b"pulumi-resource-pulumi-python" in launcher_argv else (pid,):
            try:
                os.kill(victim, signal.SIGTERM)
            except OSError:
                continue
        ended += 1
    return ended
