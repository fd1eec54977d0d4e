"""Exit statuses: a usage error never shares its code with "some lines rejected" (README "Exit codes").

click exits 2 on a usage error, which ktsync documented long before as "some lines were rejected";
ktsync keeps 2 for that and moves every usage error, of every sub-command, to 64 (sysexits EX_USAGE).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ktsync.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_REJECTED, EXIT_USAGE, main
from ktsync.core.redis_server import free_port


def test_the_documented_exit_statuses_stay_what_scripts_rely_on() -> None:
    assert (EXIT_FAILED, EXIT_REJECTED, EXIT_USAGE, EXIT_INTERRUPTED) == (1, 2, 64, 130)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["enqueue", "--bogus"], "No such option '--bogus'"),
        (["enqueue"], "Missing argument 'FILE'"),
        (["nosuch"], "No such command 'nosuch'"),
        (["import", "missing.csv", "--source", "hubspot"], "does not exist"),
        (["import", "contacts.csv"], "Missing option '--source'"),
        (["enqueue", "--start-line", "0", "-"], "--start-line"),
        (["dlq", "purge"], "name dead letters by id, or select them with --all"),
        (["dlq", "list", "--since", "yesterday"], "use a duration like 2h or an ISO 8601 time"),
        (["resync", "--source", "hubspot", "--from", "elsewhere"], "'elsewhere' is not one of"),
        ([], "Usage: ktsync"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_a_usage_error_of_any_command_exits_64_with_clicks_message(
    args: list[str], says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a Redis URL nobody listens on (a usage error must not need Redis)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "contacts.csv").write_text("id,email\n", encoding="utf-8")
    env = {"KTSYNC_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}

    result = CliRunner().invoke(main, args, env=env, prog_name="ktsync")

    assert result.exit_code == EXIT_USAGE, result.output
    assert says in result.output


@pytest.mark.parametrize(
    "args", [["--help"], ["--version"], ["enqueue", "--help"], ["dlq", "replay", "--help"]]
)
def test_help_and_version_exit_0(args: list[str]) -> None:
    assert CliRunner().invoke(main, args).exit_code == 0


def test_a_command_that_cannot_do_its_job_exits_1_in_one_line() -> None:
    # Given a configuration value from the environment that is not a number
    result = CliRunner().invoke(main, ["status", "--ping-timeout", "0"], env={"KTSYNC_RATE_LIMIT": "abc"})

    assert result.exit_code == EXIT_FAILED
    assert "KTSYNC_RATE_LIMIT=abc: Not a valid number." in result.output
    assert "Traceback" not in result.output
