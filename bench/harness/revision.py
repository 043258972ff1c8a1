"""Benchmarking a committed revision instead of the working tree (`--source REV`).

On a machine several people work on, the working tree changes under a benchmark. With
`--source REV` the benchmark extracts REV's packages (`git archive`, laid out as
pyproject.toml's `package-dir` maps them) into a temporary folder and runs itself again with
that folder first on PYTHONPATH, which precedes the editable install's finder: the nodes,
the load streams and the block watchers all run REV's code. The benchmark itself (bench/)
and the report it writes are the working tree's.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

from harness import REPO_ROOT, BenchmarkError
from harness.machine import SOURCE_ENV

PACKAGE_DIRS = ("proto/provledger", "protocol", "node", "cli")  # pyproject's package-dir
SOURCE_OPTION = "--source"


def extract_revision(revision: str, directory: Path) -> tuple[Path, str]:
    """`revision`'s packages, extracted into `directory` and laid out as an import root;
    (that root, the commit's short hash)."""
    git = ["git", "-C", str(REPO_ROOT)]
    try:
        commit = subprocess.run(
            [*git, "rev-parse", "--short", "--verify", f"{revision}^{{commit}}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        archive = subprocess.run(
            [*git, "archive", "--format=tar", commit, "--", *PACKAGE_DIRS],
            capture_output=True,
            check=True,
        ).stdout
    except subprocess.CalledProcessError as error:
        stderr = error.stderr.decode() if isinstance(error.stderr, bytes) else error.stderr
        raise BenchmarkError(f"cannot extract {revision!r}: {stderr.strip()}") from None
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(directory, filter="data")
    package = directory / "proto" / "provledger"
    for name in ("protocol", "node", "cli"):
        (directory / name).rename(package / name)
    return directory / "proto", commit


def run_revision(script: Path, revision: str, argv: Sequence[str]) -> int:
    """Run `script` again with `argv` (without --source) and `revision`'s code first on the
    import path; its exit code. The working tree is not touched."""
    directory = Path(tempfile.mkdtemp(prefix="provledger-source-"))
    try:
        import_root, commit = extract_revision(revision, directory)
        print(f"benchmarking commit {commit} (extracted to {directory})", flush=True)
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(import_root), environment.get("PYTHONPATH")])
        )
        environment[SOURCE_ENV] = commit
        command = [sys.executable, str(script), *without_source_option(argv)]
        return subprocess.run(command, env=environment, check=False).returncode
    except BenchmarkError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def without_source_option(argv: Sequence[str]) -> list[str]:
    remaining, skip = [], False
    for argument in argv:
        if skip:
            skip = False
        elif argument == SOURCE_OPTION:
            skip = True
        elif not argument.startswith(f"{SOURCE_OPTION}="):
            remaining.append(argument)
    return remaining


def running_revision() -> str | None:
    """The commit being benchmarked when this process is the re-run of `run_revision`; it
    exits if the node code would still come from the working tree."""
    commit = os.environ.get(SOURCE_ENV)
    if commit:
        import provledger.node

        node_package = Path(provledger.node.__file__).resolve()
        if REPO_ROOT / "node" in node_package.parents:
            raise SystemExit(f"--source: the node code still comes from {node_package}")
    return commit or None
