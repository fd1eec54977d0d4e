"""Operations commands: ``ktsync status``, ``ktsync metrics`` (Prometheus exporter) and ``ktsync flower``.

Everything here reads what the workers record in Redis; the only write is the first-seen checkpoints
that give other producers' messages an age (``ktsync.core.queue_age``). Heavy imports stay inside the
commands so that ``ktsync --help`` remains fast.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from ktsync.config.settings import Settings
from ktsync.core.tenants import DEFAULT_TENANT
from ktsync.logs import FORMATS, LOG_FORMAT_ENV, configure_logging
from ktsync.metrics import NO_ACCOUNT, USERNAME_ENV
from ktsync.tenant_scope import tenant_option

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

FLOWER_AUTH_ENV = "FLOWER_BASIC_AUTH"
DEFAULT_PING_TIMEOUT = 0.5

log_format_option = click.option(
    "--log-format",
    type=click.Choice(FORMATS, case_sensitive=False),
    envvar=LOG_FORMAT_ENV,
    show_envvar=True,
    default="text",
    show_default=True,
    help="text, or one JSON object per line.",
)


def workers_online(settings: Settings, timeout: float) -> dict[str, Any] | None:
    """Ping every worker over the broker; None when ``timeout`` is 0.

    Measured (2 workers, loopback Redis): replies arrive within ~5 ms, but a broadcast cannot know how
    many to expect, so the call lasts ``timeout`` plus ~0.2 s. Listening for heartbeats instead would
    take up to the 2 s heartbeat interval.
    """
    if timeout <= 0:
        return None
    from celery import Celery

    from ktsync.config.celery import celery_config

    app = Celery("ktsync-status", set_as_current=False)
    app.conf.update(celery_config(settings))
    # Poll the reply queue every 0.1 s (not 1 s): closing the connection waits for the last poll.
    app.conf.broker_transport_options = {**app.conf.broker_transport_options, "polling_interval": 0.1}
    try:
        # A fresh connection per ping: a reused one may have dropped its auto-deleted reply queue.
        with app.connection_for_write() as connection:
            replies = app.control.inspect(timeout=timeout, connection=connection).ping() or {}
    except Exception as exc:  # an unreachable broker must not hide the rest of the status
        return {"online": [], "count": 0, "ping_timeout": timeout, "error": str(exc)}
    finally:
        app.close()
    names = sorted(replies)
    return {"online": names, "count": len(names), "ping_timeout": timeout}


def _ago(q: Mapping[str, Any]) -> str:
    from ktsync.core.queue_age import describe_age

    return describe_age(q["oldest_pending_age"], q.get("oldest_pending_age_source"))


def print_status(report: Mapping[str, Any]) -> None:
    for q in report["queues"]:
        age = f" (oldest {_ago(q)})" if q["pending"] else ""
        click.echo(f"queue {q['queue']}: pending {q['pending']}{age}, in flight {q['in_flight']}, "
                   f"scheduled {q['scheduled']}")  # fmt: skip
    _print_stranded(report)
    for lane, q in report["lanes"].items():
        age = f" (oldest {_ago(q)})" if q["pending"] else ""
        share = "-" if q["budget_share"] is None else f"{q['budget_share']:.0%}"
        click.echo(f"lane {lane} ({q['queue']}): pending {q['pending']}{age}, in flight {q['in_flight']}, "
                   f"deferred for the budget {q['deferred']}, share of KlickTipp calls (last 60s) {share}")  # fmt: skip
    parked = report["scheduled"]
    next_due = parked["next_parked_due"]
    due = datetime.fromtimestamp(next_due).strftime("%H:%M:%S") if next_due else "-"
    click.echo(f"parked retries: {parked['parked']} (next due {due}, overdue {parked['parked_overdue']})")
    workers = report.get("workers")
    if workers is not None:
        names = ", ".join(workers["online"]) or f"none answered within {workers['ping_timeout']}s"
        click.echo(f"workers online: {workers['count']} ({names})")
    sessions = report.get("sessions", [])
    beating = ", ".join(f"{e.get('nodename') or e.get('host', '?')} (pid {e.get('pid', '?')}, holds {e['held']})"
                        for e in sessions)  # fmt: skip
    click.echo(f"workers heartbeating: {len(sessions)}{f' ({beating})' if beating else ''}")
    rec = report.get("recovery", {})
    click.echo(f"crash recovery: {rec.get('dead_workers', 0)} dead workers found, {rec.get('reclaimed_tasks', 0)} "
               f"tasks reclaimed, {rec.get('released_locks', 0)} locks and {rec.get('released_slots', 0)} "
               "limiter slots released early")  # fmt: skip
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(report["outcomes"].items())) or "none yet"
    click.echo(f"outcomes: {outcomes}")
    reasons = ", ".join(f"{r} {n}" for r, n in sorted(report["dead_letters_by_reason"].items()))
    click.echo(f"dead letters: {report['dead_letters']}{f' ({reasons})' if reasons else ''}, "
               f"evicted {report['dead_letters_evicted']}")  # fmt: skip
    lim = report["limiter"]
    paused = f", PAUSED for {lim['paused_for']:.0f}s (429)" if lim["paused_for"] else ""
    cap = lim["max_in_flight"] or "no cap"
    click.echo(f"limiter: {lim['tokens']:.1f}/{lim['burst']:g} tokens at {lim['rate']:g}/s, "
               f"{lim['in_flight']}/{cap} calls in flight{paused}")  # fmt: skip
    if "warning" in lim:
        click.echo(f"  ({lim['warning']})")
    for refused in report.get("credentials_refused", []):
        since = datetime.fromtimestamp(refused["since"]).strftime("%H:%M:%S")
        check = refused.get("next_check")
        then = f", next check {datetime.fromtimestamp(check).strftime('%H:%M:%S')}" if check else ""
        click.echo(f"ALARM: KlickTipp refuses the credentials of the worker(s) on {refused.get('host', '?')} "
                   f"since {since} ({refused.get('error', '')}); they take no tasks{then}. Fix their KLICKTIPP_*.")  # fmt: skip


def _print_tenants(report: Mapping[str, Any]) -> None:
    """One line per tenant, when the deployment serves more than the default tenant."""
    from ktsync.tenant_ops import TenantSummary

    tenants = report.get("tenants", [])
    if len(tenants) > 1:
        click.echo(f"tenants: {len(tenants)} (`ktsync status --tenant NAME` for one in full)")
        for entry in tenants:
            click.echo(f"  {TenantSummary(**entry).line()}")


def _print_stranded(report: Mapping[str, Any]) -> None:
    for entry in report.get("stranded", []):
        click.echo(f"WARNING: {entry['warning']}")
    if report.get("stranded_search_complete") is False:
        click.echo("  (the search for queues under other broker prefixes stopped before the last key)")


def check_basic_auth(value: str) -> None:
    """``user:password`` (comma-separated for several); the message never repeats the value."""
    for entry in value.split(","):
        user, sep, password = entry.partition(":")
        if not (user.strip() and sep and password):
            raise click.ClickException(
                f"{FLOWER_AUTH_ENV} must be user:password (comma-separated for several users)"
            )


def protect_flower_metrics() -> None:
    """Flower 2 serves ``/metrics`` without authentication on purpose (mher/flower#1129, #1342): task
    names and worker hosts would be public. Put it behind the same basic auth as the rest of Flower
    (``/healthcheck`` stays open for container health checks). Fails closed on an unknown layout."""
    import tornado.web
    from flower import urls
    from flower.views.monitor import Metrics

    class AuthenticatedMetrics(Metrics):  # type: ignore[misc]
        def prepare(self) -> None:
            options = self.application.options
            # get_current_user raises 401 (with WWW-Authenticate) on missing or wrong basic auth.
            if (options.basic_auth or options.auth) and not self.current_user:
                raise tornado.web.HTTPError(401)

    routes = [i for i, h in enumerate(urls.handlers) if isinstance(h, tuple) and _is_subclass(h[1], Metrics)]
    if len(routes) != 1:
        raise click.ClickException("this Flower version routes /metrics differently; refusing to expose it")
    urls.handlers[routes[0]] = (urls.handlers[routes[0]][0], AuthenticatedMetrics)


def _is_subclass(value: Any, base: type) -> bool:
    return isinstance(value, type) and issubclass(value, base)


def register(main: click.Group, settings: Callable[[], Settings], redis_block: Callable[..., Any]) -> None:
    """Add ``status``, ``metrics`` and ``flower`` to the ``ktsync`` command."""

    @main.command()
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    @click.option("--ping-timeout", type=click.FloatRange(0, 60), default=DEFAULT_PING_TIMEOUT, show_default=True,
                  help="Seconds to wait for workers to answer a ping (0: do not ask).")  # fmt: skip
    @tenant_option
    def status(as_json: bool, ping_timeout: float, tenant: str) -> None:
        """Queues (pending, age, in flight, scheduled, parked), workers, outcomes, dead letters, limiter.

        The queues, workers and recovery are every tenant's; outcomes, dead letters, credentials and
        the limiter are the tenant's (--tenant; default: the default tenant, plus one line per tenant)."""
        from ktsync.queues import status_report
        from ktsync.tenant_ops import tenant_block, tenant_environ, tenant_summaries
        from ktsync.worker.runtime import account_key

        base = settings()
        with tenant_block(redis_block, base, tenant) as (client, conf):
            env = tenant_environ(base, tenant, os.environ, client=client)
            report = status_report(client, conf, account_key(env), time.time())
            if tenant == DEFAULT_TENANT:
                summaries = tenant_summaries(client, conf, os.environ, account_key(env))
                report["tenants"] = [summary.to_dict() for summary in summaries]
        report["workers"] = workers_online(conf, ping_timeout)
        if not env.get(USERNAME_ENV, "").strip():
            report["limiter"]["warning"] = NO_ACCOUNT
        if as_json:
            click.echo(json.dumps(report, sort_keys=True))
            return
        if tenant != DEFAULT_TENANT:
            click.echo(f"tenant {tenant} (queues, workers and recovery are every tenant's)")
        print_status(report)
        _print_tenants(report)

    @main.command()
    @click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
    @click.option("--port", type=click.IntRange(0, 65535), default=9808, show_default=True,
                  help="Port (0: any free port, printed when listening).")  # fmt: skip
    @click.option("--loglevel", "-l", default="INFO", show_default=True, help="Log level.")
    @log_format_option
    def metrics(host: str, port: int, loglevel: str, log_format: str) -> None:
        """Serve Prometheus metrics read from Redis on every scrape (one exporter for all workers)."""
        from ktsync.metrics import serve_metrics

        configure_logging(log_format, loglevel)
        serve_metrics(settings(), host=host, port=port, env=os.environ, ready=click.echo)

    @main.command()
    @click.option("--port", type=click.IntRange(0, 65535), default=5555, show_default=True)
    @click.option("--address", default="127.0.0.1", show_default=True, help="Address to listen on.")
    @click.option("--unauthenticated", is_flag=True,
                  help=f"Start even without {FLOWER_AUTH_ENV} (only behind a proxy that authenticates).")  # fmt: skip
    @log_format_option
    def flower(port: int, address: str, unauthenticated: bool, log_format: str) -> None:
        """Run Flower (Celery's web monitor) on ktsync's broker, behind basic auth from FLOWER_BASIC_AUTH."""
        from celery import Celery

        from ktsync.config.celery import celery_config

        credentials = os.environ.get(FLOWER_AUTH_ENV, "")
        # Flower reads the variable itself: the password never goes on argv, where `ps` shows it.
        if credentials.strip():
            check_basic_auth(credentials)
        elif not unauthenticated:
            raise click.ClickException(f"{FLOWER_AUTH_ENV} is not set (user:password): refusing to serve Flower "
                                       "without authentication (--unauthenticated to do so on purpose)")  # fmt: skip
        if log_format == "json":
            configure_logging(log_format, "INFO")  # tornado then keeps our handler instead of adding its own
        app = Celery("ktsync", set_as_current=False)
        app.conf.update(celery_config(settings()))
        protect_flower_metrics()
        app.start(["flower", f"--port={port}", f"--address={address}"])
