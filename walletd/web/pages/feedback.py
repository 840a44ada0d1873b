"""After-sale feedback pages: the member's signed rating page and the dashboard's report."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import abort, redirect, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from walletd import feedback
from walletd.errors import N_, ConflictError, NotFoundError, ValidationError
from walletd.models import Location
from walletd.web import links
from walletd.web.deps import context, run_in_transaction, services
from walletd.web.pages import customer, dashboard
from walletd.web.pages.charts import BarChart, daily_bars
from walletd.web.pages.dashboard import me, staff_only
from walletd.web.pages.render import _, error_text, language, prefer_program_language, render

# The words next to the stars (translated in the template).
RATING_WORDS = (
    (5, N_("Excellent")),
    (4, N_("Very good")),
    (3, N_("Good")),
    (2, N_("Fair")),
    (1, N_("Poor")),
)
REPORT_DAYS = 30


def _visit_or_404(scan_id: int) -> feedback.Visit:
    visit = run_in_transaction(lambda s: feedback.find_visit(s, scan_id))
    if visit is None:
        abort(404)
    return visit


@customer.bp.route("/feedback/<int:scan_id>", methods=["GET", "POST"])
def feedback_page(scan_id: int) -> Any:
    """Rate one visit (1 to 5 stars and a comment) from a signed link; one answer per visit."""
    expires, sig = request.args.get("exp", ""), request.args.get("sig", "")
    if not links.check_feedback_link(scan_id, expires, sig, services().settings.secret_keys):
        abort(404)
    visit = _visit_or_404(scan_id)
    prefer_program_language(visit.default_language)
    action = url_for("customer.feedback_page", scan_id=scan_id, exp=expires, sig=sig)
    page: dict[str, Any] = {
        "visit": visit,
        "action": action,
        "ratings": RATING_WORDS,
        "max_comment": feedback.MAX_COMMENT,
        "values": {},
        "errors": {},
    }
    if int(expires) < context().now.timestamp():
        return render("customer/feedback.html", 403, state="expired", **page)
    if visit.rating is not None:
        state = "thanks" if request.args.get("done") == "1" else "answered"
        return render("customer/feedback.html", state=state, **page)
    if request.method == "POST":
        form = request.form
        page["values"] = {"rating": form.get("rating", "")[:2], "comment": form.get("comment", "")}
        ctx, lang = context(), language()

        def work(session: Session) -> None:
            feedback.submit_feedback(
                session, scan_id, form.get("rating"), form.get("comment"), lang, ctx
            )

        try:
            run_in_transaction(work)
        except NotFoundError:
            abort(404)
        except ConflictError:
            return render("customer/feedback.html", state="answered", **page)
        except ValidationError as exc:
            page["errors"] = {exc.field or "rating": error_text(exc)}
            return render("customer/feedback.html", 422, state="form", **page)
        done = url_for("customer.feedback_page", scan_id=scan_id, exp=expires, sig=sig, done=1)
        return redirect(done, 303)
    return render("customer/feedback.html", state="form", **page)


# --- dashboard ----------------------------------------------------------------------------------


def _day(text: str, default: date, field: str, errors: dict[str, str]) -> date:
    if not text:
        return default
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        errors[field] = _("Enter a date as YYYY-MM-DD.")
        return default


@dashboard.bp.get("/feedback")
@staff_only
def feedback_report() -> Any:
    """Ratings of visits in a period: totals, distribution, by location, over time, comments."""
    viewer = me()
    today = context().now.date()
    errors: dict[str, str] = {}
    start = _day(request.args.get("from", ""), today - timedelta(days=REPORT_DAYS - 1), "from",
                 errors)  # fmt: skip
    end = _day(request.args.get("to", ""), today, "to", errors)
    place_text = request.args.get("location_id", "")
    place = int(place_text) if place_text.isdigit() and len(place_text) <= 9 else None
    if place_text and place is None:
        errors["location_id"] = _("Choose a location from the list.")

    def work(session: Session) -> tuple[dict[str, Any] | None, list[tuple[int, str]]]:
        places = [
            (int(i), str(n))
            for i, n in session.execute(
                select(Location.id, Location.name)
                .where(Location.brand_id == viewer.brand_id)
                .order_by(Location.name, Location.id)
            ).all()
        ]
        try:
            found = feedback.feedback_report(session, viewer.brand_id, start, end,
                                             location_id=place)  # fmt: skip
        except ValidationError as exc:
            errors[exc.field or "from"] = error_text(exc)
            return None, places
        return found, places

    report, places = run_in_transaction(work)
    chart: BarChart | None = None
    if report is not None:
        chart = daily_bars([(p["start"], p["count"]) for p in report["over_time"]["points"]])
    values = {"from": start.isoformat(), "to": end.isoformat(), "location_id": place_text[:12]}
    return render("dashboard/feedback.html", 422 if errors else 200, report=report,
                  chart=chart, places=places, values=values, errors=errors)  # fmt: skip
