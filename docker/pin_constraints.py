"""Write docker/constraints.txt: the exact versions, in this environment, of the node's runtime
dependencies (pyproject.toml's [project] dependencies) and of everything they need in turn.

    .venv/bin/python docker/pin_constraints.py

Run it after changing a dependency or its range, in an environment made by `make .venv/.installed`
(whose tests passed); tests/unit/test_docker.py checks that every runtime dependency is pinned
there at a version inside pyproject's range. The image installs with `pip install -c` it.
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
HEADER = (
    "# The versions the node's image installs (pip install -c docker/constraints.txt):\n"
    "# pyproject.toml's runtime dependencies and what they need, as tested. Written by\n"
    "# docker/pin_constraints.py; do not edit by hand.\n"
)


def runtime_closure() -> dict[str, str]:
    """{canonical name: installed version} of the runtime dependencies and theirs."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pending = [Requirement(text) for text in project["dependencies"]]
    pinned: dict[str, str] = {}
    while pending:
        requirement = pending.pop()
        # Markers as in this interpreter (the image's Python: test_docker.py), no extras.
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(requirement.name)
        if name in pinned:
            continue
        distribution = metadata.distribution(requirement.name)
        pinned[name] = distribution.version
        pending.extend(Requirement(text) for text in distribution.requires or ())
    return pinned


def main() -> None:
    pins = runtime_closure()
    lines = "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))
    (ROOT / "docker" / "constraints.txt").write_text(HEADER + lines)


if __name__ == "__main__":
    main()
