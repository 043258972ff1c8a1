"""Run `provledger node run` under cProfile, every Python thread included, for the benchmark.

`python -m cProfile -m provledger.cli.main node run ...` only sees the main thread, but the node
commits each block in a worker thread (`asyncio.to_thread(store.commit_block, ...)`), so the
LevelDB write would be invisible. Here every thread started through `threading` gets its own
profiler (cProfile is not thread-safe across threads), and on exit they are merged with the
main thread's into one pstats file.

The clock is per-thread CPU time by default (`--clock cpu`, `time.thread_time`): the figures say
where the node spends CPU, not where it waits, and a thread's time is not inflated while it
waits for the GIL. `--clock wall` uses `time.perf_counter` instead (idle time then shows up in
the event loop's `select`).

The node stops gracefully on SIGTERM (node/server.py installs the handler on its event loop);
the handler installed here only covers the moments before the loop exists or after it closed,
turning SIGTERM into KeyboardInterrupt so the stats are still written. Threads that are still
running at exit (gRPC's daemon poller) are left out: their profilers cannot be stopped safely
from another thread.

Python 3.11 does not name OS threads, and a thread started from C (LevelDB's compaction)
inherits its creator's name, so from outside every such thread is "python". To tell them
apart, each Python thread writes "native thread id<TAB>name" to OUT.threads as it starts;
a "python" thread that is not listed there was started from C.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import signal
import sys
import threading
import time
from pathlib import Path


def _interrupt(signal_number: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the node's config.toml")
    parser.add_argument("--out", required=True, help="where to write the pstats file")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    args = parser.parse_args()

    # cProfile's built-in timer (no argument) is its cheapest: wall time, like perf_counter.
    def new_profile() -> cProfile.Profile:
        return cProfile.Profile(time.thread_time) if args.clock == "cpu" else cProfile.Profile()

    finished_profiles: list[cProfile.Profile] = []
    profiles_lock = threading.Lock()
    original_run = threading.Thread.run

    threads_path = Path(f"{args.out}.threads")
    threads_path.write_text(f"{threading.get_native_id()}\tmain\n")

    def profiled_run(self: threading.Thread) -> None:  # replaces Thread.run, hence `self`
        with profiles_lock, threads_path.open("a") as threads_file:
            threads_file.write(f"{threading.get_native_id()}\t{self.name}\n")
        profile = new_profile()
        profile.enable()
        try:
            original_run(self)
        finally:
            profile.disable()
            with profiles_lock:
                finished_profiles.append(profile)

    threading.Thread.run = profiled_run  # type: ignore[method-assign]
    signal.signal(signal.SIGTERM, _interrupt)

    from provledger.cli.main import main as provledger_main

    main_profile = new_profile()
    exit_code = 1
    main_profile.enable()
    try:
        exit_code = provledger_main(["node", "run", "--config", args.config])
    except KeyboardInterrupt:
        exit_code = 130
    finally:
        main_profile.disable()
        stats = pstats.Stats(main_profile)
        with profiles_lock:
            for profile in finished_profiles:
                stats.add(profile)
            thread_count = len(finished_profiles)
        stats.dump_stats(args.out)
        print(
            f"profile written to {args.out} (main thread + {thread_count} finished threads, "
            f"{args.clock} clock)",
            file=sys.stderr,
        )
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
