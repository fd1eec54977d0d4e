"""Fair shares across tenants: bulk imports of a few tenants beside live changes of all the others.

    .venv/bin/python -m bench.tenants [--tenants 50] [--importers 1] [--import-size 1000] [--window 60]
                                      [--live-every 2] [--budget 5] [--burst 5] [--workers 2]
                                      [--concurrency 8] [--fairness-importers 5] [--fairness-window 30]

One deployment serves ``--tenants`` tenants, each its own KlickTipp account in the fake, which enforces
a budget of R requests/s per account (429 + Retry-After above it); ktsync's limiter is configured
with the same R for every tenant. The importers (the first ``--importers`` tenants) each have
``--import-size`` new contacts queued in the bulk lane before the workers start; for ``--window``
seconds every other ("quiet") tenant sends one live change (a new contact) every ``--live-every``
seconds, their changes evenly staggered. Measured (rates over the window without its first 5 s,
when the accounts' bursts go first):

* the quiet tenants' latency, enqueue -> applied in ktsync's state store, p50 / p95 / max; changes
  not applied within ``--grace`` seconds after the window count as "not synced";
* each tenant's achieved rate: the calls the fake accepted for its account per second, against R;
* the aggregate: all tenants' calls/s against what they could use: R for each backlogged tenant
  plus the quiet tenants' demand (their changes times the calls a change takes);
* Jain's fairness index over the backlogged tenants' achieved rate / R;
* the CPU the workers, the fake and the whole machine used over the window.

The default run has a second, shorter scenario with ``--fairness-importers`` importers, where the
fairness index is not trivially 1 (0 skips it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import redis
import yaml

from bench import cpu
from bench.environment import bench_config, bench_env, consumed_lists
from bench.figures import Window
from bench.tenant_load import SOURCE, LiveFeed, contact, workers
from bench.tenants_report import Measured, report
from fake_klicktipp.testing import RunningFake, account_customer_key, account_entry, running_fake
from ktsync.config.settings import Settings, load_settings
from ktsync.core.redis_server import RedisHandle, resolve_redis
from ktsync.core.tenants import tenant_prefix
from ktsync.producers import Producer
from ktsync.worker.state import RedisStateStore

WARM_UP = 5.0  # seconds at the window's start left out of the rates (each account's burst goes first)
RATE_ENV = ("KTSYNC_RATE_LIMIT", "KTSYNC_RATE_BURST", "KTSYNC_MAX_IN_FLIGHT")  # the scenario file rules


@dataclass(frozen=True)
class Plan:
    """One scenario: who imports, who sends live changes, for how long."""

    label: str
    importers: tuple[str, ...]
    quiet: tuple[str, ...]
    window: float

    @property
    def tenants(self) -> tuple[str, ...]:
        return self.importers + self.quiet


def tenant_names(count: int) -> list[str]:
    """``t00``, ``t01``, ...: tenant names that are also the fake's account names."""
    width = max(2, len(str(count - 1)))
    return [f"t{n:0{width}d}" for n in range(count)]


def plan(label: str, tenants: int, importers: int, window: float) -> Plan:
    names = tenant_names(tenants)
    return Plan(label, tuple(names[:importers]), tuple(names[importers:]), window)


def key_variable(tenant: str) -> str:
    return f"BENCH_{tenant.upper().replace('-', '_')}_CUSTOMER_KEY"


def scenario_env(
    store: RedisHandle, fake: RunningFake, config: Path, scenario: Plan, args: argparse.Namespace
) -> dict[str, str]:
    """The bench's env with a config of the scenario's own: queue, key prefix, one entry per tenant."""
    document = yaml.safe_load(config.read_text(encoding="utf-8"))
    name = f"ktsync-tenants-{scenario.label}"
    document["redis"]["key_prefix"] = name
    document["worker"]["queue"] = name
    budget = {"per_second": args.budget, "burst": args.burst}
    document["rate"].update(budget, max_in_flight=args.max_in_flight)
    document["tenants"] = {
        tenant: {
            "credentials": {"KLICKTIPP_USERNAME": tenant, "KLICKTIPP_CUSTOMER_KEY": {"env": key_variable(tenant)}},
            "rate": budget,
        }
        for tenant in scenario.tenants
    }  # fmt: skip
    path = config.parent / f"{scenario.label}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    env = bench_env(os.environ, redis_url=store.url, base_url=fake.base_url, config=path)
    for variable in RATE_ENV:
        env.pop(variable, None)
    return {**env, **{key_variable(t): account_customer_key(t) for t in scenario.tenants}}


def fresh_fake(fake: RunningFake, scenario: Plan, args: argparse.Namespace) -> None:
    """The seed back, one account per tenant with the seed's data, the budget on every account."""
    fake.control.reset()
    fake.control.add_accounts(account_entry(tenant) for tenant in scenario.tenants)
    fake.control.faults(rate_limit={"per_second": args.budget, "burst": args.burst})


def enqueue_imports(settings: Settings, scenario: Plan, size: int) -> None:
    """Each importer's whole import in the bulk lane, one importer after the other (as ``ktsync import``
    of one file each, started in turn): the queue holds the first importer's contacts, then the next's."""
    with Producer(settings, lane="bulk") as producer:
        for tenant in scenario.importers:
            producer.enqueue_many(contact(tenant, "bulk", i) for i in range(size))


def imported(settings: Settings, scenario: Plan, size: int) -> dict[str, int]:
    """Bulk contacts applied so far per importer."""
    client = redis.Redis.from_url(settings.redis_url)
    done = {}
    for tenant in scenario.importers:
        store = RedisStateStore(client, tenant_prefix(settings.key_prefix, tenant))
        pipe = client.pipeline(transaction=False)
        for i in range(size):
            pipe.exists(store.key(SOURCE, f"{tenant}-bulk-{i}"))
        done[tenant] = sum(pipe.execute())
    client.close()
    return done


def drop_queues(settings: Settings) -> None:
    """The scenario's queued leftovers (the rest of the imports) go; nothing else is touched."""
    client = redis.Redis.from_url(settings.redis_url)
    client.delete(*consumed_lists(settings))
    client.close()


def run(
    store: RedisHandle, fake: RunningFake, config: Path, scenario: Plan, args: argparse.Namespace
) -> Measured:
    env = scenario_env(store, fake, config, scenario, args)
    settings = load_settings(env)
    fresh_fake(fake, scenario, args)
    enqueue_imports(settings, scenario, args.import_size)
    groups: dict[str, list[int]] = {"fake": [fake.process.pid], "bench": [os.getpid()]}
    with workers(env, args) as running:
        groups.update({f"worker {n}": [pid] for n, pid in enumerate(running.pids)})
        time.sleep(args.startup)  # worker start-up (its start-up check, the consumer connecting)
        running.check()
        with LiveFeed(settings, scenario.quiet, args.live_every) as feed:
            time.sleep(WARM_UP)
            before, steady = cpu.sample(groups), time.time()
            time.sleep(max(0.0, scenario.window - WARM_UP))
            after, ended = cpu.sample(groups), time.time()
            feed.stop_feeding()
            feed.finish(args.grace)
        running.check()
        done = imported(settings, scenario, args.import_size)
    drop_queues(settings)
    return Measured(
        scenario=scenario_title(scenario),
        importers=scenario.importers,
        quiet=scenario.quiet,
        window=Window(steady, ended),
        log=fake.control.requests(),
        enqueued_at=dict(feed.enqueued_at),
        latencies={key: feed.applied[key] - t for key, t in feed.enqueued.items() if key in feed.applied},
        unsynced=len(feed.enqueued) - len(feed.applied),
        imported=done,
        cpu=cpu.usage(before, after, ended - steady),
    )


def scenario_title(scenario: Plan) -> str:
    return (f"{len(scenario.importers)} importing, {len(scenario.quiet)} quiet, "
            f"window {scenario.window:g} s")  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--tenants", type=int, default=50, help="tenants, each its own KlickTipp account")
    add("--importers", type=int, default=1, help="tenants with a bulk import (the first N)")
    add("--import-size", type=int, default=1000, help="new contacts in each import")
    add("--window", type=float, default=60.0, help="seconds of live changes (the measured window)")
    add("--live-every", type=float, default=2.0, help="seconds between two live changes of a quiet tenant")
    add("--budget", type=float, default=5.0, help="requests/s per account: the fake's and ktsync's (R)")
    add("--burst", type=int, default=5, help="the fake's and ktsync's burst per account")
    add("--max-in-flight", type=int, default=4, help="ktsync rate.max_in_flight per tenant (the default)")
    add("--workers", type=int, default=2, help="worker processes")
    add("--concurrency", type=int, default=8, help="threads per worker process")
    add("--fairness-importers", type=int, default=5, help="importers of the second scenario (0: none)")
    add("--fairness-window", type=float, default=30.0, help="seconds of the second scenario's window")
    add("--startup", type=float, default=3.0, help="seconds the workers get to start before the window")
    add("--grace", type=float, default=5.0, help="seconds after the window for live changes on their way")
    add("--per-tenant", action="store_true", help="a line for every tenant, not only the importers")
    args = parser.parse_args(argv)
    if not 1 <= args.importers < args.tenants:
        parser.error("--importers must be at least 1 and leave at least one quiet tenant")
    if args.window <= WARM_UP:
        parser.error(f"--window must be longer than the {WARM_UP:g} s warm-up")
    return args


def plans(args: argparse.Namespace) -> list[Plan]:
    found = [plan("main", args.tenants, args.importers, args.window)]
    second = min(args.fairness_importers, args.tenants - 1)
    if second > 1 and second != args.importers and args.fairness_window > WARM_UP:
        found.append(plan("fairness", args.tenants, second, args.fairness_window))
    return found


def main() -> None:
    args = parse_args()
    results = []
    with resolve_redis() as store, running_fake() as fake, bench_config(store, args.concurrency) as config:
        for scenario in plans(args):
            results.append(run(store, fake, config, scenario, args))
            print(f"  ... {results[-1].scenario}: done", file=sys.stderr, flush=True)
    report(results, args)


if __name__ == "__main__":
    main()
