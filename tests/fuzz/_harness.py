"""What every fuzz target shares: the property's vocabulary, the hypothesis profiles, and the
tally a long run reports.

The property, for every target: bad input gets a typed, expected error (a `CodedError`, an
HTTP 4xx JSON error, a gRPC status other than UNKNOWN and INTERNAL) and never an unexpected
exception, a 500, a hang or a state change; valid input is accepted. A target raises `Finding`
when it sees the property broken.

A finding this suite has recorded (`RECORDED_FINDINGS`, each with a strict-xfail regression
test in test_fuzz_findings.py) is recognised by the target that meets it, which calls
`recorded(name)` instead of raising: a long run keeps looking for new findings rather than
stopping at a known one, and the tally says how often each was met. When a fix lands, the
recogniser goes with the xfail mark, and the property covers the case again.

Hypothesis profiles, chosen by the environment variable PROVLEDGER_FUZZ_PROFILE:
- "bounded" (the default, what `make test` runs): a fixed, modest number of examples per test,
  derandomized, no example database, no deadline: the same examples every run;
- "long" (`make fuzz`): many examples per call, a fresh random seed each call; the runner
  (tests/fuzz/run.py) calls the tests again and again until its time budget is spent.
"""

from __future__ import annotations

import functools
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings

F = TypeVar("F", bound=Callable[..., Any])

PROFILE_VARIABLE = "PROVLEDGER_FUZZ_PROFILE"
# A single input taking longer than this is a hang (a finding), not merely slow.
HANG_SECONDS = 10.0

_HEALTH_CHECKS = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.filter_too_much,
    HealthCheck.large_base_example,
]
settings.register_profile(
    "fuzz-bounded",
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=_HEALTH_CHECKS,
)
settings.register_profile(
    "fuzz-long",
    max_examples=2_000,
    derandomize=False,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=_HEALTH_CHECKS,
)


def long_run() -> bool:
    return os.environ.get(PROFILE_VARIABLE, "bounded") == "long"


def fuzz_settings(examples: int) -> settings:
    """The settings of a fuzz test: `examples` in the bounded profile, the long profile's
    count in a long run."""
    if long_run():
        return settings(settings.get_profile("fuzz-long"))
    return settings(settings.get_profile("fuzz-bounded"), max_examples=examples)


# --- findings ------------------------------------------------------------------------------


class Finding(AssertionError):
    """The property is broken: `kind` names how (for grouping), the message says where and
    with which input."""

    def __init__(self, kind: str, message: str, where: str = "") -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.where = where  # for an unexpected exception: its type and innermost frame


# Findings of this suite, each with a strict-xfail regression test in test_fuzz_findings.py.
# Both findings of the first long runs are fixed (a proposal far ahead of the validator's
# clock, another base64url spelling of a token): their regression tests are plain tests now.
RECORDED_FINDINGS: dict[str, str] = {}

# What a run met: executions and outcomes per target, and recorded findings.
TALLY: Counter[str] = Counter()
RECORDED_HITS: Counter[str] = Counter()


def count(target: str, outcome: str) -> None:
    TALLY[f"{target}:executions"] += 1
    TALLY[f"{target}:{outcome}"] += 1


def recorded(name: str) -> None:
    """A finding this suite already recorded (and tests as a strict xfail) was met again."""
    if name not in RECORDED_FINDINGS:
        raise KeyError(name)
    RECORDED_HITS[name] += 1


def unexpected(error: BaseException, what: str) -> Finding:
    where = _where(error)
    message = f"{type(error).__name__}: {error} ({where}) on {what}"
    return Finding("unexpected_exception", message, f"{type(error).__name__} at {where}")


def _where(error: BaseException) -> str:
    """The innermost frame of the traceback in provledger's own code (else the innermost)."""
    frames = []
    traceback = error.__traceback__
    while traceback is not None:
        frames.append(traceback.tb_frame)
        traceback = traceback.tb_next
    ours = [f for f in frames if "/tests/" not in f.f_code.co_filename]
    for frame in reversed(ours or frames):
        name = frame.f_code.co_filename
        if "provledger" in name or "/protocol/" in name or "/node/" in name:
            return f"{_short(name)}:{frame.f_lineno} in {frame.f_code.co_name}"
    frame = (ours or frames)[-1] if frames else None
    if frame is None:
        return "?"
    return f"{_short(frame.f_code.co_filename)}:{frame.f_lineno} in {frame.f_code.co_name}"


def _short(path: str) -> str:
    for marker in ("/protocol/", "/node/", "/cli/", "/tests/", "site-packages/"):
        if marker in path:
            return marker.strip("/") + "/" + path.split(marker, 1)[1]
    return path


@contextmanager
def timed(what: Callable[[], str]) -> Iterator[None]:
    """Raise a `hang` finding when the block takes longer than HANG_SECONDS."""
    started = time.monotonic()
    yield
    elapsed = time.monotonic() - started
    if elapsed > HANG_SECONDS:
        raise Finding("hang", f"{elapsed:.1f} s (limit {HANG_SECONDS} s) on {what()}")


def hang_checked(check: F) -> F:
    """`check`, raising a `hang` finding when one call takes longer than HANG_SECONDS."""

    @functools.wraps(check)
    def checked(*args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        result = check(*args, **kwargs)
        elapsed = time.monotonic() - started
        if elapsed > HANG_SECONDS:
            shown = ", ".join(
                [repr(a)[:200] for a in args] + [f"{k}={v!r}"[:200] for k, v in kwargs.items()]
            )
            raise Finding(
                "hang", f"{elapsed:.1f} s (limit {HANG_SECONDS} s): {check.__name__}({shown})"
            )
        return result

    return checked  # type: ignore[return-value]


def show(data: bytes, limit: int = 160) -> str:
    """Bytes for a report: hex, cut at `limit` bytes."""
    text = data[:limit].hex()
    return text + (f"...(+{len(data) - limit} bytes)" if len(data) > limit else "")
