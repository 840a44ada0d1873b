"""/docs: the API reference page, served from this site under the strict page CSP."""

from __future__ import annotations

import re
from pathlib import Path

from flask.testing import FlaskClient

from walletd.web.docs import VIEWER
from walletd.web.pages.security import CSP

STATIC = Path(__file__).resolve().parents[2] / "walletd" / "static"


def test_docs_page_is_served_with_the_strict_csp(client: FlaskClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    csp = response.headers["Content-Security-Policy"]
    assert csp == CSP
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "blob:" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_docs_page_names_the_api_version_and_links_to_the_dashboard(client: FlaskClient) -> None:
    html = client.get("/docs").get_data(as_text=True)
    version = client.get("/openapi.json").get_json()["info"]["version"]
    assert "<title>walletd API reference</title>" in html
    assert f'<span id="api-version">{version}</span>' in html
    assert 'href="/dashboard"' in html
    assert 'data-spec-url="/openapi.json"' in html


def test_docs_page_has_no_inline_script_and_nothing_from_another_site(client: FlaskClient) -> None:
    html = client.get("/docs").get_data(as_text=True)
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts, "the page loads its viewer"
    for attributes, body in scripts:
        assert 'src="/static/' in attributes and body.strip() == ""
    assert "<style" not in html and " style=" not in html
    assert re.findall(r'(?:src|href)="(?:https?:)?//', html) == []


def test_docs_assets_are_served_from_static(client: FlaskClient) -> None:
    html = client.get("/docs").get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert len(assets) == 4  # viewer script and stylesheet, the page's own script and stylesheet
    for url in assets:
        with client.get(url) as response:
            assert response.status_code == 200, url
            assert response.mimetype in ("text/javascript", "application/javascript", "text/css")
            etag = response.headers["ETag"]
        # The app sets no long max-age on /static; assets revalidate with their ETag instead.
        with client.get(url, headers={"If-None-Match": etag}) as again:
            assert again.status_code == 304


def test_vendored_viewer_carries_its_licence_and_version() -> None:
    folder = STATIC / VIEWER
    assert "Apache License" in (folder / "LICENSE").read_text()
    assert folder.name.split("-")[-1] in (folder / "README.md").read_text()


def test_docs_is_listed_in_the_openapi_document(client: FlaskClient) -> None:
    operation = client.get("/openapi.json").get_json()["paths"]["/docs"]["get"]
    assert operation["security"] == []
    assert "text/html" in operation["responses"]["200"]["content"]
