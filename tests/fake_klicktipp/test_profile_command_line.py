"""``--profile`` on both command lines: ``python -m fake_klicktipp`` and ``ktsync fake-klicktipp``."""

from __future__ import annotations

from typing import Any

import click
import pytest
from click.testing import CliRunner

import fake_klicktipp.__main__ as fake_main
import fake_klicktipp.server
from fake_klicktipp.options import PROFILES
from ktsync.cli import main as ktsync_main


@pytest.fixture
def served(monkeypatch) -> list[dict[str, Any]]:
    """What ``serve`` was called with, instead of serving."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(fake_main, "serve", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setattr(fake_klicktipp.server, "serve", lambda **kwargs: calls.append(kwargs))
    return calls


@pytest.mark.parametrize(("args", "profile"), [([], "documented"), (["--profile", "recorded"], "recorded")])
def test_python_m_fake_klicktipp_passes_the_profile(served, args, profile):
    fake_main.main(["--port", "0", *args])
    assert served[-1]["profile"] == profile


def test_python_m_fake_klicktipp_refuses_an_unknown_profile(served, capsys):
    with pytest.raises(SystemExit):
        fake_main.main(["--port", "0", "--profile", "real"])
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "profile"), [([], "documented"), (["--profile", "recorded"], "recorded")])
def test_ktsync_fake_klicktipp_passes_the_profile(served, args, profile):
    result = CliRunner().invoke(ktsync_main, ["fake-klicktipp", *args])
    assert result.exit_code == 0, result.output
    assert served[-1]["profile"] == profile


def test_ktsync_offers_exactly_the_fakes_profiles_with_the_default_shown():
    command = ktsync_main.commands["fake-klicktipp"]
    option = next(param for param in command.params if param.name == "profile")
    assert isinstance(option.type, click.Choice)
    assert tuple(option.type.choices) == PROFILES
    help_text = CliRunner().invoke(ktsync_main, ["fake-klicktipp", "--help"]).output
    assert "[default: documented]" in help_text
