"""Where KlickTipp's own OpenAPI spec lives: ``../shared`` beside the repository (as in CI)."""

from pathlib import Path

SPEC_PATH = Path(__file__).resolve().parents[2] / "shared" / "klicktipp" / "management-api.openapi.json"
API_DOC_PATH = Path(__file__).resolve().parents[2] / "shared" / "KLICKTIPP_API.md"
