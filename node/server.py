"""The node process: load config, genesis and keys, open the store, serve gRPC, produce blocks.

`run(config)` blocks until SIGINT or SIGTERM, then stops the server gracefully and closes the
store. A `kill -9` at any moment is also safe: every block is one synced LevelDB batch.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from provledger.node.config import NodeConfig
from provledger.node.grpc_api import LedgerService
from provledger.node.keyfile import load_key
from provledger.node.ledger import LedgerNode, SoloProducer
from provledger.node.store import Store
from provledger.protocol.genesis import parse_genesis
from provledger.protocol.limits import GRPC_CONCURRENT_STREAMS_MAX, GRPC_MESSAGE_SIZE_BYTES_MAX
from provledger.v1 import api_pb2, api_pb2_grpc

log = logging.getLogger("provledger.node")

GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", GRPC_MESSAGE_SIZE_BYTES_MAX),
    ("grpc.max_send_message_length", GRPC_MESSAGE_SIZE_BYTES_MAX),
    ("grpc.max_concurrent_streams", GRPC_CONCURRENT_STREAMS_MAX),
    ("grpc.so_reuseport", 0),
]
SERVICE_NAME = api_pb2.DESCRIPTOR.services_by_name["LedgerService"].full_name


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


async def serve(config: NodeConfig, ready: asyncio.Event | None = None) -> None:
    genesis = parse_genesis(config.genesis_path.read_bytes())
    validator_key, _ = load_key(config.validator_key_path)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(config.data_dir, genesis)
    node = LedgerNode(genesis, store, config.node_id)
    producer = SoloProducer(node, validator_key, wall_clock_ms)

    server = grpc.aio.server(options=GRPC_OPTIONS)
    api_pb2_grpc.add_LedgerServiceServicer_to_server(LedgerService(node), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port(config.grpc_listen)
    if port == 0:
        store.close()
        raise OSError(f"cannot listen on {config.grpc_listen}")
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info(
        "node %s serving gRPC on %s; chain %s at height %d",
        config.node_id,
        config.grpc_listen,
        genesis.chain_id,
        store.head_height,
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    producing = asyncio.create_task(producer.run())
    stopping = asyncio.create_task(stop.wait())
    if ready is not None:
        ready.set()
    try:
        # A producer that fails is a bug: stop serving rather than accept events forever.
        await asyncio.wait((producing, stopping), return_when=asyncio.FIRST_COMPLETED)
    finally:
        log.info("node %s stopping", config.node_id)
        producer.stop()
        stopping.cancel()
        await health_servicer.enter_graceful_shutdown()
        await server.stop(grace=2)
        try:
            await producing  # re-raises the producer's failure, after a clean shutdown
        finally:
            store.close()


def run(config: NodeConfig) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(serve(config))
