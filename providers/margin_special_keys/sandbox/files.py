"""Files that hold secrets (the admin token, a private key PEM): mode 0600 from their first byte.

A file is never made by touching it and then writing it (a process killed in between, or a full
disk, leaves it empty), and never written through an existing file (it would keep that file's
mode, 0644 say, and follow a symlink). `create_new` makes the file exclusively; `replace` writes a
new file beside it and renames it over the old one, so a reader sees the old content or the new,
whole, and the old file's inode and mode are never reused.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

PRIVATE_MODE = 0o600


def create_new(path: Path, data: bytes) -> None:
    """Make `path` holding `data`, mode 0600, synced to disk. FileExistsError when `path`
    exists, a dangling symlink included (O_EXCL follows no link)."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, PRIVATE_MODE)
    try:
        with os.fdopen(fd, "wb") as out:  # closes fd, whatever happens next
            os.fchmod(out.fileno(), PRIVATE_MODE)  # the umask only takes bits away: exactly 0600
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def replace(path: Path, data: bytes) -> None:
    """Make `path` a new file holding `data`, mode 0600, in one rename: the content goes into a
    temporary file made exclusively in the same directory, synced, then renamed over `path`
    (a symlink at `path` is replaced, its target left alone)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    create_new(tmp, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    """The rename itself on disk, not only the file's content."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory; the rename is still atomic
    finally:
        os.close(fd)
