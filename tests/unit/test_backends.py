"""Reading a stack's lock where the stack lives (gitops/backends.py), never assuming "unlocked"."""

from __future__ import annotations

import base64
import json
import os
import socket
from pathlib import Path

import pytest

from devtools.postgres import PostgresServer
from margin_special_keys.gitops.backends import (
    FileBackend,
    LocksUnreadable,
    open_backend,
    redact,
    resolve_url,
)

LOCK = {"pid": 4242, "username": "ci", "hostname": "runner-7", "timestamp": "2026-12-02T10:00:00Z"}


def write_lock(root: Path, relative: str, content: dict[str, object] = LOCK) -> None:
    path = root / ".pulumi" / "locks" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))


def write_checkpoints(root: Path, project: str, *stacks: str) -> None:
    """Where Pulumi's file backend keeps each stack's state: `.pulumi/stacks/<project>/<stack>.json`."""
    for stack in stacks:
        path = root / ".pulumi" / "stacks" / project / f"{stack}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")


def test_a_file_backend_lock_names_its_holder_and_only_that_stack(tmp_path: Path) -> None:
    backend = open_backend(f"file://{tmp_path}", tmp_path)
    assert isinstance(backend, FileBackend)
    with pytest.raises(LocksUnreadable, match="finds no state of stack 'a'"):
        backend.locks("desk", "a")  # looking in the wrong place never reads as "unlocked"
    write_checkpoints(tmp_path, "desk", "a", "ab", "b")
    assert backend.locks("desk", "a") == []
    write_lock(tmp_path, "organization/desk/a/0b1c.json")
    write_lock(tmp_path, "organization/other-project/a/9f.json")  # same stack name, other project
    write_lock(tmp_path, "organization/desk/ab/77.json")
    [lock] = backend.locks("desk", "a")
    assert lock.holder() == "ci@runner-7 (pid 4242) since 2026-12-02T10:00:00Z"
    assert [len(backend.locks("desk", s)) for s in ("ab", "b")] == [1, 0]


def test_a_lock_object_that_cannot_be_read_still_locks(tmp_path: Path) -> None:
    (tmp_path / ".pulumi/locks/organization/desk/a").mkdir(parents=True)
    (tmp_path / ".pulumi/locks/organization/desk/a/x.json").write_text("{not json")
    write_checkpoints(tmp_path, "desk", "a")
    backend = open_backend(f"file://{tmp_path}", tmp_path)
    assert [lock.user for lock in backend.locks("desk", "a")] == ["?"]


def test_a_killed_run_on_this_machine_is_told_apart_from_a_running_one(tmp_path: Path) -> None:
    backend = open_backend(f"file://{tmp_path}", tmp_path)
    write_checkpoints(tmp_path, "desk", "a", "b")
    write_lock(tmp_path, "organization/desk/a/1.json",
               {**LOCK, "hostname": socket.gethostname(), "pid": os.getpid()})
    write_lock(tmp_path, "organization/desk/b/1.json",
               {**LOCK, "hostname": socket.gethostname(), "pid": 2**22 + 12345})
    assert "wait for it to end" in backend.locks("desk", "a")[0].describe("a")
    gone = backend.locks("desk", "b")[0].describe("b")
    assert "may be a killed run's lock" in gone and "`pulumi cancel --stack b --yes`" in gone


def test_a_killed_run_whose_process_is_a_zombie_is_a_killed_run(tmp_path: Path) -> None:
    """A killed engine whose parent died too is a zombie until PID 1 reaps it (in a container,
    maybe never): it answers signal 0 but runs nothing."""
    import subprocess
    import time

    backend = open_backend(f"file://{tmp_path}", tmp_path)
    write_checkpoints(tmp_path, "desk", "a")
    child = subprocess.Popen(["true"])  # exits at once; not reaped until wait()
    try:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        write_lock(tmp_path, "organization/desk/a/1.json",
                   {**LOCK, "hostname": socket.gethostname(), "pid": child.pid})
        assert "may be a killed run's lock" in backend.locks("desk", "a")[0].describe("a")
    finally:
        child.wait()


@pytest.mark.parametrize("url", ["s3://firm-state", "gs://firm-state", "azblob://firm-state",
                                 "https://api.pulumi.com", None])
def test_a_backend_without_a_reader_is_never_taken_for_unlocked(url: str | None, tmp_path: Path) -> None:
    with pytest.raises(LocksUnreadable):
        open_backend(url, tmp_path)


def test_the_backend_url_is_found_as_the_cli_finds_it_and_never_shown_with_its_password(
        tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "credentials.json").write_text(json.dumps({"current": "postgres://u:pw@db:5432/state"}))
    (tmp_path / "Pulumi.yaml").write_text("name: desk\nruntime: python\n")
    assert resolve_url(tmp_path, {"PULUMI_HOME": str(home)}) == "postgres://u:pw@db:5432/state"
    (tmp_path / "Pulumi.yaml").write_text("name: desk\nruntime: python\nbackend:\n  url: file://~/s\n")
    assert resolve_url(tmp_path, {"PULUMI_HOME": str(home)}) == "file://~/s"
    assert resolve_url(tmp_path, {"PULUMI_BACKEND_URL": "s3://b", "PULUMI_HOME": str(home)}) == "s3://b"
    assert redact("postgres://u:pw@db:5432/state?table=t") == "postgres://u:****@db:5432/state?table=t"
    assert redact("postgres://u@db/state?password=Hunter2&table=t") == (
        "postgres://u@db/state?password=****&table=t")


def test_a_home_relative_file_backend_is_the_accounts_home_as_pulumi_reads_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pwd

    monkeypatch.setenv("HOME", str(tmp_path))  # a CI container's own HOME: Pulumi ignores it
    backend = open_backend("file://~/state", tmp_path)
    assert isinstance(backend, FileBackend)
    assert backend.root == Path(pwd.getpwuid(os.getuid()).pw_dir) / "state"


def test_a_postgres_backend_lock_is_read_from_its_table(postgres: PostgresServer) -> None:
    """Rows as Pulumi's postgres bucket writes them: the URL's path as the key's prefix, the
    blob base64 in a JSON document."""
    import psycopg

    url = postgres.url("Locks_Read_Here")  # Pulumi's SQL names it unquoted: PostgreSQL folds it
    backend = open_backend(url, Path("/"))
    with pytest.raises(LocksUnreadable, match="finds no state"):
        backend.locks("desk", "a")  # no table yet: no state there, so no word on its locks
    with psycopg.connect(url.split("?")[0], autocommit=True) as db:
        db.execute("CREATE TABLE locks_read_here (key TEXT PRIMARY KEY, data JSON NOT NULL,"
                   " updated_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        for key in ("postgres/.pulumi/locks/organization/desk/a/5e.json",
                    "postgres/.pulumi/locks/organization/desk/b/6f.json",
                    "other/.pulumi/locks/organization/desk/a/7a.json",
                    "postgres/.pulumi/stacks/desk/a.json", "postgres/.pulumi/stacks/desk/c.json"):
            blob = base64.b64encode(json.dumps(LOCK).encode()).decode()
            db.execute("INSERT INTO locks_read_here (key, data) VALUES (%s, %s)",
                       (key, json.dumps({"data": blob})))
    assert [lock.host for lock in backend.locks("desk", "a")] == ["runner-7"]
    assert backend.locks("desk", "c") == []
    # The database's name in the URL, percent-escaped, is the same prefix (Pulumi decodes it).
    escaped = open_backend(url.replace("/postgres?", "/%70ostgres?"), Path("/"))
    assert [lock.host for lock in escaped.locks("desk", "a")] == ["runner-7"]


def test_an_unreachable_postgres_backend_cannot_tell(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    backend = open_backend(f"postgres://u:secret-pw@127.0.0.1:{port}/db?sslmode=disable", tmp_path)
    with pytest.raises(LocksUnreadable) as refused:
        backend.locks("desk", "a")
    assert "secret-pw" not in str(refused.value)
