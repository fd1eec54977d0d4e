"""`redis.broker_prefix` is part of the wire: outside producers that follow it are consumed, the others are named.

The outside producer is a plain ``celery.Celery(broker=...)`` app, as another team has it: no ktsync
import, its own (or no) ``global_keyprefix``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from celery import Celery
from kombu import Connection, Queue
from prometheus_client import CollectorRegistry, generate_latest

from ktsync.config.settings import Settings, load_settings
from ktsync.core.stranded import Stranded, describe, split_key
from ktsync.metrics import RedisCollector
from ktsync.worker.queue_age_step import QueueWatch
from tests.ops.conftest import ktsync
from tests.ops.test_metrics import parse, value


def status(env: dict[str, str]) -> dict[str, Any]:
    result = ktsync("status", "--json", "--ping-timeout", "0", env=env)
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


@pytest.fixture
def outside_producer(settings: Settings, redis_client: redis.Redis) -> Iterator[Callable[[str], Celery]]:
    """``outside_producer(prefix)``: another team's Celery app; the kombu keys it makes outside the test's
    namespace (an unprefixed producer declares its queue's bindings) are deleted afterwards."""
    apps: list[Celery] = []

    def make(prefix: str) -> Celery:
        app = Celery("other-team", broker=settings.redis_url, set_as_current=False)
        if prefix:
            app.conf.broker_transport_options = {"global_keyprefix": prefix}
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()
    for queue in settings.worker.consumed_queues:
        redis_client.delete(f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")


@pytest.mark.slow
def test_a_producer_without_the_prefix_is_named_with_the_count_and_the_fix(
    redis_client: redis.Redis,
    settings: Settings,
    env: dict[str, str],
    outside_producer: Callable[[str], Celery],
) -> None:
    # Given a deployment with a broker prefix, and a producer that sends to the documented queue name
    # without it
    live = settings.worker.consumed_queues[0]
    assert settings.broker_prefix
    outside_producer("").send_task("ktsync.sync_contact", args=[{"v": 1}], queue=live)

    # When the operator asks for the status
    report = status(env)

    # Then nothing is pending where the workers read, and the stranded message is named: its list, the
    # count and the fix
    assert report["queues"][0]["pending"] == 0
    (stranded,) = report["stranded"]
    assert (stranded["key"], stranded["queue"], stranded["prefix"], stranded["count"]) == (live, live, "", 1)
    assert f'1 message waits on "{live}"' in stranded["warning"]
    assert f'"global_keyprefix": "{settings.broker_prefix}"' in stranded["warning"]
    assert f'LPUSH to "{settings.broker_prefix}{live}" with routing_key "{live}"' in stranded["warning"]
    assert report["stranded_search_complete"] is True
    # And the text view warns, and the metric says how many
    text = ktsync("status", "--ping-timeout", "0", env=env).stdout
    assert f'WARNING: 1 message waits on "{live}"' in text
    registry = CollectorRegistry()
    registry.register(RedisCollector(redis_client, settings, "account"))
    samples = parse(generate_latest(registry).decode())
    assert value(samples, "ktsync_stranded_messages", queue=live) == 1
    assert value(samples, "ktsync_stranded_messages", queue=settings.worker.consumed_queues[-1]) == 0


@pytest.mark.slow
def test_a_producer_that_follows_the_prefix_rule_is_consumed_by_a_real_worker(
    redis_client: redis.Redis, settings: Settings, env: dict[str, str], celery_worker: Celery,
    outside_producer: Callable[[str], Celery],
) -> None:  # fmt: skip
    # Given a running worker, and a producer that sets the deployment's prefix
    live = settings.worker.consumed_queues[0]
    outside_producer(settings.broker_prefix).send_task("ktsync.sync_contact", args=[{"v": 1}], queue=live)

    # Then the worker takes the message off the queue, and nothing is reported stranded
    deadline = time.monotonic() + 30
    while redis_client.llen(settings.broker_prefix + live) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert redis_client.llen(settings.broker_prefix + live) == 0
    assert status(env)["stranded"] == []


@pytest.mark.slow
def test_status_finds_queues_under_another_prefix_when_none_is_set(
    tmp_path: Path, config_path: Path, env: dict[str, str], namespace: str,
    outside_producer: Callable[[str], Celery],
) -> None:  # fmt: skip
    # Given a deployment without a broker prefix, and a producer that brought one along (on priority 9)
    document = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    document["redis"]["broker_prefix"] = ""
    unprefixed = tmp_path / "unprefixed.yaml"
    unprefixed.write_text(yaml.safe_dump(document), encoding="utf-8")
    plain_env = {**env, "KTSYNC_CONFIG": str(unprefixed)}
    bulk = load_settings(plain_env).worker.consumed_queues[-1]
    other = f"{namespace}-other:"  # under the test's namespace: the keys are cleaned up with it
    producer = outside_producer(other)
    for _ in range(2):
        producer.send_task("ktsync.reconcile", args=[{"v": 1}], queue=bulk, priority=9)

    # When status looks, Then the two messages are named under their prefix, with the fix
    report = status(plain_env)
    (stranded,) = report["stranded"]
    assert (stranded["key"], stranded["prefix"], stranded["count"]) == (other + bulk, other, 2)
    assert "redis.broker_prefix is not set" in stranded["warning"]
    assert f'send to "{bulk}"' in stranded["warning"]


def test_a_running_worker_warns_about_stranded_messages_once_in_a_while(
    redis_client: redis.Redis, settings: Settings, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    # Given a message on the unprefixed live queue
    live = settings.worker.consumed_queues[0]
    redis_client.lpush(live, json.dumps({"headers": {"task": "ktsync.sync_contact"}, "properties": {}}))
    clock = [0.0]
    watch = QueueWatch(redis_client, settings, clock=lambda: clock[0])

    # When the worker's watch ticks three times within five minutes, and once more after them
    with caplog.at_level(logging.WARNING, logger="ktsync.worker.queue_age_step"):
        for at in (0.0, 2.0, 4.0, 301.0):
            clock[0] = at
            watch.tick()

    # Then it warned twice: at once, and again after WARN_EVERY
    warnings = [r.getMessage() for r in caplog.records if "stranded messages" in r.getMessage()]
    assert len(warnings) == 2
    assert f'1 message waits on "{live}"' in warnings[0]


@pytest.mark.slow
def test_a_routing_key_that_carries_the_prefix_strands_the_message_on_redelivery(
    redis_client: redis.Redis, settings: Settings, env: dict[str, str]
) -> None:
    # Given a raw producer that pushed to the prefixed list but also put the prefix into the routing key
    prefix, live = settings.broker_prefix, settings.worker.consumed_queues[0]
    tag = "tag-prefixed-routing-key"
    raw = {"body": "W1tdLHt9LHt9XQ==", "content-encoding": "utf-8", "content-type": "application/json",
           "headers": {"task": "ktsync.sync_contact", "id": tag},
           "properties": {"body_encoding": "base64", "delivery_tag": tag,
                          "delivery_info": {"exchange": "", "routing_key": prefix + live}}}  # fmt: skip
    redis_client.lpush(prefix + live, json.dumps(raw))

    # When a consumer on the deployment's broker takes it and requeues it (as a redelivery does)
    connection = Connection(settings.redis_url, transport_options={"global_keyprefix": prefix})
    with connection, connection.SimpleQueue(Queue(live, routing_key=live)) as queue:
        queue.get(timeout=5).requeue()

    # Then kombu put it under the prefix twice, where no worker reads it, and status says why
    assert redis_client.llen(prefix + prefix + live) == 1
    (stranded,) = status(env)["stranded"]
    assert (stranded["key"], stranded["count"]) == (prefix + prefix + live, 1)
    assert f'Fix the producer\'s routing_key to "{live}"' in stranded["warning"]


@pytest.mark.parametrize(
    ("key", "prefix", "found"),
    [
        ("ktsync.live", "p:", ("", "ktsync.live")),  # unprefixed, while we have one
        ("p:ktsync.live", "p:", None),  # ours
        ("other:ktsync.bulk\x06\x169", "p:", ("other:", "ktsync.bulk")),  # a priority list
        ("other:ktsync", "", ("other:", "ktsync")),  # the pre-lane queue under a prefix
        ("ktsync.live", "", None),  # ours, without a prefix
        ("ktsync:stats", "", None),  # not a queue
    ],
)
def test_which_lists_are_queues_under_another_prefix(
    key: str, prefix: str, found: tuple[str, str] | None
) -> None:
    assert split_key(key, ["ktsync.live", "ktsync", "ktsync.bulk"], prefix) == found


def test_the_warning_names_the_list_the_count_and_the_fix() -> None:
    line = describe(Stranded("ktsync.live", "ktsync.live", "", 3), "prod:")
    assert line.startswith('3 messages wait on "ktsync.live", which no worker reads')
    assert 'workers read "prod:ktsync.live"' in line
    assert '{"global_keyprefix": "prod:"}' in line
