"""The overview, review list, tenants and audit pages."""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response

from ktsync.console.audit import entry
from ktsync.console.charts import sparkline
from ktsync.console.context import ConsoleError
from ktsync.console.frame import Page
from ktsync.console.overview import TenantFigures, gather
from ktsync.core.lanes import LANES
from ktsync.core.tenants import DEFAULT_TENANT
from ktsync.worker.deadletter.triage import RUNBOOK
from ktsync.worker.review import RedisReviewList


def _charts(figures: TenantFigures) -> dict[str, dict[str, str]]:
    """Per lane: calls/s, 429s/s and mean sync latency over the hour, as inline SVG."""
    charts = {}
    for lane in LANES:
        points = figures.history.get(lane.value, [])
        charts[lane.value] = {
            "calls": sparkline([p.calls_per_s for p in points], label=f"{lane.value} calls/s", unit="/s"),
            "throttled": sparkline(
                [p.throttled_per_s for p in points], label=f"{lane.value} 429s/s", unit="/s", css="warn"
            ),
            "latency": sparkline(
                [p.latency_mean for p in points], label=f"{lane.value} sync latency", unit=" s"
            ),
        }
    return charts


def overview(page: Page) -> Response:
    figures = gather(page.console.client, page.console.settings, page.console.env, page.console.clock())
    charts = {t.name: _charts(t) for t in figures.tenants}
    return page.render(
        "overview.html",
        view=figures,
        charts=charts,
        workers=page.console.workers(),
        lanes=[lane.value for lane in LANES],
    )


def tenants(page: Page) -> Response:
    figures = gather(page.console.client, page.console.settings, page.console.env, page.console.clock())
    return page.render("tenants.html", view=figures)


def review(page: Page) -> Response:
    tenant = page.arg("tenant") or DEFAULT_TENANT
    try:
        items = RedisReviewList(page.console.client, page.console.scoped(tenant).key_prefix).list()
    except ConsoleError as exc:
        page.flash("error", str(exc))
        items = []
    return page.render("review.html", items=items, tenant=tenant, tenants=page.console.tenants())


def review_done(page: Page) -> Response:
    tenant, request_id = page.arg("tenant") or DEFAULT_TENANT, page.arg("id")
    try:
        removed = RedisReviewList(page.console.client, page.console.scoped(tenant).key_prefix).remove(
            request_id
        )
    except ConsoleError as exc:
        page.flash("error", str(exc))
        return page.render("review.html", status=400, items=[], tenant=tenant, tenants=page.console.tenants())
    if removed:
        page.console.audit.record(entry(page.user.name, "review_done", tenant, 1, f"request {request_id}",
                                        page.console.clock))  # fmt: skip
    flash = ("ok", f"request {request_id} done") if removed else ("error", f"no request {request_id}")
    if "nonce" in page.request.session:  # a signed-in session (Basic and proxy users have none)
        page.request.session["flash"] = [flash]
    return RedirectResponse(f"/review?tenant={tenant}", status_code=303)


def audit(page: Page) -> Response:
    return page.render("audit.html", entries=page.console.audit.recent(500))


def runbook(page: Page) -> Response:
    return page.render("runbook.html", runbook=sorted(RUNBOOK.items()))
