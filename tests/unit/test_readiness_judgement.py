"""Readiness, the one judgement (node/readiness.py): every reason it gives, alone and together,
and the edges of its two settings; the [operations] config that sets them."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from provledger.node import readiness
from provledger.node.config import ConfigError, NodeConfig, render
from provledger.node.readiness import NodeSnapshot, ReadinessSettings, judge

SETTINGS = ReadinessSettings(lag_blocks_max=10, quorum_silence_s_max=30.0)
HEALTHY = NodeSnapshot(
    started=True,
    syncing=False,
    head_height=100,
    highest_peer_height=100,
    validators_connected=4,
    quorum_size=3,
    seconds_since_quorum=0.0,
    store_damage=None,
    forks_seen=0,
)


def codes(snapshot: NodeSnapshot, settings: ReadinessSettings = SETTINGS) -> list[str]:
    answer = judge(snapshot, settings)
    assert answer.ready == (not answer.reasons)
    return [reason.code for reason in answer.reasons]


def test_a_healthy_node_is_ready():
    answer = judge(HEALTHY, SETTINGS)
    assert answer.ready
    assert answer.as_json() == {"ready": True, "reasons": []}


# Each reason alone: the snapshot that shows it, and the code it gives.
CASES = {
    "starting": dataclasses.replace(HEALTHY, started=False),
    "catching_up": dataclasses.replace(HEALTHY, syncing=True),
    "behind_peers": dataclasses.replace(HEALTHY, highest_peer_height=111),
    "no_quorum": dataclasses.replace(HEALTHY, validators_connected=2, seconds_since_quorum=31.0),
    "store_damaged": dataclasses.replace(HEALTHY, store_damage="block 7 does not parse"),
    "fork_seen": dataclasses.replace(HEALTHY, forks_seen=1),
}


@pytest.mark.parametrize("code", sorted(CASES))
def test_each_reason_alone(code):
    answer = judge(CASES[code], SETTINGS)
    assert not answer.ready
    assert [reason.code for reason in answer.reasons] == [code]
    body = answer.as_json()
    assert body["ready"] is False
    assert body["reasons"][0]["code"] == code and body["reasons"][0]["detail"]


def test_every_reason_code_is_covered_and_listed():
    written = set(re.findall(r'Reason\(\s*"([a-z_]+)"', Path(readiness.__file__).read_text()))
    assert written == set(readiness.REASON_CODES) == set(CASES)


def test_every_reason_at_once_in_order():
    everything = NodeSnapshot(
        started=False,
        syncing=True,
        head_height=5,
        highest_peer_height=500,
        validators_connected=1,
        quorum_size=3,
        seconds_since_quorum=99.0,
        store_damage="damaged",
        forks_seen=2,
    )
    assert codes(everything) == list(readiness.REASON_CODES)


def test_lag_at_the_limit_is_ready_one_more_is_not():
    assert codes(dataclasses.replace(HEALTHY, highest_peer_height=110)) == []
    assert codes(dataclasses.replace(HEALTHY, highest_peer_height=111)) == ["behind_peers"]
    # A peer behind this node is no lag.
    assert codes(dataclasses.replace(HEALTHY, highest_peer_height=3)) == []
    assert dataclasses.replace(HEALTHY, highest_peer_height=3).sync_lag_blocks == 0
    strict = ReadinessSettings(lag_blocks_max=0, quorum_silence_s_max=30.0)
    assert codes(dataclasses.replace(HEALTHY, highest_peer_height=101), strict) == ["behind_peers"]


def test_quorum_silence_needs_both_no_quorum_and_the_time():
    short = dataclasses.replace(HEALTHY, validators_connected=2, seconds_since_quorum=30.0)
    assert codes(short) == []  # not more than the limit yet
    connected = dataclasses.replace(HEALTHY, validators_connected=3, seconds_since_quorum=600.0)
    assert codes(connected) == []  # a quorum is connected: idle, not silent
    assert codes(dataclasses.replace(short, seconds_since_quorum=30.5)) == ["no_quorum"]


def test_settings_are_bounded():
    with pytest.raises(ValueError, match="ready_lag_blocks_max"):
        ReadinessSettings(lag_blocks_max=-1)
    with pytest.raises(ValueError, match="ready_quorum_silence_s_max"):
        ReadinessSettings(quorum_silence_s_max=0)


def _config(tmp_path: Path, operations: str) -> Path:
    text = render("node-0", "genesis.json", "key.json", "127.0.0.1:7050") + operations
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_the_operations_config(tmp_path):
    plain = NodeConfig.load(_config(tmp_path, ""))
    assert plain.operations_listen is None
    assert plain.readiness == ReadinessSettings()
    rendered = render(
        "node-0", "g.json", "k.json", "127.0.0.1:7050", operations_listen="127.0.0.1:7350"
    )
    assert '[operations]\nlisten = "127.0.0.1:7350"' in rendered
    loaded = NodeConfig.load(
        _config(
            tmp_path,
            '\n[operations]\nlisten = "127.0.0.1:7350"\nready_lag_blocks_max = 3\n'
            "ready_quorum_silence_s_max = 12\n",
        )
    )
    assert loaded.operations_listen == "127.0.0.1:7350"
    assert loaded.readiness == ReadinessSettings(lag_blocks_max=3, quorum_silence_s_max=12.0)


@pytest.mark.parametrize(
    ("operations", "message"),
    [
        ('listen = "nowhere"', r"\[operations\] listen"),
        ("colour = 1", r"unknown \[operations\] settings \['colour'\]"),
        ('ready_lag_blocks_max = "ten"', "must be an integer"),
        ("ready_lag_blocks_max = -1", "ready_lag_blocks_max must be 0 or more"),
        ("ready_quorum_silence_s_max = true", "must be a number"),
        ("ready_quorum_silence_s_max = 0", "more than 0"),
    ],
)
def test_bad_operations_settings_are_refused(tmp_path, operations, message):
    with pytest.raises(ConfigError, match=message):
        NodeConfig.load(_config(tmp_path, f"\n[operations]\n{operations}\n"))
