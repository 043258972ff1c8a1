"""The REST API's documentation works on an isolated network: /openapi.json is served, /docs
is a self-contained page pointing to it (no script, nothing loaded from elsewhere), and the
CDN-backed Swagger UI and ReDoc pages are not served."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from provledger.cli import consortium
from provledger.node.rest import StoreView, create_app
from provledger.protocol.genesis import parse_genesis


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    directory: Path = tmp_path_factory.mktemp("docs") / "chain"
    layout = consortium.init_consortium(directory, nodes=1, with_identities=False)
    genesis = parse_genesis(layout.genesis_path.read_bytes())
    # Nothing here reads the store.
    return TestClient(create_app(StoreView(None, genesis, "node-0")))  # type: ignore[arg-type]


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.references: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.references += [value or "" for name, value in attrs if name in ("href", "src")]


def test_docs_is_a_self_contained_page_pointing_to_the_openapi_document(
    client: TestClient,
) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = Page()
    page.feed(response.text)
    assert not {"script", "link", "img", "iframe", "style"} & set(page.tags)
    assert "/openapi.json" in page.references
    assert all(reference.startswith("/") for reference in page.references)
    assert not re.search(r"https?://(?!HOST:PORT)", response.text)


def test_the_openapi_document_is_served_and_lists_neither_page(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    assert "/v1/status" in schema["paths"]
    assert not {"/docs", "/redoc"} & set(schema["paths"])


def test_the_cdn_backed_viewers_are_not_served(client: TestClient) -> None:
    assert client.get("/redoc").status_code == 404
    assert client.get("/docs/oauth2-redirect").status_code == 404
