"""A bad value from an environment variable is reported under the variable's name, not the file's key;
the beat schedule file is where the configuration says."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktsync.config.model import BeatSettings
from ktsync.config.settings import DEFAULT_CONFIG_PATH, ENV_OVERRIDES, ConfigError, load_settings


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("KTSYNC_RATE_LIMIT", "abc", "Not a valid number."),
        ("KTSYNC_RATE_BURST", "ten", "Not a valid integer."),
        ("KTSYNC_MAX_IN_FLIGHT", "-3", "Must be greater than or equal to 0"),
        ("KLICKTIPP_BASE_URL", "klicktipp", "Not a valid URL."),
        ("KTSYNC_KLICKTIPP_DELETION_POLICY", "shred", "Must be one of"),
    ],
)
def test_a_bad_value_from_the_environment_names_the_variable_and_its_value(
    name: str, value: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings({name: value})

    [(key, said)] = exc.value.problems
    assert key == f"{name}={value}"
    assert reason in said
    assert str(exc.value).startswith("invalid configuration in the environment:")
    assert str(DEFAULT_CONFIG_PATH) not in str(exc.value)


def test_no_problem_of_an_overridden_key_is_reported_under_the_files_key() -> None:
    # Given every variable of the override map set at once, to values their keys refuse
    env = dict.fromkeys(ENV_OVERRIDES, "\x00") | {"KTSYNC_BEAT_SCHEDULE_FILE": "x" * 5000}

    with pytest.raises(ConfigError) as exc:
        load_settings(env)

    # Then each problem names a variable (NAME=value), none a key.path of the file
    assert {key.split("=", 1)[0] for key, _ in exc.value.problems} <= set(ENV_OVERRIDES)
    assert "KTSYNC_RATE_LIMIT" in {key.split("=", 1)[0] for key, _ in exc.value.problems}


def test_a_redis_url_from_the_environment_is_named_without_its_password() -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings({"KTSYNC_REDIS_URL": "http://ktsync:s3cret@redis.internal:6379/0"})
    assert "KTSYNC_REDIS_URL=http://***@redis.internal:6379/0: must be a redis:// URL" in str(exc.value)
    assert "s3cret" not in str(exc.value)


def test_problems_from_the_file_and_the_environment_say_both(tmp_path: Path) -> None:
    config = tmp_path / "ktsync.yaml"
    text = DEFAULT_CONFIG_PATH.read_text(encoding="utf-8").replace("max_backlog: 10000", "max_backlog: 0")
    config.write_text(text, encoding="utf-8")

    with pytest.raises(ConfigError) as exc:
        load_settings({"KTSYNC_CONFIG": str(config), "KTSYNC_RATE_LIMIT": "abc"})

    assert str(exc.value).startswith(f"invalid configuration in {config} and the environment:")
    assert dict(exc.value.problems).keys() == {"bulk.max_backlog", "KTSYNC_RATE_LIMIT=abc"}


def test_the_beat_schedule_defaults_to_the_state_directory_never_tmp() -> None:
    settings = load_settings({})
    assert settings.beat == BeatSettings()

    path = settings.beat.schedule_path("ktsync", {"XDG_STATE_HOME": "/var/lib/state"})
    assert path == Path("/var/lib/state/ktsync/beat-schedule-ktsync")
    assert settings.beat.schedule_path("p", {}) == Path.home() / ".local/state/ktsync/beat-schedule-p"


def test_the_beat_schedule_file_is_set_in_the_config_or_the_environment(tmp_path: Path) -> None:
    chosen = tmp_path / "beat" / "schedule"
    settings = load_settings({"KTSYNC_BEAT_SCHEDULE_FILE": str(chosen)})
    assert settings.beat.schedule_path("ktsync", {"XDG_STATE_HOME": "/elsewhere"}) == chosen
    assert BeatSettings("~/beat").schedule_path("ktsync", {}) == Path.home() / "beat"
