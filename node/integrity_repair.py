"""`provledger node repair`: the scratch store of a check becomes the new ledger, completed from
the peers (the theory is in node/integrity.py)."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from provledger.node import schema
from provledger.node.integrity import (
    Progress,
    log,
)
from provledger.node.integrity_check import (
    CheckReport,
    check_store,
    scratch_folder,
)
from provledger.node.settings import (
    SYNC_BATCH_BLOCKS_MAX,
)
from provledger.node.store import (
    Store,
    StoreDamaged,
    StoreError,
)
from provledger.protocol.application import LedgerApplication
from provledger.protocol.blocks import (
    ExecutedBlock,
)
from provledger.protocol.errors import Rejected
from provledger.protocol.genesis import Genesis
from provledger.protocol.validators import validator_history
from provledger.v1 import ledger_pb2

# --- repair -------------------------------------------------------------------------------------


@dataclass
class PeerSource:
    """How `repair_store` reaches the peers, from the node's config: its node id (its TLS
    certificate's), its peers' PeerService addresses and its TLS folder."""

    node_id: str
    peers: dict[str, str]
    tls_dir: Path | None


@dataclass
class RepairReport:
    check: CheckReport
    repaired: bool = False
    local_height: int = 0  # blocks 1..this were rebuilt from the folder itself
    head_height: int = 0  # the repaired ledger's head
    fetched: dict[str, int] = field(default_factory=dict)  # blocks fetched, by peer
    kept_at: Path | None = None  # where the damaged folder was moved
    problems: list[str] = field(default_factory=list)  # why it could not be completed

    def summary(self) -> str:
        if not self.repaired:
            return "not repaired: " + "; ".join(self.problems)
        fetched = ", ".join(f"{count} from {peer}" for peer, count in sorted(self.fetched.items()))
        local = (
            f"blocks 1-{self.local_height} rebuilt from the folder itself"
            if self.local_height
            else "no block kept from the folder"
        )
        return (
            f"repaired: {local}, {sum(self.fetched.values())} fetched from peers "
            f"({fetched or 'none'}); head {self.head_height}; the damaged folder is kept at "
            f"{self.kept_at}"
        )


def repair_store(
    path: Path,
    genesis: Genesis,
    peers: PeerSource,
    progress: Progress | None = None,
) -> RepairReport:
    """Rebuild the ledger in `path` (see the module docstring). Changes nothing unless the
    rebuilt ledger reaches every height this node committed; a sound ledger is left alone."""
    scratch = scratch_folder(path)
    check, rebuilt = check_store(path, genesis, progress, scratch=scratch, keep_rebuilt=True)
    report = RepairReport(check=check)
    assert rebuilt is not None  # keep_rebuilt
    try:
        if check.sound:
            if check.marked:
                # What the node met while serving is not there (a failing read that passed):
                # the whole check is the judge, so the node may serve again.
                (path / schema.DAMAGE_MARKER_FILE).unlink()
                report.problems.append("the ledger is sound; the damage marker was removed")
            else:
                report.problems.append("the ledger is sound; nothing to repair")
            return report
        report.local_height = rebuilt.head_height
        asyncio.run(_fetch_from_peers(rebuilt, genesis, peers, report))
        report.head_height = rebuilt.head_height
        if rebuilt.head_height < check.target_height:
            report.problems.append(
                f"the rebuilt ledger reaches block {rebuilt.head_height}, but this node "
                f"committed up to {check.target_height}; nothing was changed"
            )
            return report
        _carry_votes_over(genesis, check, rebuilt)
        rebuilt.close()
        report.kept_at = _replace_folder(path, scratch / "ledger")
        report.repaired = True
        return report
    finally:
        rebuilt.close()  # closing twice is harmless
        shutil.rmtree(scratch, ignore_errors=True)


async def _fetch_from_peers(
    rebuilt: Store, genesis: Genesis, peers: PeerSource, report: RepairReport
) -> None:
    """Fetch and commit blocks after the rebuilt head from the peers, as far as they go."""
    # Imported here: only a repair talks to peers from outside a running node.
    from provledger.node.peers import PeerNetwork, PeerRequestError
    from provledger.node.tls import load_tls_material, peer_trust

    if not peers.peers or peers.tls_dir is None:
        report.problems.append("this node has no peers in its config to fetch blocks from")
        return
    history = validator_history(rebuilt, genesis.validator_set)
    height = rebuilt.head_height + 1
    material = load_tls_material(peers.tls_dir)
    network = PeerNetwork(
        peers.node_id,
        peers.peers,
        material,
        history.validator_ids_from(height),
        trust=peer_trust(material, history.tls_cas_from(height), every_root=history.every_tls_ca()),
    )
    app = LedgerApplication(genesis, rebuilt, peers.node_id)

    async def write(executed: ExecutedBlock, certificate: ledger_pb2.CommitCertificate) -> None:
        rebuilt.commit_block(executed, certificate)

    usable = set(peers.peers)
    try:
        while usable:
            statuses = {peer_id: await network.peer_status(peer_id) for peer_id in sorted(usable)}
            ahead = sorted(
                (status.height, peer_id)
                for peer_id, status in statuses.items()
                if status is not None and status.height > rebuilt.head_height
            )
            for peer_id, status in statuses.items():
                if status is None:
                    report.problems.append(f"peer {peer_id} did not answer")
                    usable.discard(peer_id)
            if not ahead:
                return
            peer_id = ahead[-1][1]
            try:
                synced = await network.fetch_blocks(
                    peer_id, rebuilt.head_height + 1, SYNC_BATCH_BLOCKS_MAX
                )
            except PeerRequestError as error:
                report.problems.append(str(error))
                usable.discard(peer_id)
                continue
            committed = 0
            for item in synced:
                try:
                    executed = await app.commit(item.block, item.certificate, write, synced=True)
                except Rejected as rejection:
                    report.problems.append(f"peer {peer_id} sent a bad block: {rejection}")
                    break
                if executed is not None:
                    committed += 1
            report.fetched[peer_id] = report.fetched.get(peer_id, 0) + committed
            if committed < len(synced) or not synced:
                usable.discard(peer_id)  # a bad block, or none at a height it claims
    finally:
        await network.stop()


def _carry_votes_over(genesis: Genesis, check: CheckReport, rebuilt: Store) -> None:
    """What this validator signed above the rebuilt head, from the damaged folder's vote log
    (or its salvaged copy), as far as it can be read."""
    try:
        source = Store(check.examined, genesis, create=False, examine=True)
    except StoreError as error:
        log.warning("the vote log in %s cannot be read (%s)", check.examined, error)
        return
    try:
        start = schema.signed_messages_from(rebuilt.head_height + 1)
        entries = []
        try:
            for key, value in source.entries(start=start):
                if not key.startswith(schema.CONSENSUS_PREFIX):
                    break
                entries.append((key, value))
        except StoreDamaged as damage:
            log.warning("the vote log is damaged (%s); carrying over what was read", damage)
        rebuilt.save_signed_entries(entries)
    finally:
        source.close()


def _replace_folder(path: Path, rebuilt_path: Path) -> Path:
    """Move the damaged folder aside (kept, for a post-mortem) and the rebuilt one in."""
    number = 1
    while (kept := path.with_name(f"{path.name}.damaged-{number}")).exists():
        number += 1
    path.rename(kept)
    rebuilt_path.rename(path)
    return kept
