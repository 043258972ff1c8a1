"""The web explorer: one static page for auditors, served by the node's REST API.

The page (index.html, explorer.css, explorer.js) is plain HTML, CSS and JavaScript with no
build step and no third-party code; it reads the ledger through the same /v1 REST API as any
other client, with the bearer token the auditor pastes in (docs/rest-api.md).

`mount(app)` serves index.html at `/` (and `/explorer/`) and each file at `/explorer/<name>`.
Invariants:
- only the files named in `STATIC_FILES` are served, with their content types: never this
  module, its bytecode, or anything a path could reach outside this folder;
- every answer carries a Content-Security-Policy that lets the page load nothing but itself
  and talk to nothing but the node that served it, so the explorer works offline on a
  consortium's private network and cannot be made to leak a token elsewhere;
- the files are package data (pyproject's `[tool.setuptools.package-data]`); `mount` refuses
  to start with a file missing rather than answer 500 later.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse

EXPLORER_DIR = Path(__file__).resolve().parent
INDEX_FILE = "index.html"
STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "explorer.css": "text/css; charset=utf-8",
    "explorer.js": "text/javascript; charset=utf-8",
}
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The files change with the node's version; a browser checks (ETag) before reusing them.
    "Cache-Control": "no-cache",
}


def _route(name: str) -> Callable[[], FileResponse]:
    path = EXPLORER_DIR / name
    media_type = STATIC_FILES[name]

    def serve() -> FileResponse:
        return FileResponse(path, media_type=media_type, headers=HEADERS)

    serve.__name__ = f"explorer_{name.replace('.', '_')}"
    return serve


def mount(app: FastAPI) -> None:
    """Serve the explorer on `app`: index.html at `/` and `/explorer/`, the files at
    `/explorer/<name>`. Raises FileNotFoundError if a file is missing from the install."""
    missing = [name for name in STATIC_FILES if not (EXPLORER_DIR / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"explorer files {missing} are missing from {EXPLORER_DIR}; the package was "
            "installed without its package data (pyproject.toml [tool.setuptools.package-data] "
            '"provledger.node.explorer")'
        )
    for path in ("/", "/explorer/"):
        app.add_api_route(
            path, _route(INDEX_FILE), methods=["GET", "HEAD"], include_in_schema=False
        )
    for name in STATIC_FILES:
        app.add_api_route(
            f"/explorer/{name}", _route(name), methods=["GET", "HEAD"], include_in_schema=False
        )
