"""Backups (node/backup.py, node/admin.py, cli/progress.py) over real LevelDB folders.

A short chain is committed into a `Store` as a node commits it; a backup of it is taken the
way the node takes one (from the store's snapshot of its last commit) and:
- restores into an empty folder, holding every entry of the source but the vote log, a store
  that opens at the backup's height and that `check_store` finds sound;
- every way a file can be wrong is refused with its own code, the data folder left as it was:
  a truncation at any point, a flipped byte anywhere, a checkpoint not signed by a quorum, a
  backup of another chain, entries out of order or of the vote log, a restored store whose
  head is not the checkpoint's; and a folder that is not empty, or in use, is refused too;
- the admin socket is a 0600 file that answers only known requests, one backup at a time;
- progress is a line redrawn on a terminal and plain percentages elsewhere.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import re
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import plyvel
import pytest
from support.memory_state import Consortium, digest

import provledger.node.restore as restoring
from provledger.cli.progress import ProgressReporter
from provledger.node import admin, backup, schema
from provledger.node.backup import BackupError, BackupHeader, BackupReader, BackupWriter
from provledger.node.integrity_check import check_store
from provledger.node.restore import restore_backup
from provledger.node.store import Store
from provledger.protocol import blocks
from provledger.v1 import ledger_pb2

GENERAL = ledger_pb2.CLASSIFICATION_GENERAL
BLOCKS = 6
ASSETS_PER_BLOCK = 30


@dataclasses.dataclass
class Source:
    consortium: Consortium
    path: Path
    store: Store
    file: bytes  # a backup of `store`

    @property
    def genesis(self):
        return self.consortium.genesis


COMMAND_START_TIMEOUT_S = 60  # a bound for a busy machine, never a measure of speed


def commit_blocks(consortium: Consortium, store: Store, count: int) -> None:
    last_commit = None
    for number in range(count):
        signed = [
            consortium.sign(
                "agency-a",
                "asset_registered",
                asset_id=f"backup/{store.head_height}/{index:03}",
                content_digest=digest(f"backup/{number}/{index}"),
                classification=GENERAL,
            )
            for index in range(ASSETS_PER_BLOCK)
        ]
        executed = blocks.execute_block(
            state=store,
            log=store.log,
            tip=store.tip,
            chain_id=consortium.chain_id,
            candidates=[consortium.decode(s) for s in signed],
            time_ms=store.tip.time_ms + 1_000,
            proposer_id="validator-0",
            genesis_validators=consortium.genesis.validator_set,
            last_commit=last_commit,
            strict=True,
            signatures_checked=True,
        )
        last_commit = consortium.certificate(executed)
        store.commit_block(executed, last_commit)


def take(store: Store, genesis, node_id: str = "validator-0") -> bytes:
    sink = io.BytesIO()
    backup.take_backup(store, genesis, node_id, sink)
    return sink.getvalue()


@pytest.fixture
def source(tmp_path) -> Source:
    consortium = Consortium()
    path = tmp_path / "source"
    store = Store(path, consortium.genesis)
    commit_blocks(consortium, store, BLOCKS)
    # A vote this validator signed above the head, then a restart: the snapshot holds it.
    store.save_signed(
        ledger_pb2.Vote(height=BLOCKS + 1, round=0, type=1, validator_id="validator-0"), None
    )
    store.close()
    store = Store(path, consortium.genesis)
    built = Source(consortium, path, store, take(store, consortium.genesis))
    yield built
    built.store.close()


def parts(file: bytes) -> tuple[BackupHeader, list[list[tuple[bytes, bytes]]]]:
    reader = BackupReader(io.BytesIO(file))
    header = reader.header()
    return header, list(reader.chunks())


def rewrite(file: bytes, header=None, entries=None, **header_changes) -> bytes:
    """`file` written again (valid checksums) with another header or other entries."""
    old_header, chunks = parts(file)
    header = header or dataclasses.replace(old_header, **header_changes)
    sink = io.BytesIO()
    writer = BackupWriter(sink, header)
    for key, value in entries if entries is not None else (e for c in chunks for e in c):
        writer.add(key, value)
    writer.finish()
    return sink.getvalue()


def restore(source: Source, file: bytes, target: Path, **options):
    return restore_backup(io.BytesIO(file), target, source.genesis, **options)


def refused(source: Source, file: bytes, target: Path, code: str, **options) -> BackupError:
    before = snapshot_of(target)
    with pytest.raises(BackupError) as raised:
        restore(source, file, target, **options)
    assert raised.value.code == code, raised.value
    assert snapshot_of(target) == before  # untouched
    assert not any(p.name.endswith(".restoring") for p in target.parent.iterdir())
    return raised.value


def snapshot_of(folder: Path) -> dict[str, bytes] | None:
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def all_entries(path: Path) -> dict[bytes, bytes]:
    db = plyvel.DB(str(path))
    try:
        return dict(db.iterator())
    finally:
        db.close()


# --- the round trip ---------------------------------------------------------------------------


def test_a_backup_restores_the_ledger_at_its_height(source, tmp_path):
    header, chunks = parts(source.file)
    assert header.height == BLOCKS == source.store.head_height
    assert header.checkpoint == source.store.checkpoint(BLOCKS)
    assert header.node_id == "validator-0" and header.chain_id == source.consortium.chain_id
    assert header.entries == sum(len(c) for c in chunks)

    target = tmp_path / "restored"
    progress: list[tuple[int, int]] = []
    report = restore(source, source.file, target, progress=lambda d, t: progress.append((d, t)))
    assert report.header == header and report.moved_aside is None
    assert progress[-1] == (header.entries, header.entries)

    source.store.close()
    original = all_entries(source.path)
    restored = all_entries(target)
    votes = {k for k in original if k.startswith(schema.CONSENSUS_PREFIX)}
    assert votes, "the source must hold a vote-log entry for this test to mean anything"
    assert restored == {k: v for k, v in original.items() if k not in votes}
    assert (target / schema.HEAD_WITNESS_FILE).exists()

    store = Store(target, source.genesis, create=False)
    try:
        assert store.head_height == BLOCKS
        assert store.checkpoint(BLOCKS) == header.checkpoint
    finally:
        store.close()
    report_check, _ = check_store(target, source.genesis)
    assert report_check.sound, report_check.summary()
    source.store = Store(source.path, source.genesis)


def test_a_verified_backup_streams_in_chunks(source, monkeypatch):
    monkeypatch.setattr(backup, "BACKUP_CHUNK_BYTES_TARGET", 4_096)
    file = take(source.store, source.genesis)
    _, chunks = parts(file)
    assert len(chunks) > 3
    header = backup.verify_backup(io.BytesIO(file), source.genesis)
    assert header.height == BLOCKS


def test_an_empty_folder_is_replaced_and_force_moves_a_full_one_aside(source, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    restore(source, source.file, empty)
    assert Store(empty, source.genesis, create=False).head_height == BLOCKS

    full = tmp_path / "full"
    full.mkdir()
    (full / "something").write_text("old")
    refused(source, source.file, full, "folder_not_empty")
    report = restore(source, source.file, full, force=True)
    assert report.moved_aside == tmp_path / "full.before-restore-1"
    assert (report.moved_aside / "something").read_text() == "old"


# --- refusals ---------------------------------------------------------------------------------


def test_a_folder_in_use_is_refused(source, tmp_path):
    """Held by another process, as a running node holds it (LevelDB's lock is per process)."""
    target = tmp_path / "in-use"
    restore(source, source.file, target)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_SCRIPT, str(target)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        refused(source, source.file, target, "node_running", force=True)
    finally:
        holder.kill()
        holder.wait()


HOLD_SCRIPT = """
import sys, time, plyvel
db = plyvel.DB(sys.argv[1])
print("held", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("cut", [0, 5, 18, 20, 24, 100, -2_000, -40, -33, -32, -1])
def test_a_truncated_file_is_refused(source, tmp_path, cut):
    end = cut if cut >= 0 else len(source.file) + cut
    code = "not_a_backup" if end < len(backup.MAGIC) else "truncated"
    error = refused(source, source.file[:end], tmp_path / "target", code)
    assert "truncated" in str(error) or code == "not_a_backup"


def test_a_flipped_byte_anywhere_is_refused(source, tmp_path):
    file = source.file
    # Every byte of the start, the header and the end; a stride through the chunks.
    header_end = len(backup.MAGIC) + 2 + 4 + len(parts(file)[0].encode()) + 32
    offsets = [*range(header_end + 16), *range(header_end, len(file), 97)]
    offsets += range(len(file) - 60, len(file))
    codes = set()
    for offset in sorted(set(offsets)):
        flipped = bytearray(file)
        flipped[offset] ^= 0x01
        with pytest.raises(BackupError) as raised:
            backup.verify_backup(io.BytesIO(bytes(flipped)), source.genesis)
        codes.add(raised.value.code)
    assert {"not_a_backup", "header_checksum", "chunk_checksum", "file_checksum"} <= codes
    # And through a restore, the folder untouched.
    for offset in (header_end - 5, header_end + 200, len(file) - 10):
        flipped = bytearray(file)
        flipped[offset] ^= 0x80
        refused(source, bytes(flipped), tmp_path / "target", code=_code_of(bytes(flipped), source))


def _code_of(file: bytes, source: Source) -> str:
    with pytest.raises(BackupError) as raised:
        backup.verify_backup(io.BytesIO(file), source.genesis)
    return raised.value.code


def test_another_version_and_trailing_bytes_are_refused(source, tmp_path):
    versioned = backup.MAGIC + (2).to_bytes(2, "big") + source.file[len(backup.MAGIC) + 2 :]
    refused(source, versioned, tmp_path / "t", "unsupported_version")
    refused(source, source.file + b"\x00", tmp_path / "t", "trailing_data")
    marked = bytearray(source.file)
    header_end = len(backup.MAGIC) + 2 + 4 + len(parts(source.file)[0].encode()) + 32
    marked[header_end] = ord("X")
    refused(source, bytes(marked), tmp_path / "t", "bad_chunk")


def test_a_header_that_does_not_parse_is_refused(source, tmp_path):
    raw = b'{"format": "provledger-backup"}'
    file = backup.MAGIC + (1).to_bytes(2, "big") + len(raw).to_bytes(4, "big") + raw
    file += hashlib.sha256(raw).digest()
    refused(source, file, tmp_path / "t", "bad_header")


def test_a_checkpoint_not_signed_by_a_quorum_is_refused(source, tmp_path):
    header, _ = parts(source.file)
    checkpoint = ledger_pb2.Checkpoint()
    checkpoint.CopyFrom(header.checkpoint)
    del checkpoint.certificate.signatures[1:]
    file = rewrite(source.file, checkpoint=checkpoint)
    error = refused(source, file, tmp_path / "t", "bad_checkpoint")
    assert "a quorum is" in str(error)


def test_a_checkpoint_of_another_height_is_refused(source, tmp_path):
    file = rewrite(source.file, height=BLOCKS - 1)
    refused(source, file, tmp_path / "t", "bad_checkpoint")


def test_a_backup_of_another_chain_is_refused(source, tmp_path):
    other = Consortium(chain_id="another-chain")
    store = Store(tmp_path / "other", other.genesis)
    try:
        commit_blocks(other, store, 1)
        file = take(store, other.genesis)
    finally:
        store.close()
    error = refused(source, file, tmp_path / "t", "wrong_chain")
    assert "another-chain" in str(error)


def test_miscounted_or_misordered_entries_are_refused(source, tmp_path):
    header, chunks = parts(source.file)
    entries = [e for c in chunks for e in c]
    refused(source, rewrite(source.file, entries=entries[:-1]), tmp_path / "t", "entry_count")
    swapped = [entries[1], entries[0], *entries[2:]]
    refused(source, rewrite(source.file, entries=swapped), tmp_path / "t", "bad_entries")
    vote = (schema.signed_message_key(BLOCKS + 1, 0, 1), b"x")
    with_vote = sorted([*entries, vote])
    file = rewrite(
        source.file,
        header=dataclasses.replace(header, entries=len(with_vote)),
        entries=with_vote,
    )
    refused(source, file, tmp_path / "t", "bad_entries")


def test_a_restored_store_that_is_not_the_checkpoints_is_refused(source, tmp_path):
    header, chunks = parts(source.file)
    lower = [
        (k, schema.encode_number(BLOCKS - 1) if k == schema.META_HEAD_HEIGHT else v)
        for c in chunks
        for k, v in c
        if k != schema.block_key(BLOCKS)
    ]
    file = rewrite(
        source.file, header=dataclasses.replace(header, entries=len(lower)), entries=lower
    )
    error = refused(source, file, tmp_path / "t", "restored_store_mismatch")
    assert "the restored ledger does not open" in str(error)


def test_nothing_to_back_up_and_a_stopping_node_are_refused(source, tmp_path):
    fresh = Consortium()
    store = Store(tmp_path / "fresh", fresh.genesis)
    try:
        with pytest.raises(BackupError) as raised:
            take(store, fresh.genesis)
        assert raised.value.code == "nothing_committed"
    finally:
        store.close()
    stopping = threading.Event()
    stopping.set()
    with pytest.raises(BackupError) as raised:
        backup.take_backup(source.store, source.genesis, "validator-0", io.BytesIO(), stopping)
    assert raised.value.code == "stopped"


def test_every_code_in_the_sources_is_covered():
    """Every code node/backup.py and node/restore.py raise is in CODES, and this file tests
    each."""
    text = Path(backup.__file__).read_text() + Path(restoring.__file__).read_text()
    raised = set(re.findall(r'BackupError\(\s*"(\w+)"', text))
    assert raised == set(backup.CODES)
    tests = Path(__file__).read_text()
    untested = [code for code in backup.CODES if f'"{code}"' not in tests]
    assert not untested


# --- the admin socket -------------------------------------------------------------------------


def test_the_admin_socket_serves_its_operator_only_what_it_knows(tmp_path):
    folder = tmp_path / ("a-long-folder-name-" * 6)  # past a Unix socket address's length
    folder.mkdir()
    path = folder / "admin.sock"
    release = threading.Event()

    def command(connection: socket.socket, stopping: threading.Event) -> None:
        connection.sendall(b"output")
        release.wait(10)

    server = admin.AdminServer(path, {"backup": command})
    server.start()
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == admin.SOCKET_MODE
        with admin.request(path, "backup") as stream:
            assert stream.read(6) == b"output"
            with pytest.raises(admin.AdminError) as busy:
                admin.request(path, "backup")
            assert busy.value.code == "busy"
            release.set()
            assert stream.read() == b""
        with pytest.raises(admin.AdminError) as unknown:
            admin.request(path, "shell")
        assert unknown.value.code == "bad_request"
    finally:
        release.set()
        server.stop()
    assert not path.exists()
    with pytest.raises(admin.AdminError) as gone:
        admin.request(path, "backup")
    assert gone.value.code == "not_running"


def test_a_file_in_the_sockets_place_is_not_replaced(tmp_path):
    path = tmp_path / "admin.sock"
    path.write_text("not a socket")
    with pytest.raises(admin.AdminError, match="is not a socket"):
        admin.AdminServer(path, {}).start()
    assert path.read_text() == "not a socket"


# --- progress ---------------------------------------------------------------------------------


class _Stream(io.StringIO):
    def __init__(self, terminal: bool) -> None:
        super().__init__()
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


def test_progress_is_plain_percentages_off_a_terminal():
    stream = _Stream(terminal=False)
    reporter = ProgressReporter("checked block", 200, stream)
    for done in range(0, 201, 3):
        reporter.update(done)
    reporter.finish()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "0% checked block 0 of 200"
    assert lines[-1] == "100% checked block 200 of 200"
    percents = [int(line.split("%")[0]) for line in lines]
    assert percents == sorted(set(percents))  # each once, in order


def test_progress_redraws_one_line_on_a_terminal():
    stream = _Stream(terminal=True)
    reporter = ProgressReporter("restored entry", 4, stream)
    for done in range(5):
        reporter.update(done)
    reporter.finish()
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("100%\n")
    assert text.count("\r") == 5


def test_no_progress_for_no_work():
    stream = _Stream(terminal=False)
    reporter = ProgressReporter("checked block", 0, stream)
    reporter.update(0)
    reporter.finish()
    assert stream.getvalue() == ""


def test_stopping_ends_a_backup_that_waits_for_a_slow_client(tmp_path):
    """A client that stops reading does not hold the node's stop: the connection is ended."""
    path = tmp_path / "admin.sock"
    ended: list[BaseException] = []
    sending = threading.Event()

    def command(connection: socket.socket, stopping: threading.Event) -> None:
        sending.set()
        try:
            while True:
                connection.sendall(b"x" * 65_536)  # blocks once the client's buffer is full
        except OSError as error:
            ended.append(error)

    server = admin.AdminServer(path, {"backup": command})
    server.start()
    with admin.request(path, "backup"):
        # stop only once the command runs: stopping before it started proves nothing
        assert sending.wait(COMMAND_START_TIMEOUT_S), "the command never started"
        server.stop()
    assert ended, "the command must have been ended by the stop"


def test_a_connection_from_another_user_is_refused(tmp_path):
    """The peer's uid (SO_PEERCRED) is checked on every connection: a server that answers
    only another user refuses this process, whatever the socket file's mode."""
    path = tmp_path / "admin.sock"
    served: list[bool] = []
    server = admin.AdminServer(
        path, {"backup": lambda c, s: served.append(True)}, users=frozenset({os.geteuid() + 1})
    )
    server.start()
    try:
        with pytest.raises(admin.AdminError) as refused_user:
            admin.request(path, "backup")
        assert refused_user.value.code == "forbidden"
    finally:
        server.stop()
    assert not served


def test_a_socket_another_node_serves_is_not_taken_over_but_a_stale_one_is(tmp_path):
    path = tmp_path / "admin.sock"
    first = admin.AdminServer(path, {})
    first.start()
    try:
        with pytest.raises(admin.AdminError, match="another process serves"):
            admin.AdminServer(path, {}).start()
    finally:
        first.stop()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))  # left by a node killed with -9: a socket file nobody listens on
    stale.close()
    second = admin.AdminServer(path, {})
    second.start()
    second.stop()
