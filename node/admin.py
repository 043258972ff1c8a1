"""The node's admin socket: a Unix socket through which the node's own operator asks the
running node for a backup (docs/adr/021).

Only the operator may ask: the socket is a file of mode 0600 (only the node's user may
connect), and every connection's peer credentials (SO_PEERCRED) must be the node's own user or
root; anyone else is answered with a refusal and nothing more. No network client can reach it.

One request per connection, one line of JSON: {"command": "backup"}. The answer is one line of
JSON, {"ok": true} or {"ok": false, "code": ..., "error": ...}, then for a backup the file's
bytes (node/backup.py) until the node closes the connection. One backup at a time.

The socket lives in a thread of its own with blocking sockets: a backup reads the store's
snapshot and writes to the socket at the client's pace, without holding the event loop.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import stat
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from provledger.node.settings import (
    ADMIN_ACCEPT_POLL_S,
    ADMIN_CLIENT_TIMEOUT_S,
    ADMIN_REQUEST_BYTES_MAX,
)

log = logging.getLogger("provledger.admin")

SOCKET_MODE = 0o600
_UNIX_PATH_BYTES_MAX = 100  # sun_path holds 108 bytes; longer paths go through /proc/self/fd
_PEER_CREDENTIALS = struct.Struct("3i")  # pid, uid, gid

# What a command is given: the connection to write to and the node's stop event.
Command = Callable[[socket.socket, threading.Event], None]


class AdminError(Exception):
    """The admin socket cannot be served or reached; or the node refused a request."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


@contextlib.contextmanager
def unix_address(path: Path) -> Iterator[str]:
    """An address for `path` that fits a Unix socket address: the path itself, or, when it is
    too long, the same file reached through an open descriptor of its folder (Linux)."""
    if len(os.fsencode(path)) <= _UNIX_PATH_BYTES_MAX:
        yield str(path)
        return
    descriptor = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{descriptor}/{path.name}"
    finally:
        os.close(descriptor)


class AdminServer:
    """Serves `commands` on the Unix socket at `path` from a thread, until `stop`."""

    def __init__(
        self, path: Path, commands: dict[str, Command], users: frozenset[int] | None = None
    ) -> None:
        """`users`: the user ids whose connections are answered (default: the node's own
        user and root)."""
        self.path = path
        self._commands = commands
        self._users = users if users is not None else frozenset({os.geteuid(), 0})
        self._stopping = threading.Event()
        self._busy = threading.Lock()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._workers: dict[threading.Thread, socket.socket] = {}
        self._workers_lock = threading.Lock()

    def start(self) -> None:
        if self.path.exists() or self.path.is_symlink():
            if not stat.S_ISSOCK(self.path.lstat().st_mode):
                raise AdminError(f"{self.path} exists and is not a socket: not replaced")
            if _answers(self.path):
                raise AdminError(
                    f"another process serves the admin socket {self.path} (two nodes with one "
                    "config folder? give each its own [admin] socket)"
                )
            self.path.unlink()  # a stopped node's
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with unix_address(self.path) as address:
                listener.bind(address)
            os.chmod(self.path, SOCKET_MODE)  # before listen(): no one connects before it
            listener.listen(4)
            listener.settimeout(ADMIN_ACCEPT_POLL_S)
        except OSError as error:
            listener.close()
            raise AdminError(f"cannot serve the admin socket {self.path}: {error}") from None
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept, name="provledger-admin", daemon=True)
        self._acceptor.start()

    def stop(self) -> None:
        """Stop accepting, end the connections in progress (a backup stops at its next entry,
        or at once if it waits for a slow client) and wait for their threads."""
        self._stopping.set()
        if self._acceptor is not None:
            self._acceptor.join()
        with self._workers_lock:
            workers = dict(self._workers)
        for connection in workers.values():
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for worker in workers:
            worker.join()
        if self._listener is not None:
            self._listener.close()
            with contextlib.suppress(OSError):
                self.path.unlink()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError as error:
                log.error("the admin socket stopped accepting: %s", error)
                return
            worker = threading.Thread(
                target=self._serve, args=(connection,), name="provledger-admin-command"
            )
            with self._workers_lock:
                self._workers[worker] = connection
            worker.start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(ADMIN_CLIENT_TIMEOUT_S)
            try:
                self._answer(connection)
            except OSError as error:
                log.warning("an admin request ended early: %s", error)
        with self._workers_lock:
            self._workers.pop(threading.current_thread(), None)

    def _answer(self, connection: socket.socket) -> None:
        _, uid, _ = _PEER_CREDENTIALS.unpack(
            connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEER_CREDENTIALS.size)
        )
        if uid not in self._users:
            log.warning("admin request from uid %d refused: not the node's user", uid)
            _reply(connection, {"ok": False, "code": "forbidden", "error": "not the node's user"})
            return
        request = _read_line(connection)
        try:
            command = self._commands[json.loads(request)["command"]]
        except (ValueError, TypeError, KeyError):
            _reply(connection, {"ok": False, "code": "bad_request", "error": "unknown request"})
            return
        if not self._busy.acquire(blocking=False):
            _reply(connection, {"ok": False, "code": "busy", "error": "a backup is under way"})
            return
        try:
            _reply(connection, {"ok": True})
            command(connection, self._stopping)
        except Exception as error:  # the client sees the stream end early: its file is refused
            log.error("admin command failed: %s", error)
        finally:
            self._busy.release()


def _answers(path: Path) -> bool:
    """Whether a process listens on the Unix socket at `path`."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with unix_address(path) as address:
            probe.connect(address)
    except OSError:
        return False
    finally:
        probe.close()
    return True


def _reply(connection: socket.socket, answer: dict[str, Any]) -> None:
    connection.sendall(json.dumps(answer).encode() + b"\n")


def _read_line(connection: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n") and len(data) <= ADMIN_REQUEST_BYTES_MAX:
        more = connection.recv(ADMIN_REQUEST_BYTES_MAX + 1 - len(data))
        if not more:
            break
        data += more
    return data


def request(path: Path, command: str) -> BinaryIO:
    """Ask the node serving the admin socket at `path` for `command`: the command's output, a
    stream to read to its end (and close). Raises AdminError."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(ADMIN_CLIENT_TIMEOUT_S)
    stream = connection.makefile("rb")
    connection.close()  # closed for good with `stream`
    try:
        with unix_address(path) as address:
            connection.connect(address)
        connection.sendall(json.dumps({"command": command}).encode() + b"\n")
        line = stream.readline(ADMIN_REQUEST_BYTES_MAX)
        answer = json.loads(line)
    except (FileNotFoundError, ConnectionRefusedError):
        stream.close()
        raise AdminError(
            f"no node is serving the admin socket {path}: is the node running?", "not_running"
        ) from None
    except PermissionError:
        stream.close()
        raise AdminError(
            f"the admin socket {path} is not yours: run this as the node's user", "forbidden"
        ) from None
    except (OSError, ValueError) as error:
        stream.close()
        raise AdminError(f"the node at {path} did not answer: {error}", "no_answer") from None
    if not isinstance(answer, dict) or answer.get("ok") is not True:
        stream.close()
        error_text = (
            answer.get("error") if isinstance(answer, dict) else line.decode(errors="replace")
        )
        code = answer.get("code", "") if isinstance(answer, dict) else ""
        raise AdminError(f"the node refused: {error_text}", str(code))
    return stream
