"""The API reference page: /openapi.json drawn by a vendored Swagger UI, within the page CSP."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, render_template

from walletd.web.deps import services
from walletd.web.openapi import openapi_document
from walletd.web.pages import _asset_version

bp = Blueprint("docs", __name__)
# Served from /static like every asset (no CDN); the folder name carries the version.
VIEWER = "vendor/swagger-ui-5.31.0"


@bp.get("/docs")
def reference() -> str:
    """The API reference page; the viewer fetches /openapi.json from this site."""
    info = openapi_document(current_app, services().settings.base_url)["info"]
    return render_template(
        "docs.html",
        api_version=info["version"],
        viewer=VIEWER,
        asset_version=_asset_version,
    )


def init_app(app: Flask) -> None:
    """Register /docs."""
    app.register_blueprint(bp)
