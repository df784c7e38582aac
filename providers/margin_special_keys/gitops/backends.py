"""Where a project's state lives, and whether a run holds a stack's lock there.

Pulumi's DIY backends (`file://`, `postgres://`, `s3://`, `gs://`, `azblob://`) share one lock
scheme (pkg/backend/diy/lock.go, v3.274.1): a run that writes state puts one object per run under
`.pulumi/locks/<org>/<project>/<stack>/<uuid>.json` holding `{"pid", "username", "hostname",
"timestamp"}`, and deletes it when it ends; a killed run's object stays until `pulumi cancel`.
Nothing else marks a running update, and the CLI has no read-only "is this stack locked?" for
these backends (`pulumi stack ls` reports progress only for Pulumi Cloud). So the runner reads
the lock objects where the backend keeps them.

Where it has no reader (Pulumi Cloud, a scheme it does not know, a backend whose client library is
not installed) it raises `LocksUnreadable`: a caller that must not act on a locked stack refuses,
and never takes "cannot tell" for "unlocked".
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from ..errors import RunnerError

BOOKKEEPING = ".pulumi"
DEFAULT_POSTGRES_TABLE = "pulumi_state"  # pkg/backend/diy/postgres/bucket.go


class LocksUnreadable(RunnerError):
    """The runner cannot tell whether a run holds the stack's lock; the message says what to check."""


@dataclass(frozen=True)
class Lock:
    """One run's lock object, as Pulumi wrote it."""

    user: str
    host: str
    pid: int
    since: str  # the run's start, RFC 3339 as Pulumi wrote it

    def holder(self) -> str:
        return f"{self.user}@{self.host} (pid {self.pid}) since {self.since}"

    def process_is_gone(self) -> bool:
        """True only when the holder ran on this machine and its process no longer exists: then
        the lock is a killed run's leftover, which only `pulumi cancel` removes."""
        if self.host != socket.gethostname() or self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        # A killed process whose parent died too stays a zombie until PID 1 reaps it, which in a
        # container may be never: it answers signal 0, but it runs nothing.
        try:
            with open(f"/proc/{self.pid}/stat", encoding="ascii", errors="replace") as stat:
                return stat.read().rsplit(")", 1)[-1].split()[0] == "Z"
        except (OSError, IndexError):
            return False

    def describe(self, stack: str, can_wait: bool = True) -> str:
        """One line a person can act on. `can_wait`: the command takes --lock-timeout."""
        text = f"stack {stack!r} is locked by another run: {self.holder()}"
        if self.process_is_gone():
            return (text + f"; no process {self.pid} runs on this host, so it may be a killed run's"
                    f" lock: once you know no run of {stack!r} is going anywhere,"
                    f" `pulumi cancel --stack {stack} --yes` removes it")
        return text + ("; wait for it to end (or pass --lock-timeout SECONDS to wait here)" if can_wait
                       else "; wait for it to end; if it was killed, once you know no run of"
                       f" {stack!r} is going anywhere, `pulumi cancel --stack {stack} --yes` removes it")


def _lock_from(raw: bytes | str | None) -> Lock:
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    try:
        pid = int(data.get("pid") or 0)
    except (TypeError, ValueError):
        pid = 0
    # An unreadable lock object is still a lock: it is reported, never ignored.
    return Lock(str(data.get("username") or "?"), str(data.get("hostname") or "?"), pid,
                str(data.get("timestamp") or "an unknown time"))


def _is_lock_of(relative: str, project: str, stack: str) -> bool:
    """`relative`, a key below `.pulumi/locks/`, is a lock of this project's stack: the
    project-scoped layout `<org>/<project>/<stack>/<id>.json`, or the layout of backends made
    before projects (`<stack>/<id>.json`)."""
    parts = relative.split("/")
    if not parts[-1].endswith(".json"):
        return False
    return parts[:-1] == [stack] or (len(parts) == 4 and parts[1:3] == [project, stack])


SECRET_QUERY_PARAMETERS = ("password", "sslpassword", "sas", "sig", "token", "secret")


def redact(url: str) -> str:
    """The backend URL without its passwords (in the user info or the query), for messages."""
    parts = urlsplit(url)
    if parts.password is not None:
        netloc = f"{parts.username or ''}:****@{parts.hostname or ''}"
        if parts.port is not None:
            netloc += f":{parts.port}"
        parts = parts._replace(netloc=netloc)
    query = [(k, "****" if any(s in k.lower() for s in SECRET_QUERY_PARAMETERS) else v)
             for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


def checkpoint_names(project: str, stack: str) -> tuple[str, ...]:
    """Where a DIY backend keeps a stack's checkpoint, below `.pulumi/stacks/` (state.go: the
    project-scoped layout, then the one of backends made before projects; compressed or not)."""
    return tuple(f"{base}{suffix}" for base in (f"{project}/{stack}.json", f"{stack}.json")
                 for suffix in ("", ".gz", ".zst"))


class Backend:
    """A state backend the runner can read locks from."""

    url: str

    def locks(self, project: str, stack: str) -> list[Lock]:
        """The stack's lock objects. Raises LocksUnreadable where the reader does not find the
        stack's own checkpoint where it looks: a reader that looks in the wrong place (a wrong
        prefix, a wrong home) would otherwise see no lock and say "unlocked"."""
        raise NotImplementedError


@dataclass
class FileBackend(Backend):
    url: str
    root: Path

    def locks(self, project: str, stack: str) -> list[Lock]:
        stacks = self.root / BOOKKEEPING / "stacks"
        if not any((stacks / name).is_file() for name in checkpoint_names(project, stack)):
            raise LocksUnreadable(
                f"the runner finds no state of stack {stack!r} in {stacks}, so it cannot tell"
                " whether a run holds the stack there")
        base = self.root / BOOKKEEPING / "locks"
        found = []
        for path in sorted(base.glob("**/*.json")) if base.is_dir() else []:
            if _is_lock_of(path.relative_to(base).as_posix(), project, stack):
                try:
                    found.append(_lock_from(path.read_bytes()))
                except FileNotFoundError:
                    continue  # the run ended between the listing and the read
        return found

    def empty_checkpoint_attrs(self, stack: str) -> list[Path]:
        """0-byte `<stack>.json.attrs` files: a `kill -9` during a checkpoint write can leave
        one, and every command on the stack then fails with `failed to load checkpoint: EOF`."""
        return [p for p in (self.root / BOOKKEEPING / "stacks").glob(f"**/{stack}.json.attrs")
                if p.stat().st_size == 0]


@dataclass
class PostgresBackend(Backend):
    """`postgres://…?table=NAME`: one row per blob, `key TEXT, data JSON` where data is
    `{"data": <base64>}` (pkg/backend/diy/postgres/bucket.go); keys carry the URL's path as a
    prefix (`<db>/.pulumi/…`, blob.PrefixedBucket in backend.go)."""

    url: str

    def _target(self) -> tuple[str, list[str], str]:
        parts = urlsplit(self.url)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "table"]
        table = dict(parse_qsl(parts.query)).get("table") or DEFAULT_POSTGRES_TABLE
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?", table):
            raise LocksUnreadable(f"the backend's table name {table!r} is not one the runner reads")
        # Pulumi puts the name into its SQL unquoted, so PostgreSQL folds it to lower case; and
        # its blob prefix is the URL's decoded path (url.Parse's Path, backend.go).
        prefix = unquote(parts.path).strip("/")
        dsn = urlunsplit(parts._replace(query=urlencode(query)))
        return dsn, table.lower().split("."), (prefix + "/" if prefix else "")

    def locks(self, project: str, stack: str) -> list[Lock]:
        try:
            import psycopg
            from psycopg import sql
        except ImportError:
            raise LocksUnreadable(
                "reading a postgres:// backend's locks needs psycopg: install the package with"
                " its postgres extra (pip install 'margin-special-keys[postgres]')") from None
        dsn, table, prefix = self._target()
        lock_dir = f"{prefix}{BOOKKEEPING}/locks/"
        like = lock_dir.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        checkpoints = [f"{prefix}{BOOKKEEPING}/stacks/{name}" for name in checkpoint_names(project, stack)]
        locks = sql.SQL("SELECT key, data FROM {} WHERE key LIKE %s ORDER BY key").format(
            sql.Identifier(*table))
        state = sql.SQL("SELECT count(*) FROM {} WHERE key = ANY(%s)").format(sql.Identifier(*table))
        try:
            with psycopg.connect(dsn, connect_timeout=10, autocommit=True) as connection:
                exists = connection.execute("SELECT to_regclass(%s)", (".".join(table),)).fetchone()
                held = exists is not None and exists[0] is not None and \
                    (connection.execute(state, (checkpoints,)).fetchone() or (0,))[0] > 0
                rows = connection.execute(locks, (like,)).fetchall() if held else []
        except psycopg.Error as exc:
            raise LocksUnreadable(
                f"could not read the locks of {redact(self.url)}: {type(exc).__name__}") from None
        if not held:
            raise LocksUnreadable(
                f"the runner finds no state of stack {stack!r} in {redact(self.url)}, so it cannot"
                " tell whether a run holds the stack there")
        return [_lock_from(_blob(data)) for key, data in rows
                if _is_lock_of(str(key)[len(lock_dir):], project, stack)]


def _blob(data: Any) -> bytes:
    if isinstance(data, str):
        data = json.loads(data)
    encoded = data.get("data", "") if isinstance(data, dict) else ""
    try:
        return base64.b64decode(str(encoded))
    except ValueError:
        return b""


def _account_home() -> str:
    """The home directory Pulumi resolves `~` and its default PULUMI_HOME against: the user
    account's, from the password database, whatever $HOME says (a CI container sets its own)."""
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:  # a uid the password database lacks (a container's): as Go's user.Current
        return os.environ.get("HOME") or "/"


def resolve_url(project_dir: Path, environ: Mapping[str, str]) -> str | None:
    """The backend the CLI would use for this project: PULUMI_BACKEND_URL, else Pulumi.yaml's
    `backend.url`, else the login in PULUMI_HOME's credentials.json (the CLI's own order)."""
    if environ.get("PULUMI_BACKEND_URL"):
        return environ["PULUMI_BACKEND_URL"]
    project_file = project_dir / "Pulumi.yaml"
    if project_file.exists():
        import yaml

        settings = yaml.safe_load(project_file.read_text())
        backend = settings.get("backend") if isinstance(settings, dict) else None
        if isinstance(backend, dict) and backend.get("url"):
            return str(backend["url"])
    home = Path(environ.get("PULUMI_HOME") or Path(_account_home()) / ".pulumi")
    try:
        current = json.loads((home / "credentials.json").read_text()).get("current")
    except (OSError, ValueError, AttributeError):
        return None
    return str(current) if current else None


def open_backend(url: str | None, project_dir: Path) -> Backend:
    """The reader for `url`'s backend; LocksUnreadable where there is none."""
    if not url:
        raise LocksUnreadable(
            "no state backend is configured here (PULUMI_BACKEND_URL, Pulumi.yaml's backend.url"
            " or `pulumi login`), so the runner cannot read whether a run holds the stack's lock")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "file":
        path = url.removeprefix("file://").split("?", 1)[0]
        if path == "~" or path.startswith("~/"):  # as Pulumi does: the account's home, not $HOME
            path = _account_home() + path[1:]
        return FileBackend(url, (project_dir / path).resolve() if not os.path.isabs(path) else Path(path))
    if scheme == "postgres":
        return PostgresBackend(url)
    if scheme in ("s3", "gs", "azblob"):
        raise LocksUnreadable(
            f"the runner has no reader for {scheme}:// locks, so it cannot tell whether a run holds"
            f" the stack (its lock objects are under {redact(url)}/{BOOKKEEPING}/locks/); deleting"
            " keys needs a backend whose locks it reads (file://, postgres://)")
    raise LocksUnreadable(
        f"{redact(url)} is Pulumi Cloud or a backend the runner cannot read locks from, so it"
        " cannot tell whether a run holds the stack (the service's stack page shows an update in"
        " progress); deleting keys needs a backend whose locks it reads (file://, postgres://)")
