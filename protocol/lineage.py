"""The one lineage traversal: breadth-first over derivation edges, from one asset, upstream
(towards parents) or downstream (towards what was derived from it).

Every interface walks lineage here: the gRPC GetLineage call, the REST /v1/lineage pages, the
PROV-JSON export and the lineage evidence bundle. Judging whether an asset descends from
some others (a security assessment's scope, protocol/customs.py) walks up here too
(`reaches_any`). Redaction is not done here but by the access
policy (protocol/access.py) on the records this returns, the same way for each of them.

Order: the root is node 0; then breadth-first, a node's neighbours in id order (the store
keeps edges sorted). Paging: a page holds nodes `offset .. offset + limit - 1` of that order
and the edges leading away from them, so the pages together hold the whole graph once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from provledger.protocol.errors import check
from provledger.v1 import state_pb2


class LineageReader(Protocol):
    def load(self, kind: str, record_id: str) -> Any: ...

    def lineage_neighbours(self, asset_id: str, upstream: bool) -> Iterable[str]:
        """The parents (`upstream`) or children of an asset, in id order."""
        ...


@dataclass(frozen=True)
class LineageQuery:
    """Nodes `offset .. offset + limit - 1` of the lineage of `asset_id`, within `depth` edges
    of the root and at most `total_max` nodes in all."""

    asset_id: str
    upstream: bool
    depth: int
    limit: int
    total_max: int
    offset: int = 0


@dataclass(frozen=True)
class LineagePage:
    assets: list[state_pb2.AssetRecord]
    edges: list[tuple[str, str]]  # (parent, child)
    truncated: bool  # the depth limit hid lineage of a node on this page, or total_max cut it
    next_offset: int | None  # where the next page starts; None when this is the last

    @property
    def complete(self) -> bool:
        """Whether this page holds the whole graph within the depth."""
        return not self.truncated and self.next_offset is None

    def closed(self) -> LineagePage:
        """This page with only the edges between its own nodes: a graph on its own."""
        present = {asset.asset_id for asset in self.assets}
        edges = [(p, c) for p, c in self.edges if p in present and c in present]
        return LineagePage(self.assets, edges, self.truncated, self.next_offset)


def lineage_page(reader: LineageReader, query: LineageQuery) -> LineagePage:
    """The page of the lineage graph that `query` asks for.

    `truncated` says that the depth limit hid lineage of a node on this page, or that the
    graph has more than `total_max` nodes. Earlier pages' nodes are walked again (their
    neighbours read, not their records): a page costs O(offset + limit) index reads."""
    asset_id, upstream, depth, offset = query.asset_id, query.upstream, query.depth, query.offset
    check(depth >= 0 and offset >= 0 and query.limit > 0, "bad lineage page bounds")
    if reader.load("asset", asset_id) is None:
        return LineagePage(assets=[], edges=[], truncated=False, next_offset=None)
    end = min(offset + query.limit, query.total_max)
    seen = {asset_id}
    queue: deque[tuple[str, int]] = deque([(asset_id, 0)])
    assets: list[state_pb2.AssetRecord] = []
    edges: list[tuple[str, str]] = []
    truncated = False
    index = 0
    while queue and index < end:
        current, level = queue.popleft()
        on_page = index >= offset
        for neighbour in reader.lineage_neighbours(current, upstream):
            if neighbour not in seen:
                if level == depth:
                    truncated = truncated or on_page
                    continue
                seen.add(neighbour)
                queue.append((neighbour, level + 1))
            if on_page:
                edges.append((neighbour, current) if upstream else (current, neighbour))
        if on_page:
            record = reader.load("asset", current)
            check(record is not None, f"lineage edge to unknown asset {current!r}")
            assets.append(record)
        index += 1
    next_offset = None
    if queue:
        if index < query.total_max:
            next_offset = index
        else:
            truncated = True
    return LineagePage(assets=assets, edges=edges, truncated=truncated, next_offset=next_offset)


def reaches_any(
    load: Callable[[str, str], Any], asset_id: str, targets: Collection[str], ancestors_max: int
) -> bool:
    """Whether `asset_id`, or one of its ancestors (breadth-first over AssetRecord.parent_ids),
    is in `targets`, looking at no more than `ancestors_max` ancestors: a target reached only
    beyond them counts as not reached, so a judgement resting on this errs towards refusing."""
    if asset_id in targets:
        return True
    seen = {asset_id}
    queue: deque[str] = deque([asset_id])
    while queue:
        record = load("asset", queue.popleft())
        for parent_id in record.parent_ids if record is not None else ():
            if parent_id in seen:
                continue
            if len(seen) - 1 >= ancestors_max:
                return False
            if parent_id in targets:
                return True
            seen.add(parent_id)
            queue.append(parent_id)
    return False
