"""Files as spreadsheets and exports write them: a UTF-8 byte order mark and padded addresses are read
the same by `ktsync enqueue` and `ktsync import`, JSON lines and CSV alike."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import redis

from ktsync.config.settings import Settings
from ktsync.core.lanes import Lane
from tests.integration.test_vertical_slice import ktsync

pytestmark = pytest.mark.integration

BOM = "\ufeff"
PADDED = "  Alex.Example@Shop.Example "


def queued(client: redis.Redis, settings: Settings, lane: Lane) -> list[dict[str, Any]]:
    raw = client.lrange(settings.broker_prefix + settings.worker.lane_queue(lane), 0, -1)
    return [json.loads(base64.b64decode(json.loads(item)["body"]))[0][0] for item in raw]


def line(crm_id: str, email: str) -> str:
    return json.dumps({"v": 1, "type": "contact.upsert", "source": "hubspot", "crm_contact_id": crm_id,
                       "email": email, "occurred_at": 1_795_341_600})  # fmt: skip


@pytest.mark.parametrize("via", ["file", "stdin"])
def test_enqueue_takes_a_json_lines_file_with_a_bom_and_a_padded_address(
    via: str, env: dict[str, str], settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    text = BOM + line("1", PADDED) + "\n" + line("2", "two@shop.example") + "\n"
    path = tmp_path / "contacts.jsonl"
    path.write_text(text, encoding="utf-8")

    result = (
        ktsync("enqueue", str(path), env=env)
        if via == "file"
        else ktsync("enqueue", "-", env=env, stdin=text)
    )

    assert result.returncode == 0, result.stderr
    assert "enqueued 2, rejected 0" in result.stdout
    emails = {m["crm_contact_id"]: m["email"] for m in queued(redis_client, settings, Lane.LIVE)}
    assert emails == {"1": PADDED.strip(), "2": "two@shop.example"}


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_import_reads_a_bom_and_trims_the_address_the_same_in_csv_and_json_lines(
    kind: str, env: dict[str, str], settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    # Given the same contact, as a spreadsheet's CSV export and as JSON lines, each starting with a BOM
    path = tmp_path / f"contacts.{kind}"
    body = f'id,email,firstname\n501,"{PADDED}",Alex\n' if kind == "csv" else line("501", PADDED) + "\n"
    path.write_bytes((BOM + body).encode("utf-8"))

    result = ktsync("import", str(path), "--source", "hubspot", env=env)

    assert result.returncode == 0, result.stderr
    assert "enqueued 1, rejected 0" in result.stdout
    [message] = queued(redis_client, settings, Lane.BULK)
    assert (message["crm_contact_id"], message["email"]) == ("501", PADDED.strip())
