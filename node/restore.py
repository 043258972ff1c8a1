"""Restoring a backup (node/backup.py) into a node's empty data folder: every check of the
file first, into a scratch folder beside the data folder, then the restored ledger opened as a
node opens it and compared with the backup's checkpoint; only then is it renamed into place
(docs/adr/021).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import plyvel

from provledger.node.backup import (
    BackupError,
    BackupHeader,
    BackupReader,
    EntryOrder,
    Progress,
    verify_header,
)
from provledger.node.private_files import make_private_directory
from provledger.node.store import Store, StoreError
from provledger.protocol.genesis import Genesis
from provledger.v1 import ledger_pb2

log = logging.getLogger("provledger.backup")

# --- restoring ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreReport:
    header: BackupHeader
    data_dir: Path
    moved_aside: Path | None


def restore_backup(
    source: BinaryIO,
    data_dir: Path,
    genesis: Genesis,
    progress: Progress | None = None,
    *,
    force: bool = False,
) -> RestoreReport:
    """Restore the backup in `source` into `data_dir`, which must be empty or absent (with
    `force`, a non-empty one is moved aside to `<name>.before-restore-N`). Verifies the whole
    file and the restored store before anything in `data_dir` changes."""
    _require_restorable(data_dir, force)
    reader = BackupReader(source)
    header = reader.header()
    block_header = verify_header(header, genesis)
    scratch = data_dir.parent / f".{data_dir.name}.restoring"
    if scratch.exists():
        shutil.rmtree(scratch)  # what an interrupted restore left
    make_private_directory(scratch)
    try:
        db = plyvel.DB(str(scratch), create_if_missing=True, error_if_exists=True)
        try:
            order = EntryOrder()
            for chunk in reader.chunks():
                order.check(chunk)
                with db.write_batch(sync=True) as batch:
                    for key, value in chunk:
                        batch.put(key, value)
                if progress is not None:
                    progress(order.entries, header.entries)
        finally:
            db.close()
        _verify_restored(scratch, genesis, header, block_header)
        moved_aside = _move_aside(data_dir) if data_dir.exists() else None
        scratch.rename(data_dir)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return RestoreReport(header, data_dir, moved_aside)


def _require_restorable(data_dir: Path, force: bool) -> None:
    if not data_dir.exists() or not any(data_dir.iterdir()):
        return
    if not force:
        raise BackupError(
            "folder_not_empty",
            f"{data_dir} is not empty; restore into an empty folder, or give --force to move "
            "it aside first",
        )
    if _locked_by_another_process(data_dir / "LOCK"):
        raise BackupError("node_running", f"{data_dir} is in use by a running node; stop it first")


def _locked_by_another_process(lock_file: Path) -> bool:
    """Whether another process holds LevelDB's lock on `lock_file` (an fcntl lock), found
    without opening the database (an open writes LevelDB's LOG, and may recover a .log)."""
    try:
        descriptor = os.open(lock_file, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.lockf(descriptor, fcntl.LOCK_UN)
        return False
    finally:
        os.close(descriptor)


def _move_aside(data_dir: Path) -> Path | None:
    if not any(data_dir.iterdir()):
        data_dir.rmdir()
        return None
    number = 1
    while (aside := data_dir.with_name(f"{data_dir.name}.before-restore-{number}")).exists():
        number += 1
    data_dir.rename(aside)
    return aside


def _verify_restored(
    path: Path, genesis: Genesis, header: BackupHeader, block_header: ledger_pb2.BlockHeader
) -> None:
    """The restored store opens for serving (its newest blocks check, node/integrity.py), its
    head is the backup's height, its block there is the checkpoint's, and its Merkle log's
    root there is the checkpoint's."""
    try:
        store = Store(path, genesis, create=False)
    except StoreError as error:
        raise BackupError(
            "restored_store_mismatch", f"the restored ledger does not open: {error}"
        ) from None
    try:
        problems = []
        if store.head_height != header.height:
            problems.append(f"its head is {store.head_height}, not {header.height}")
        elif store.checkpoint(header.height) != header.checkpoint:
            problems.append(f"its block {header.height} is not the checkpoint's")
        elif store.tip.block_id != header.block_id:
            problems.append("its head's block id is not the checkpoint's")
        elif store.log_root_at(block_header.log_size) != block_header.log_root:
            problems.append("its Merkle log's root is not the checkpoint's")
        elif store.header(header.height).state_root != block_header.state_root:  # type: ignore[union-attr]
            problems.append("its state root is not the checkpoint's")
    finally:
        store.close()
    if problems:
        raise BackupError("restored_store_mismatch", f"the restored ledger: {problems[0]}")
