"""A throw-away PostgreSQL server for the team scenarios: Pulumi's `postgres://` state backend.

Debian's server binaries (`tools/setup-system.sh` installs the `postgresql` package where it is
missing), a cluster in a temporary folder, on a free loopback port, with trust authentication
(a test cluster only: it listens on 127.0.0.1 and its folder is its owner's alone). `initdb`
refuses to run as root, so as root the server runs as the `postgres` user Debian's package makes
(or `nobody`). Durability is off: a crash loses nothing a test needs.

Each test takes a table of its own (`?table=`), so tests share one server and never each other's
state.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

SERVER_SETTINGS = ("-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
                   " -c full_page_writes=off -c max_connections=300")


def binaries() -> Path:
    """Debian's versioned folder of server binaries (the newest), or pg_config's."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if found:
        return found[-1].parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        return Path(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                   check=True).stdout.strip())
    raise RuntimeError("no PostgreSQL server binaries: run `bash tools/setup-system.sh`"
                       " (it installs Debian's postgresql package)")


def _server_user() -> pwd.struct_passwd | None:
    """Who runs the server: this user, unless this is root (initdb refuses root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root, and neither a `postgres` nor a `nobody` user exists to"
                       " run PostgreSQL as")


class PostgresServer:
    """One running cluster in `folder` (made if missing, left to the caller to remove)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = 0

    def _run(self, *args: str) -> None:
        user = _server_user()
        done = subprocess.run(list(args), capture_output=True, text=True, timeout=120,
                              user=user.pw_uid if user else None, group=user.pw_gid if user else None,
                              extra_groups=[] if user else None, cwd="/")
        if done.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr.strip()}")

    def start(self) -> PostgresServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        user = _server_user()
        if user is not None:
            # The server's user must reach its folder: the parent lets others pass, not list.
            os.chmod(self.folder.parent, os.stat(self.folder.parent).st_mode | 0o111)  # noqa: S103
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        os.chmod(self.folder, 0o700)
        bindir = binaries()
        if not (self.data / "PG_VERSION").exists():
            self._run(str(bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                      "--auth=trust", "--no-sync", "-E", "UTF8", "--no-instructions")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._run(str(bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "server.log"),
                  "-w", "-t", "60", "-o", f"{SERVER_SETTINGS} -p {self.port} -k {self.folder}",
                  "start")
        (self.folder / "port").write_text(f"{self.port}\n")
        return self

    def running(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    @classmethod
    def attach(cls, folder: Path) -> PostgresServer | None:
        """The server another process started in `folder`, if it still runs."""
        server = cls(folder)
        try:
            server.port = int((folder / "port").read_text())
        except (OSError, ValueError):
            return None
        return server if server.running() else None

    def url(self, table: str) -> str:
        """Pulumi's backend URL for a table of this server (`postgres://`, not `postgresql://`,
        which `pulumi login` does not accept)."""
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres?sslmode=disable&table={table}"

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self._run(str(binaries() / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                          "stop")
            except RuntimeError:
                pass  # already gone
        deadline = time.monotonic() + 10
        while self.port and self.running() and time.monotonic() < deadline:
            time.sleep(0.1)
