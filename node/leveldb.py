"""The LevelDB under a ledger store (node/store.py): opening it, the errors that say why a
folder cannot serve, and reads that verify every block's checksum and turn any LevelDB error
into `StoreDamaged`; the head witness beside it is read here too.

node/integrity*.py use these to examine and repair a folder a store will not open.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import plyvel

from provledger.node import schema

# Files LevelDB writes into its folder: if any is there, the folder holds a database.
_LEVELDB_FILE_SUFFIXES = (".ldb", ".sst", ".log")
_LEVELDB_FILE_PREFIXES = ("MANIFEST-",)


class StoreError(Exception):
    """The folder does not hold a usable ledger for this genesis (another chain's, none at
    all, or one in use); `StoreDamaged` when what it holds is damaged."""


class StoreDamaged(StoreError):
    """What the store holds is damaged: LevelDB found a checksum or file error, or the chain it
    holds does not check. `what` says what is wrong; `height` is the first height known to be
    affected (None when no height is known)."""

    def __init__(self, what: str, height: int | None = None) -> None:
        super().__init__(f"height {height}: {what}" if height is not None else what)
        self.what = what
        self.height = height


class StoreInUse(StoreError):
    """Another process (a running node) holds the folder's LevelDB lock."""


def leveldb_message(error: plyvel.Error) -> str:
    """LevelDB's own words for an error ("Corruption: block checksum mismatch")."""
    text = error.args[0] if error.args else ""
    return text.decode(errors="replace") if isinstance(text, bytes) else str(text)


def holds_leveldb(path: Path) -> bool:
    """Whether the folder holds LevelDB files (whatever state they are in)."""
    if not path.is_dir():
        return False
    return any(
        name.endswith(_LEVELDB_FILE_SUFFIXES) or name.startswith(_LEVELDB_FILE_PREFIXES)
        for name in os.listdir(path)
    )


def open_leveldb(path: Path, *, create: bool, **options: Any) -> plyvel.DB:
    """Open the LevelDB at `path` with paranoid checks; a damaged or missing CURRENT, MANIFEST
    or .log is a `StoreDamaged` naming the file, a held lock `StoreInUse`.

    LevelDB would take a folder of tables without a CURRENT file for an empty one and, told to
    create it, start a new database there and delete the tables: refused here."""
    if holds_leveldb(path) and not (path / "CURRENT").exists():
        raise StoreDamaged(
            f"LevelDB's CURRENT file is missing from {path}, which holds LevelDB files: "
            "LevelDB cannot find its MANIFEST (the list of its files)"
        )
    try:
        return plyvel.DB(str(path), create_if_missing=create, paranoid_checks=True, **options)
    except plyvel.Error as error:
        text = leveldb_message(error)
        # "lock DIR/LOCK: Resource temporarily unavailable" from another process (a running
        # node), "...: already held by process" from this one.
        if isinstance(error, plyvel.IOError) and "LOCK" in text:
            raise StoreInUse(
                f"the ledger database in {path} is in use by another process (is its node "
                "running? stop it first)"
            ) from None
        if isinstance(error, plyvel.IOError) and "does not exist" in text:
            raise StoreError(f"{path} holds no ledger database") from None
        raise StoreDamaged(
            f"LevelDB cannot open {path}: {text} ({_damaged_file(path, text)})"
        ) from None


def read_head_witness(path: Path) -> tuple[int, bytes] | None:
    """(height, block id) of the last block committed in the ledger folder `path`, as its head
    witness says; None if there is none or it is not intact."""
    try:
        raw = (path / schema.HEAD_WITNESS_FILE).read_bytes()
    except OSError:
        return None
    return schema.decode_head_witness(raw)


def _damaged_file(path: Path, text: str) -> str:
    """Which of LevelDB's files an open failed on, from its message or its LOG file (LevelDB
    writes there which .log it was dropping bytes from)."""
    if "CURRENT" in text:
        return "the CURRENT file is damaged"
    try:
        lines = (path / "LOG").read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:  # LevelDB starts a new LOG at each open: these lines are this one's
        if ".log: dropping" in line:
            before, dropping = line.split(".log: ", 1)
            name = before.rsplit("/", 1)[-1].split()[-1]
            return f"the write-ahead log {name}.log is damaged, LevelDB reports: {dropping}"
    if "missing files" in text or "No such file" in text:
        return "a table file the MANIFEST lists is missing"
    return "the MANIFEST, LevelDB's list of its files, is damaged"


class DamageGuard(Protocol):
    """What checked reads ask of their store: whether it refuses reads, and to record damage."""

    def refuse_if_damaged(self) -> None: ...

    def found_damage(self, what: str, height: int | None = None) -> StoreDamaged: ...


class CheckedReads:
    """Reads of one LevelDB snapshot (or the database) that verify every block's checksum; a
    LevelDB error, or a read after the store found damage, raises `StoreDamaged`."""

    __slots__ = ("_source", "_store")

    def __init__(self, source: Any, store: DamageGuard) -> None:
        self._source = source
        self._store = store

    def get(self, key: bytes) -> bytes | None:
        self._store.refuse_if_damaged()
        try:
            return self._source.get(key, verify_checksums=True)  # type: ignore[no-any-return]
        except plyvel.Error as error:
            raise self._store.found_damage(
                f"LevelDB cannot read {schema.describe_key(key)}: {leveldb_message(error)}"
            ) from None

    def iterator(self, **options: Any) -> Iterator[Any]:
        self._store.refuse_if_damaged()
        if options.get("prefix"):
            where = schema.describe_key(options["prefix"])
        elif options.get("start"):
            where = f"{schema.describe_key(options['start'])} or what follows it"
        else:
            where = "the database"
        try:
            yield from self._source.iterator(verify_checksums=True, **options)
        except plyvel.Error as error:
            raise self._store.found_damage(
                f"LevelDB cannot read {where}: {leveldb_message(error)}"
            ) from None
