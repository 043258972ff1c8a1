"""Files and folders readable by their owner only: private keys, identities, node data.

- `write_private_file(path, data)` leaves `path` holding `data` with mode 0600, whatever was
  there before (a file of any mode, or none): the data goes to a new temporary file in the
  same folder, created 0600 (O_EXCL, so never someone else's file or a link), synced, then
  renamed over `path`. A reader sees the old file or the new one, never a mix, and the secret
  is never in a file others may read, not even for a moment.
- `make_private_directory(path)` makes the folder (and any missing parents) and leaves it
  0700, narrowing an existing folder that others could enter.

Modes are set with fchmod/chmod, not left to the process's umask.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from pathlib import Path

log = logging.getLogger("provledger.node")

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIRECTORY_MODE = 0o700


def write_private_file(path: Path | str, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        os.fchmod(descriptor, PRIVATE_FILE_MODE)
        with os.fdopen(descriptor, "wb") as handle:
            descriptor = -1
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if descriptor != -1:
            os.close(descriptor)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _sync_directory(path.parent)


def make_private_directory(path: Path | str) -> None:
    path = Path(path)
    path.mkdir(mode=PRIVATE_DIRECTORY_MODE, parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode != PRIVATE_DIRECTORY_MODE:
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.info("narrowing %s from %o to %o", path, mode, PRIVATE_DIRECTORY_MODE)
        path.chmod(PRIVATE_DIRECTORY_MODE)


def _sync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (best effort where a folder cannot be opened)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
