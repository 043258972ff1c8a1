"""The web explorer's static files: present, self-contained, syntactically sound, and served by
`provledger.node.explorer.mount` with the right content types and nothing else."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from provledger.node import explorer

FILES = ("index.html", "explorer.css", "explorer.js")
SVG_NAMESPACE = "http://www.w3.org/2000/svg"  # a name, not a resource the page loads
NODE_CHECK_TIMEOUT_S = 30


def read(name: str) -> str:
    return (explorer.EXPLORER_DIR / name).read_text(encoding="utf-8")


class References(HTMLParser):
    """Every URL-valued attribute of the document, and every element id."""

    URL_ATTRIBUTES = ("src", "href", "action", "formaction", "poster", "data")

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in self.URL_ATTRIBUTES and value is not None:
                self.urls.append((tag, value))
            if name == "id" and value:
                self.ids.add(value)


def parse_index() -> References:
    parser = References()
    parser.feed(read("index.html"))
    return parser


def test_the_static_files_exist_and_are_not_empty() -> None:
    for name in FILES:
        path = explorer.EXPLORER_DIR / name
        assert path.is_file(), f"{path} is missing"
        assert path.stat().st_size > 0, f"{path} is empty"
    assert set(explorer.STATIC_FILES) == set(FILES)


def test_index_references_only_local_resources() -> None:
    text = read("index.html")
    assert not re.search(r"https?://", text, re.IGNORECASE), "index.html names a remote URL"
    references = parse_index()
    for tag, url in references.urls:
        local = (url.startswith("/") and not url.startswith("//")) or url.startswith("#")
        assert local or url == "data:,", f"<{tag}> refers to {url!r}, which is not local"
    loaded = {url for tag, url in references.urls if tag in ("script", "link")}
    assert {"/explorer/explorer.css", "/explorer/explorer.js"} <= loaded


def test_stylesheet_and_script_load_nothing_remote() -> None:
    css = read("explorer.css")
    assert "@import" not in css
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", css), "the stylesheet loads a remote URL"
    script = read("explorer.js").replace(SVG_NAMESPACE, "")
    assert not re.search(r"https?://", script), "the script names a remote URL"
    assert not re.search(r"\bimport\s*\(|\beval\s*\(|new Function\b", script)
    markup_sinks = r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write"
    assert not re.search(markup_sinks, script), "API values must be written as text, not markup"


def test_every_element_the_script_looks_up_is_in_the_page() -> None:
    wanted = set(re.findall(r'\$\("([A-Za-z][\w-]*)"\)', read("explorer.js")))
    assert wanted, "the script looks up no element by id"
    missing = wanted - parse_index().ids
    assert not missing, f"explorer.js looks up ids that index.html lacks: {sorted(missing)}"


def test_every_form_control_has_a_label() -> None:
    html = read("index.html")
    labelled = set(re.findall(r'<label[^>]*\bfor="([^"]+)"', html))
    controls = set(re.findall(r'<input[^>]*\bid="([^"]+)"', html))
    assert controls and controls <= labelled, f"unlabelled inputs: {sorted(controls - labelled)}"


def test_the_script_parses() -> None:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("node is not on PATH: cannot check explorer.js's syntax")
    result = subprocess.run(
        [node, "--check", str(explorer.EXPLORER_DIR / "explorer.js")],
        capture_output=True,
        text=True,
        timeout=NODE_CHECK_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    explorer.mount(app)
    return TestClient(app)


@pytest.mark.parametrize(
    ("path", "name", "content_type"),
    [
        ("/", "index.html", "text/html"),
        ("/explorer/", "index.html", "text/html"),
        ("/explorer/index.html", "index.html", "text/html"),
        ("/explorer/explorer.css", "explorer.css", "text/css"),
        ("/explorer/explorer.js", "explorer.js", "text/javascript"),
    ],
)
def test_mount_serves_each_file_with_its_content_type(
    client: TestClient, path: str, name: str, content_type: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == f"{content_type}; charset=utf-8"
    assert response.content == (explorer.EXPLORER_DIR / name).read_bytes()
    assert response.headers["x-content-type-options"] == "nosniff"
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert client.head(path).status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/explorer/__init__.py", "/explorer/../rest.py", "/explorer/missing.js", "/explorer"],
)
def test_mount_serves_nothing_else(client: TestClient, path: str) -> None:
    assert client.get(path, follow_redirects=False).status_code in (404, 307)
    assert b"def mount" not in client.get(path).content


def test_mount_adds_nothing_to_the_openapi_schema(client: TestClient) -> None:
    assert client.get("/openapi.json").json()["paths"] == {}


def test_mount_refuses_an_install_without_its_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "index.html").write_text("<!doctype html>")
    monkeypatch.setattr(explorer, "EXPLORER_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="package-data"):
        explorer.mount(FastAPI())


VOID_ELEMENTS = {"meta", "link", "input", "br", "img", "hr", "source", "area", "base", "col"}


class Nesting(HTMLParser):
    """Every element's ancestors (by id), and each end tag checked against the open one."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[tuple[str, str]] = []
        self.ancestors: dict[str, list[str]] = {}
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        identifier = dict(attrs).get("id") or ""
        if identifier:
            self.ancestors[identifier] = [i for _, i in self.open if i]
        if tag not in VOID_ELEMENTS:
            self.open.append((tag, identifier))

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1][0] != tag:
            where = self.getpos()[0]
            self.problems.append(f"line {where}: </{tag}> closes {self.open[-1:]}")
            return
        self.open.pop()


def test_every_element_is_closed_where_it_opened_and_the_pages_are_apart() -> None:
    nesting = Nesting()
    nesting.feed(read("index.html"))
    assert nesting.problems == [] and nesting.open == [], (nesting.problems, nesting.open)
    # The market page and the cases panel are siblings in <main>, not inside each other.
    for page in ("market", "cases", "search", "results"):
        assert nesting.ancestors[page] == [], (page, nesting.ancestors[page])
