"""One fixture, two implementations: every Redis-backed store runs the same tests as its in-memory twin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis


def twin(memory: Callable[[], Any], real: Callable[[redis.Redis, str], Any]) -> Any:
    """A fixture parametrized over ``memory()`` and ``real(redis_client, namespace)``."""

    @pytest.fixture(params=["memory", "redis"])
    def fixture(request: pytest.FixtureRequest, namespace: str) -> Any:
        if request.param == "memory":
            return memory()
        return real(request.getfixturevalue("redis_client"), namespace)

    return fixture
