"""``running_fake`` with a seed file, and its loud failure when the server cannot start."""

from __future__ import annotations

import copy
import json

import pytest
import requests

from fake_klicktipp.seed import default_seed
from fake_klicktipp.testing import partner_headers, running_fake


def test_running_fake_with_a_seed_file(tmp_path):
    seed = copy.deepcopy(default_seed())
    seed["contacts"] = seed["contacts"][:1]
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(seed))
    with running_fake(seed=path) as fake:
        assert fake.control.health()["contacts"] == 1
        response = requests.get(f"{fake.base_url}/tag", headers=partner_headers(), timeout=5)
        assert response.status_code == 200
        fake.control.reset()  # back to the start-up seed, i.e. the file
        assert len(fake.control.state()["contacts"]) == 1
    assert fake.process.poll() is not None


def test_running_fake_fails_loudly_with_the_server_error(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text(json.dumps({"lists": []}))
    with pytest.raises(RuntimeError, match="SeedError"), running_fake(seed=path):
        pass
