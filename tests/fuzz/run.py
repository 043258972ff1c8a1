"""Long fuzz runs (`make fuzz`): each target in turn, for a time budget, with atheris
(coverage-guided, libFuzzer) when it is installed and hypothesis otherwise (or both).

python tests/fuzz/run.py                                  # every target, 600 s each, auto
python tests/fuzz/run.py --targets tokens --seconds 60 --engine hypothesis
python tests/fuzz/run.py --engine both --work-dir /tmp/provledger-fuzz

Each target runs in a process of its own, one at a time. A finding does not stop a run: it is
recorded (grouped by kind and place, with its first input) and the run goes on. At the end of
each target the runner prints its executions, its outcomes, the recorded findings it met
(tallied, see tests/fuzz/_harness.py) and every new finding; the exit code is 1
when there is a new finding. The work folder keeps atheris' corpus between runs, libFuzzer's
log, the inputs of findings and a summary.json.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

TARGETS = ("events", "blocks", "tokens", "bundles", "rest", "grpc")
ENGINES = ("auto", "atheris", "hypothesis", "both")
RESTARTS_MAX = 20  # libFuzzer stops on a timeout or a crash outside Python: start it again
SAVE_INTERVAL_S = 2.0


def atheris_available() -> bool:
    try:
        importlib.import_module("atheris")
    except ImportError:
        return False
    return True


# --- the child: one target, one engine ---------------------------------------------------


class Recorder:
    """What one child process saw, saved to `result` as JSON now and then (libFuzzer ends the
    process without returning to Python, so nothing waits for the end)."""

    def __init__(self, result: Path, inputs: Path, target: str, engine: str) -> None:
        self.result = result
        self.inputs = inputs
        self.target = target
        self.engine = engine
        self.started = time.monotonic()
        self.executions = 0
        self.findings: dict[str, dict[str, Any]] = {}
        self._saved = 0.0

    def finding(self, error: BaseException, data: bytes | None = None) -> None:
        from fuzz._harness import Finding, unexpected

        if not isinstance(error, Finding):
            error = unexpected(error, "the fuzz harness")
        key = f"{error.kind}: {error.where}" if error.where else error.kind
        entry = self.findings.get(key)
        if entry is None:
            notes = "\n".join(getattr(error, "__notes__", []))
            entry = {
                "kind": error.kind,
                "where": error.where,
                "message": str(error)[:4000],
                "example": notes[:4000],
                "count": 0,
                "first_after_s": round(time.monotonic() - self.started, 1),
                "input": None,
            }
            if data is not None:
                self.inputs.mkdir(parents=True, exist_ok=True)
                name = f"{self.target}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.bin"
                (self.inputs / name).write_bytes(data)
                entry["input"] = str(self.inputs / name)
            self.findings[key] = entry
            self.save(force=True)
        entry["count"] += 1

    def save(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._saved < SAVE_INTERVAL_S:
            return
        self._saved = now
        from fuzz._harness import RECORDED_HITS, TALLY

        prefix = f"{self.target}:"
        document = {
            "target": self.target,
            "engine": self.engine,
            "seconds": round(now - self.started, 1),
            "executions": self.executions,
            "outcomes": {k.removeprefix(prefix): v for k, v in TALLY.items()},
            "recorded": dict(RECORDED_HITS),
            "findings": self.findings,
        }
        temporary = self.result.with_suffix(".tmp")
        temporary.write_text(json.dumps(document, indent=1))
        temporary.replace(self.result)


def child_hypothesis(target: str, seconds: float, recorder: Recorder) -> None:
    os.environ["PROVLEDGER_FUZZ_PROFILE"] = "long"
    module = importlib.import_module(f"fuzz.test_fuzz_{target}")
    from fuzz._harness import TALLY

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for test in module.HYPOTHESIS_TESTS:
            try:
                test()
            except Exception as error:  # a finding, shrunk by hypothesis
                recorder.finding(error)
            recorder.executions = TALLY[f"{target}:executions"]
            recorder.save()
            if time.monotonic() >= deadline:
                break
    recorder.save(force=True)


def child_atheris(
    target: str, seconds: float, recorder: Recorder, corpus: Path, artifacts: Path
) -> None:
    import atheris

    with atheris.instrument_imports(include=["provledger"]):
        module = importlib.import_module(f"fuzz.test_fuzz_{target}")
        seeds = module.atheris_corpus()  # builds the seeds, importing what they need
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        path = corpus / f"seed-{hashlib.sha256(seed).hexdigest()[:16]}"
        if not path.exists():
            path.write_bytes(seed)

    def one_input(data: bytes) -> None:
        recorder.executions += 1
        try:
            module.atheris_one_input(data)
        except Exception as error:
            recorder.finding(error, data)
        recorder.save()

    longest = max(len(seed) for seed in seeds)
    atheris.Setup(
        [
            sys.argv[0],
            str(corpus),
            f"-max_total_time={max(int(seconds), 1)}",
            "-timeout=60",
            "-rss_limit_mb=4096",
            f"-max_len={max(4096, 2 * longest)}",
            "-print_final_stats=1",
            f"-artifact_prefix={artifacts}/",
        ],
        one_input,
    )
    atheris.Fuzz()


# --- the parent: targets in turn -----------------------------------------------------------


def run_target(target: str, engine: str, seconds: float, work: Path) -> dict[str, Any]:
    """Run one target with one engine for `seconds` in child processes; its merged result."""
    folder = work / target / engine
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "log.txt"
    results: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    stops: list[str] = []
    with log_path.open("a") as log:
        for attempt in range(RESTARTS_MAX):
            remaining = deadline - time.monotonic()
            if remaining < 5 and attempt > 0:
                break
            result = folder / f"result-{attempt}.json"
            result.unlink(missing_ok=True)
            shutil.rmtree(folder / "tmp", ignore_errors=True)
            command = [
                sys.executable,
                __file__,
                "--child",
                engine,
                "--targets",
                target,
                "--seconds",
                str(max(remaining, 1)),
                "--work-dir",
                str(work),
                "--result",
                str(result),
            ]
            log.write(f"\n=== {' '.join(command)}\n")
            log.flush()
            code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, cwd=TESTS.parent)
            if result.exists():
                results.append(json.loads(result.read_text()))
            if code == 0 or time.monotonic() >= deadline - 5:
                break
            stops.append(f"the {engine} process stopped with exit code {code} (see {log_path})")
    merged = _merge(target, engine, results)
    merged["stops"] = stops
    if engine == "atheris":  # libFuzzer's own count includes what the last save missed
        merged["libfuzzer_executions"] = _libfuzzer_executions(log_path)
        merged["executions"] = max(merged["executions"], merged["libfuzzer_executions"])
    return merged


def _merge(target: str, engine: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {
        "target": target,
        "engine": engine,
        "seconds": 0.0,
        "executions": 0,
        "outcomes": {},
        "recorded": {},
        "findings": {},
    }
    for result in results:
        merged["seconds"] += result["seconds"]
        merged["executions"] += result["executions"]
        for field in ("outcomes", "recorded"):
            for key, value in result[field].items():
                merged[field][key] = merged[field].get(key, 0) + value
        for key, entry in result["findings"].items():
            if key in merged["findings"]:
                merged["findings"][key]["count"] += entry["count"]
            else:
                merged["findings"][key] = entry
    return merged


def _libfuzzer_executions(log_path: Path) -> int:
    """The executions libFuzzer reported in its final statistics (summed over restarts)."""
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    return sum(int(n) for n in re.findall(r"stat::number_of_executed_units:\s*(\d+)", text))


def report(merged: dict[str, Any]) -> str:
    from fuzz._harness import RECORDED_FINDINGS

    seconds = merged["seconds"] or 1
    lines = [
        f"== {merged['target']} ({merged['engine']}): {merged['executions']} executions in "
        f"{merged['seconds']:.0f} s ({merged['executions'] / seconds:.0f}/s)"
    ]
    if merged.get("libfuzzer_executions"):
        lines.append(f"   libFuzzer's count: {merged['libfuzzer_executions']} executions")
    outcomes = {k: v for k, v in merged["outcomes"].items() if k != "executions"}
    lines.append("   outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    for name, hits in sorted(merged["recorded"].items()):
        lines.append(f"   recorded finding (xfail): {RECORDED_FINDINGS[name]} (met {hits} times)")
    for stop in merged.get("stops", []):
        lines.append(f"   {stop}")
    findings = merged["findings"]
    lines.append(f"   new findings: {len(findings)}")
    for key, entry in sorted(findings.items()):
        lines.append(
            f"   - [{key}] met {entry['count']} times, first after {entry['first_after_s']} s"
        )
        lines.append(f"     {entry['message'][:1500]}")
        if entry["example"]:
            lines.append("     " + entry["example"][:1500].replace("\n", "\n     "))
        if entry["input"]:
            lines.append(f"     input: {entry['input']}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--seconds", type=float, default=600.0, help="per target and engine")
    parser.add_argument("--engine", choices=ENGINES, default="auto")
    parser.add_argument(
        "--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "provledger-fuzz"
    )
    parser.add_argument("--child", choices=("atheris", "hypothesis"), help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    targets = [t for t in args.targets.split(",") if t]
    for target in targets:
        if target not in TARGETS:
            parser.error(f"unknown target {target!r}; the targets are {', '.join(TARGETS)}")
    work: Path = args.work_dir.resolve()

    if args.child:
        [target] = targets
        # The target's LevelDB store goes here: libFuzzer ends the process without the exit
        # handlers that would remove it, so the parent clears the folder before each child.
        tempfile.tempdir = str(work / target / args.child / "tmp")
        Path(tempfile.tempdir).mkdir(parents=True, exist_ok=True)
        inputs = work / target / args.child / "findings"
        recorder = Recorder(args.result, inputs, target, args.child)
        if args.child == "hypothesis":
            child_hypothesis(target, args.seconds, recorder)
        else:
            folder = work / target / "atheris"
            child_atheris(target, args.seconds, recorder, folder / "corpus", folder / "crashes")
        return 0

    engines = {
        "auto": ["atheris"] if atheris_available() else ["hypothesis"],
        "atheris": ["atheris"],
        "hypothesis": ["hypothesis"],
        "both": ["atheris", "hypothesis"],
    }[args.engine]
    if "atheris" in engines and not atheris_available():
        print("atheris is not installed: running the hypothesis targets only")
        engines = ["hypothesis"]
    print(
        f"fuzzing {', '.join(targets)} with {' and '.join(engines)}, {args.seconds:.0f} s each; "
        f"work folder {work}",
        flush=True,
    )
    summary = []
    for target in targets:
        for engine in engines:
            merged = run_target(target, engine, args.seconds, work)
            summary.append(merged)
            print(report(merged), flush=True)
    work.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        (work / "summary.json").write_text(json.dumps(summary, indent=1))
    new = sum(len(m["findings"]) for m in summary)
    print(f"{new} new finding(s) in {len(summary)} run(s); summary: {work / 'summary.json'}")
    return 1 if new else 0


if __name__ == "__main__":
    sys.exit(main())
