"""Ed25519 signature checks in worker processes, so the event loop's core does other work.

Signature verification is the largest single cost of admitting an event (about 70 µs of the
event loop's time per event with PyNaCl). A node verifies every event once, when it first
arrives: every admission (`LedgerNode.admit`: a single event, a client's batch, a peer's
gossip) sends its checks here, and the application remembers which events passed, so the
rules then skip the crypto for them.

The pool uses the `spawn` start method and is created before gRPC starts any thread (gRPC and
`fork` do not mix). Small batches are checked inline: a round trip to a worker costs more
than a few checks.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING

from provledger.node.settings import SIGNATURE_POOL_BATCH_EVENTS_MIN, SIGNATURE_POOL_WORKERS_MAX
from provledger.protocol import crypto

if TYPE_CHECKING:  # the workers import this module: keep their imports light
    from provledger.protocol.application import SignatureCheck


def _exit_with_parent() -> None:
    """Worker initializer: end this worker as soon as the node process is gone, even after a
    `kill -9` of the node (which gives the pool no chance to shut its workers down)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _verify_all(checks: Sequence[SignatureCheck]) -> list[bool]:
    return [
        crypto.verify(public_key, b"", message, signature)
        for public_key, message, signature in checks
    ]


class SignatureVerifier:
    def __init__(self, workers: int | None = None) -> None:
        count = (
            workers
            if workers is not None
            else min(SIGNATURE_POOL_WORKERS_MAX, max(1, (os.cpu_count() or 2) - 1))
        )
        self._pool = ProcessPoolExecutor(
            max_workers=count,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_exit_with_parent,
        )
        self._workers = count
        # Start the workers now, before gRPC creates its threads.
        for future in [self._pool.submit(_verify_all, []) for _ in range(count)]:
            future.result()

    async def verify(self, checks: Sequence[SignatureCheck]) -> list[bool]:
        """Which of `checks` hold, in order."""
        if len(checks) < SIGNATURE_POOL_BATCH_EVENTS_MIN:
            return _verify_all(checks)
        loop = asyncio.get_running_loop()
        size = -(-len(checks) // self._workers)
        parts = [checks[start : start + size] for start in range(0, len(checks), size)]
        results = await asyncio.gather(
            *(loop.run_in_executor(self._pool, _verify_all, part) for part in parts)
        )
        return [ok for part in results for ok in part]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
