"""The import graph has layers and no cycles: the contract at the bottom, the ``ktsync`` commands on top.

``core`` (the message contract and what every side shares) imports nothing of ktsync's above it;
``config`` builds on ``core``; ``worker`` and ``producers`` build on both and never on each other;
the ``ktsync`` package itself (the commands) may import everything. Function-level imports count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Folder -> the ktsync subpackages its modules may import (besides their own).
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "config": frozenset({"core"}),
    "worker": frozenset({"core", "config"}),
    "producers": frozenset({"core", "config"}),
}


def imported_layers(path: Path) -> set[tuple[int, str]]:
    """``(line, layer)`` of every ``ktsync.<layer>`` import in the file; ``top`` for ktsync's own modules."""
    found: set[tuple[int, str]] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] != "ktsync":
                continue
            layer = parts[1] if len(parts) > 1 and parts[1] in ALLOWED else "top"
            found.add((node.lineno, layer))
    return found


def violations(folder: str) -> list[str]:
    allowed = ALLOWED[folder] | {folder}
    return [
        f"{path.relative_to(ROOT)}:{line} imports ktsync.{layer if layer != 'top' else '<commands>'}"
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line, layer in sorted(imported_layers(path))
        if layer not in allowed
    ]


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_each_layer_imports_only_the_layers_below_it(folder: str) -> None:
    assert violations(folder) == []


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from ktsync.producers.enqueue import enqueue\n", encoding="utf-8")
    assert imported_layers(module) == {(2, "producers")}


def test_the_public_contract_path_still_works() -> None:
    from ktsync import contract
    from ktsync.core import contract as core_contract

    assert contract.parse_message is core_contract.parse_message
    assert set(core_contract.__all__) <= set(dir(contract))
