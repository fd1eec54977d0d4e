"""A refused credential: judged with one real call, watched with backoff, keyed by credential."""

from __future__ import annotations

import redis

from ktsync.worker.credential_step import CredentialWatch
from ktsync.worker.credentials import (
    CredentialCheck,
    CredentialHealth,
    MemoryCredentialHealth,
    RedisCredentialHealth,
    Verdict,
    backoff,
    credential_id,
    refused_credentials,
)
from ktsync.worker.klicktipp.errors import AuthError, TransportError
from tests.unit.twins import twin

REFUSED = AuthError("refused", operation="api.subscriber.update", status=401)


health = twin(MemoryCredentialHealth, lambda client, prefix: RedisCredentialHealth(client, prefix, "cred1"))


def test_a_credential_is_told_apart_by_its_secret_and_never_shows_it() -> None:
    right = {"KLICKTIPP_USERNAME": "demo", "KLICKTIPP_PASSWORD": "demo-secret"}
    wrong = {**right, "KLICKTIPP_PASSWORD": "wrong"}
    partner = {
        "KLICKTIPP_USERNAME": "demo",
        "KLICKTIPP_DEVELOPER_KEY": "00ff",
        "KLICKTIPP_CUSTOMER_KEY": "ck",
    }
    ids = {credential_id(right), credential_id(wrong), credential_id(partner)}
    assert len(ids) == 3
    assert credential_id(right) == credential_id({**right, "KLICKTIPP_USERNAME": " Demo "})
    assert all("demo" not in i for i in ids)


def test_a_refusal_the_check_confirms_marks_the_credential_refused_once(health: CredentialHealth) -> None:
    def refused() -> None:
        raise REFUSED

    check = CredentialCheck(health, refused)
    assert check.judge(REFUSED) == (Verdict.REFUSED, True)
    assert check.judge(REFUSED) == (Verdict.REFUSED, False)  # already known: no second check, no alarm
    assert health.refused()


def test_a_refusal_the_credential_survives_is_about_the_operation(health: CredentialHealth) -> None:
    calls = []
    check = CredentialCheck(health, lambda: calls.append("checked"))
    assert check.judge(REFUSED) == (Verdict.OPERATION, False)
    assert calls == ["checked"]
    assert not health.refused()


def test_no_verdict_when_klicktipp_cannot_be_asked(health: CredentialHealth) -> None:
    def unreachable() -> None:
        raise TransportError("connection refused", operation="api.list.index")

    assert CredentialCheck(health, unreachable).judge(REFUSED) == (Verdict.UNKNOWN, False)
    assert not health.refused()


def test_refused_credentials_are_listed_for_the_status(redis_client: redis.Redis, namespace: str) -> None:
    first = RedisCredentialHealth(redis_client, namespace, "cred1")
    RedisCredentialHealth(redis_client, namespace, "cred2").refuse("x")
    first.refuse("api.tag.index: HTTP 401")
    first.renew(next_check=1234.0)
    RedisCredentialHealth(redis_client, namespace, "cred2").accept()
    [listed] = refused_credentials(redis_client, namespace)
    assert (listed["credential"], listed["error"], listed["next_check"]) == (
        "cred1",
        "api.tag.index: HTTP 401",
        1234.0,
    )


class Switch:
    def __init__(self) -> None:
        self.events: list[str] = []

    def pause(self) -> None:
        self.events.append("pause")

    def resume(self) -> None:
        self.events.append("resume")


def test_a_refused_worker_pauses_rechecks_with_backoff_and_resumes_once_accepted() -> None:
    # Given a worker taking tasks, whose credential is then marked refused
    health, now, switch = MemoryCredentialHealth(), [0.0], Switch()
    answers: list[Exception | None] = [REFUSED, REFUSED, None]
    checks: list[float] = []

    def check() -> None:
        checks.append(now[0])
        answer = answers.pop(0)
        if answer is not None:
            raise answer

    watch = CredentialWatch(
        health, check, switch.pause, switch.resume, clock=lambda: now[0], wall=lambda: now[0]
    )
    watch.tick()
    assert switch.events == []
    health.refuse("HTTP 401")

    # When the watch runs every second for a minute
    for second in range(1, 60):
        now[0] = float(second)
        watch.tick()

    # Then it stopped taking tasks at once, checked after 5, 10 and 20 s (no storm), and took tasks
    # again once the credential was accepted
    assert checks == [6.0, 16.0, 36.0]
    assert switch.events == ["pause", "resume"]
    assert not health.refused()
    assert watch.consuming


def test_backoff_doubles_up_to_five_minutes() -> None:
    assert [backoff(n) for n in (1, 2, 3, 4, 7, 20)] == [5, 10, 20, 40, 300, 300]
