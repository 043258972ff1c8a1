"""`provledger node run | check | repair`: one node process from its config file, until
Ctrl-C; a whole-chain check of a stopped node's ledger; and its repair from the peers.

A node whose ledger is damaged does not serve it. `node run` exits with one line saying what
is damaged and what to run next, whether the store found the damage when it opened (see
node/store.py) or later, while serving: the store then writes its damage marker, and a watcher
here stops the node with SIGTERM, its own graceful stop.

Repair is a command, not something a node does by itself when it starts: it rewrites the whole
data folder (keeping the damaged one beside it), takes as long as re-executing the chain, and
an operator should see what was damaged first (a failing disk wants replacing, not a repair on
it). A node that refuses to serve costs its consortium nothing but that node's vote, which
consensus tolerates.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from provledger.cli.output import CommandError, emit, load_genesis
from provledger.cli.progress import ProgressReporter
from provledger.node.config import ConfigError, NodeConfig
from provledger.node.logs import configure_logging
from provledger.node.settings import DAMAGE_MARKER_POLL_INTERVAL_MS

if TYPE_CHECKING:
    from provledger.node.backup import BackupHeader
    from provledger.node.integrity_check import CheckReport


def cmd_node_run(args: argparse.Namespace) -> None:
    """Run the node; with `--log-format json`, its refusal or failure too is a JSON log line
    (logger provledger.node, level CRITICAL; exit status 1), so that every line is JSON."""
    configure_logging(args.log_format)
    if args.log_format != "json":
        _node_run(args)
        return
    try:
        _node_run(args)
    except CommandError as refusal:
        logging.getLogger("provledger.node").critical("%s", refusal)
        raise SystemExit(1) from None
    except Exception:
        logging.getLogger("provledger.node").critical("the node failed", exc_info=True)
        raise SystemExit(1) from None


def _node_run(args: argparse.Namespace) -> None:
    # Imported here: the node's server and its dependencies (fastapi, uvicorn, LevelDB) are
    # needed by this command only.
    from provledger.node.admin import AdminError
    from provledger.node.server import run
    from provledger.node.store import StoreDamaged, StoreError

    config = _load_config(args.config)
    load_genesis(str(config.genesis_path))  # a refused genesis is named before anything starts
    watcher = _DamageWatcher(config.data_dir)
    try:
        run(config, args.log_format)
    except StoreDamaged as damage:
        raise CommandError(_refusal(config, args.config, str(damage))) from None
    except (StoreError, AdminError) as error:
        raise CommandError(str(error)) from None
    except SystemExit:  # the node stopped itself; damage found while serving says why
        if watcher.marked() is None:
            raise
    finally:
        watcher.stop()
    marked = watcher.marked()
    if marked is not None:
        raise CommandError(_refusal(config, args.config, marked))


def cmd_node_check(args: argparse.Namespace) -> None:
    from provledger.node.integrity_check import check_store
    from provledger.node.store import StoreError

    config = _load_config(args.config)
    genesis = load_genesis(str(config.genesis_path))
    _require_ledger(config.data_dir)
    try:
        report, _ = check_store(config.data_dir, genesis, _entry_progress("checked block"))
    except StoreError as error:
        raise CommandError(str(error)) from None
    emit(args, report.to_json(), "\n".join(_report_lines(config.data_dir, report)))
    if not report.sound:
        first = report.first_bad_height
        raise CommandError(
            f"the ledger in {config.data_dir} is damaged"
            + (f" from height {first}" if first is not None else "")
            + f"; rebuild it with: provledger node repair --config {args.config}"
        )


def cmd_node_repair(args: argparse.Namespace) -> None:
    from provledger.node.integrity_repair import PeerSource, repair_store
    from provledger.node.store import StoreError

    config = _load_config(args.config)
    genesis = load_genesis(str(config.genesis_path))
    _require_ledger(config.data_dir)
    peers = PeerSource(config.node_id, config.peers, config.tls_dir)
    try:
        report = repair_store(config.data_dir, genesis, peers, _entry_progress("checked block"))
    except StoreError as error:
        raise CommandError(str(error)) from None
    check = report.check
    lines = _report_lines(config.data_dir, check)
    if report.repaired or not check.sound or check.marked:
        lines.append(report.summary())
    emit(
        args,
        {
            "check": check.to_json(),
            "repaired": report.repaired,
            "local_height": report.local_height,
            "head_height": report.head_height,
            "fetched": report.fetched,
            "kept_at": str(report.kept_at) if report.kept_at else None,
            "problems": report.problems,
        },
        "\n".join(lines),
    )
    if not report.repaired and not check.sound:
        raise CommandError(f"the ledger in {config.data_dir} was not repaired")


def cmd_node_backup(args: argparse.Namespace) -> None:
    """Ask the running node for a backup over its admin socket (node/admin.py); verify it as
    it arrives (node/backup.py) and keep it only whole and verified."""
    from provledger.node.admin import AdminError, request
    from provledger.node.backup import BackupError, BackupReader, verify_header

    config = _load_config(args.config)
    genesis = load_genesis(str(config.genesis_path))
    if config.admin_socket is None:
        raise CommandError(f"{args.config} serves no admin socket")
    out = Path(args.out)
    partial = out.with_name(f".{out.name}.partial")
    try:
        with request(config.admin_socket, "backup") as stream, partial.open("wb") as file:
            reader = BackupReader(_Tee(stream, file))
            header = reader.header()
            verify_header(header, genesis)
            progress = ProgressReporter("backed up entry", header.entries)
            done = 0
            for chunk in reader.chunks():
                done += len(chunk)
                progress.update(done)
            progress.finish()
            file.flush()
            os.fsync(file.fileno())
    except (AdminError, BackupError, OSError) as error:
        partial.unlink(missing_ok=True)
        raise CommandError(f"no backup written: {error}") from None
    partial.replace(out)
    emit(args, _backup_json(header, out), f"{out}: {_backup_line(header)}")


def cmd_node_restore(args: argparse.Namespace) -> None:
    from provledger.node.backup import BackupError
    from provledger.node.restore import restore_backup

    config = _load_config(args.config)
    genesis = load_genesis(str(config.genesis_path))
    try:
        with open(args.file, "rb") as source:
            report = restore_backup(
                source,
                config.data_dir,
                genesis,
                _entry_progress("restored entry"),
                force=args.force,
            )
    except (BackupError, OSError) as error:
        raise CommandError(f"{args.file} not restored: {error}") from None
    header = report.header
    lines = [f"restored {args.file} into {config.data_dir}: {_backup_line(header)}"]
    if report.moved_aside is not None:
        lines.append(f"the folder that was there is now {report.moved_aside}")
    if header.node_id != config.node_id:
        lines.append(
            f"note: the backup was taken by {header.node_id}, this node is {config.node_id}"
        )
    lines.append(f"check it with: provledger node check --config {args.config}")
    document = _backup_json(header, Path(args.file))
    document["data_dir"] = str(config.data_dir)
    document["moved_aside"] = str(report.moved_aside) if report.moved_aside else None
    emit(args, document, "\n".join(lines))


def cmd_node_verify_backup(args: argparse.Namespace) -> None:
    from provledger.node.backup import BackupError, verify_backup

    config = _load_config(args.config)
    genesis = load_genesis(str(config.genesis_path))
    try:
        with open(args.file, "rb") as source:
            header = verify_backup(source, genesis, _entry_progress("verified entry"))
    except (BackupError, OSError) as error:
        raise CommandError(f"{args.file} does not verify: {error}") from None
    emit(args, _backup_json(header, Path(args.file)), f"{args.file}: {_backup_line(header)}")


class _Tee:
    """A stream that copies what is read from `source` into `copy`."""

    def __init__(self, source: BinaryIO, copy: BinaryIO) -> None:
        self._source = source
        self._copy = copy

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self._copy.write(data)
        return data


def _entry_progress(what: str) -> Callable[[int, int], None]:
    """A progress callback (done, total) for node/ code: a reporter (cli/progress.py) per
    stretch of work, a new one whenever the total changes."""
    reporters: dict[int, ProgressReporter] = {}

    def report(done: int, total: int) -> None:
        reporter = reporters.setdefault(total, ProgressReporter(what, total))
        reporter.update(done)
        if done >= total:
            reporter.finish()

    return report


def _backup_line(header: BackupHeader) -> str:
    return (
        f"chain {header.chain_id}, height {header.height} (block {header.block_id.hex()}), "
        f"{header.entries} entries, taken by {header.node_id}; checksums and the checkpoint "
        "verify"
    )


def _backup_json(header: BackupHeader, path: Path) -> dict[str, Any]:
    return {
        "file": str(path),
        "chain_id": header.chain_id,
        "height": header.height,
        "block_id": header.block_id.hex(),
        "entries": header.entries,
        "node_id": header.node_id,
    }


def _load_config(path: str) -> NodeConfig:
    try:
        return NodeConfig.load(path)
    except ConfigError as error:
        raise CommandError(str(error)) from None


def _require_ledger(data_dir: Path) -> None:
    from provledger.node.store import holds_leveldb

    if not holds_leveldb(data_dir):
        raise CommandError(f"{data_dir} holds no ledger database")


def _refusal(config: NodeConfig, config_path: str, damage: str) -> str:
    return (
        f"the ledger in {config.data_dir} is damaged, so this node does not serve it: "
        f"{damage}\nrun `provledger node check --config {config_path}` to see the damage and "
        f"`provledger node repair --config {config_path}` to rebuild the ledger from its peers"
    )


def _report_lines(data_dir: Path, report: CheckReport) -> list[str]:
    from provledger.node.schema import HEAD_WITNESS_FILE

    lines = [f"ledger {data_dir}: head {report.head_height}"]
    if report.witness_height is not None:
        lines[0] += f", committed up to {report.witness_height} ({HEAD_WITNESS_FILE})"
    if report.marked:
        lines.append(f"  the node found damage while it served: {report.marked}")
    lines += [f"  {finding}" for finding in report.findings]
    lines.append(report.summary())
    if report.marked and report.sound:
        lines.append("the check does not find what the node met; `node repair` lets it serve")
    return lines


class _DamageWatcher:
    """Stops this process (SIGTERM: the node's graceful stop) once its store writes the damage
    marker while serving. A marker there before the start is the store's to refuse at open,
    so it is not watched for."""

    def __init__(self, data_dir: Path) -> None:
        from provledger.node.schema import DAMAGE_MARKER_FILE

        self._marker = data_dir / DAMAGE_MARKER_FILE
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        if not self._marker.exists():
            self._thread = threading.Thread(
                target=self._watch, name="provledger-damage-watcher", daemon=True
            )
            self._thread.start()

    def marked(self) -> str | None:
        """What the store marked as damaged since the start, if it did."""
        if self._thread is None or not self._marker.exists():
            return None
        return self._marker.read_text(errors="replace").strip()

    def _watch(self) -> None:
        while not self._stopping.wait(DAMAGE_MARKER_POLL_INTERVAL_MS / 1000):
            if self._marker.exists():
                os.kill(os.getpid(), signal.SIGTERM)
                return

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
