"""Whether a node is ready to serve: the ONE judgement, pure (a snapshot and settings in, an
answer out).

Liveness and readiness are separate. A node is *live* while its process serves at all (REST
`/v1/health/live`, the operations listener's `/live`, gRPC health of
`provledger.v1.LedgerService`). It is *ready* when what it serves can be trusted to be current
and sound; every server asks `judge` and nothing else (REST `/v1/health/ready`, the operations
listener's `/ready`, gRPC health of the overall service ""). The snapshot is taken by
node/operations.py (`NodeProbe`), on demand; this module reads no clock and no state.

Not ready, each with its reason code (all that apply are listed, in this order):
- `starting`: the node has not finished starting (servers, peers, consensus);
- `catching_up`: it is fetching committed blocks it lacks from a peer (block sync);
- `behind_peers`: the highest height a peer reported is more than `lag_blocks_max` blocks
  above this node's head;
- `no_quorum`: for more than `quorum_silence_s_max` seconds it has neither committed a block
  nor been connected to a quorum of the validators (itself included when it is one);
- `store_damaged`: its store found damage while serving (node/store.py; `node check`);
- `fork_seen`: a peer showed it a quorum-signed block that conflicts with its own
  (node/forks.py; the proofs at `/v1/forks`).
"""

from __future__ import annotations

from dataclasses import dataclass

# The [operations] defaults (node/config.py documents them).
READY_LAG_BLOCKS_MAX_DEFAULT = 10
READY_QUORUM_SILENCE_S_MAX_DEFAULT = 30.0

REASON_CODES = (
    "starting",
    "catching_up",
    "behind_peers",
    "no_quorum",
    "store_damaged",
    "fork_seen",
)


@dataclass(frozen=True)
class ReadinessSettings:
    lag_blocks_max: int = READY_LAG_BLOCKS_MAX_DEFAULT
    quorum_silence_s_max: float = READY_QUORUM_SILENCE_S_MAX_DEFAULT

    def __post_init__(self) -> None:
        if self.lag_blocks_max < 0:
            raise ValueError("ready_lag_blocks_max must be 0 or more")
        if self.quorum_silence_s_max <= 0:
            raise ValueError("ready_quorum_silence_s_max must be more than 0")


@dataclass(frozen=True)
class NodeSnapshot:
    """What readiness is judged on, taken at one moment (node/operations.py `NodeProbe`)."""

    started: bool  # the start sequence is done (servers, peers, consensus)
    syncing: bool  # block sync is fetching blocks from a peer
    head_height: int
    highest_peer_height: int  # the highest head a peer reported; 0 before any did
    validators_connected: int  # of the current validator set, itself included if it is one
    quorum_size: int  # of the current validator set
    seconds_since_quorum: float  # since the last commit or the last moment a quorum connected
    store_damage: str | None  # what the store found, if it found damage while serving
    forks_seen: int

    @property
    def sync_lag_blocks(self) -> int:
        return max(0, self.highest_peer_height - self.head_height)


@dataclass(frozen=True)
class Reason:
    code: str  # one of REASON_CODES
    detail: str


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reasons: tuple[Reason, ...]

    def as_json(self) -> dict[str, object]:
        return {
            "ready": self.ready,
            "reasons": [{"code": r.code, "detail": r.detail} for r in self.reasons],
        }


def judge(snapshot: NodeSnapshot, settings: ReadinessSettings) -> Readiness:
    """Ready, or every reason why not (see the module docstring)."""
    reasons: list[Reason] = []
    if not snapshot.started:
        reasons.append(Reason("starting", "the node is starting"))
    if snapshot.syncing:
        reasons.append(
            Reason(
                "catching_up",
                f"fetching committed blocks from a peer (head {snapshot.head_height}, highest "
                f"peer {snapshot.highest_peer_height})",
            )
        )
    if snapshot.sync_lag_blocks > settings.lag_blocks_max:
        reasons.append(
            Reason(
                "behind_peers",
                f"{snapshot.sync_lag_blocks} blocks behind the highest height a peer reported "
                f"({snapshot.highest_peer_height}); at most {settings.lag_blocks_max} allowed",
            )
        )
    if (
        snapshot.validators_connected < snapshot.quorum_size
        and snapshot.seconds_since_quorum > settings.quorum_silence_s_max
    ):
        reasons.append(
            Reason(
                "no_quorum",
                f"no commit and {snapshot.validators_connected} of the {snapshot.quorum_size} "
                f"validators a quorum needs connected for {snapshot.seconds_since_quorum:.0f} s "
                f"(more than {settings.quorum_silence_s_max:g} s)",
            )
        )
    if snapshot.store_damage is not None:
        reasons.append(Reason("store_damaged", f"the store is damaged: {snapshot.store_damage}"))
    if snapshot.forks_seen:
        reasons.append(
            Reason(
                "fork_seen",
                f"{snapshot.forks_seen} conflicting quorum-signed blocks seen (see /v1/forks)",
            )
        )
    return Readiness(ready=not reasons, reasons=tuple(reasons))
