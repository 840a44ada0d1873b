"""Pages shared by every area: the start page, the language switch and card template images."""

from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, request
from werkzeug.wrappers import Response as WerkzeugResponse

from walletd.passes.pkpass import TemplateError, load_template
from walletd.web.deps import services
from walletd.web.pages import i18n
from walletd.web.pages.render import add_error_pages, render
from walletd.web.pages.security import safe_next

bp = Blueprint("pages", __name__)
add_error_pages(bp)
TEMPLATE_IMAGES = frozenset(
    {"logo.png", "logo@2x.png", "icon.png", "icon@2x.png", "strip.png", "strip@2x.png"}
)


@bp.get("/")
def index() -> tuple[str, int]:
    """Where the cashier and the dashboard are."""
    return render("index.html")


@bp.post("/lang")
def switch_language() -> WerkzeugResponse:
    """Remember the reader's language choice in a cookie and go back."""
    choice = request.form.get("lang", "")
    target = safe_next(request.form.get("next"), "/")
    response = redirect(target, 303)
    if choice in i18n.LANGUAGES:
        response.set_cookie(
            i18n.COOKIE,
            choice,
            max_age=365 * 24 * 3600,
            samesite="Lax",
            secure=services().settings.base_url.startswith("https://"),
            httponly=True,
        )
    return response


@bp.get("/pass-images/<name>/<filename>")
def template_image(name: str, filename: str) -> Response:
    """A card template's logo, icon or strip image, for previews and the Google class."""
    if filename not in TEMPLATE_IMAGES:
        abort(404)
    try:
        template = load_template(services().settings.pass_templates_path, name)
    except (TemplateError, ValueError):
        abort(404)
    data = template.files.get(filename)
    if data is None:
        abort(404)
    response = Response(data, mimetype="image/png")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response
