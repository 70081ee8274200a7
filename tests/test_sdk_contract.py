"""The SDK's contract artefacts: openapi.json, the generated models, typing and packaging."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from openapi_spec_validator import validate

import wizchat_management
from wizchat_management import models

ROOT = Path(__file__).resolve().parent.parent
OPENAPI = json.loads((ROOT / "openapi.json").read_text())


def test_openapi_document_is_valid_openapi_3_1() -> None:
    validate(OPENAPI)
    assert OPENAPI["openapi"].startswith("3.1")
    assert OPENAPI["info"]["version"] == "1.0.0"
    assert OPENAPI["components"]["securitySchemes"]["bearerAuth"] == {
        **OPENAPI["components"]["securitySchemes"]["bearerAuth"],
        "type": "http",
        "scheme": "bearer",
    }


def test_openapi_has_the_four_operations_with_their_parameters_and_responses() -> None:
    ops = {
        op["operationId"]: (path, method, op)
        for path, item in OPENAPI["paths"].items()
        for method, op in item.items()
    }
    assert set(ops) == {"listChatbots", "getChatbot", "getChatbotConfig", "applyChatbotConfig"}
    assert ops["listChatbots"][:2] == ("/api/v1/chatbots", "get")
    assert ops["applyChatbotConfig"][:2] == ("/api/v1/chatbots/{chatbotId}/apply", "post")
    params = lambda op_id: {p["name"] for p in ops[op_id][2]["parameters"]}  # noqa: E731
    assert params("listChatbots") == {"limit", "cursor"}
    assert params("applyChatbotConfig") == {"chatbotId", "dryRun", "prune"}
    apply_responses = ops["applyChatbotConfig"][2]["responses"]
    assert apply_responses["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ApplyResult")
    for op_id, (_, _, op) in ops.items():
        for status in ("400", "401", "403", "429", "500", "503"):
            assert status in op["responses"], (op_id, status)
    rate_limited = OPENAPI["components"]["responses"]["RateLimited"]
    assert {"Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(
        rate_limited["headers"]
    )


@pytest.mark.parametrize(
    "name",
    [
        "PublicChatbot", "ChatbotConfigDocument", "ConfigMetadata", "Spec", "Plan", "PlanSummary",
        "Operation", "FieldChange", "FailedOperation", "ApplyResult", "PublicMcpServer",
        "PublicSkill", "PublicTelemetry", "PublicSecurity", "PublicDomain", "ErrorResponse",
    ],
)
def test_every_spec_schema_exists_and_is_generated(name: str) -> None:
    assert name in OPENAPI["components"]["schemas"]
    assert hasattr(models, name)


def test_every_object_schema_admits_additional_properties() -> None:
    # A field the server adds later must survive get_config → edit → apply.
    for name, schema in OPENAPI["components"]["schemas"].items():
        if schema.get("type") == "object":
            assert schema.get("additionalProperties") is True, name
            assert getattr(models, name).model_config.get("extra") == "allow", name


def test_regenerating_the_models_is_byte_identical(tmp_path: Path) -> None:
    out = tmp_path / "models.py"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen.py"), "--output", str(out)], check=True)
    assert out.read_bytes() == (ROOT / "wizchat_management" / "models.py").read_bytes(), (
        "wizchat_management/models.py is stale: run python scripts/gen.py"
    )


def test_version_tracks_the_openapi_version() -> None:
    assert wizchat_management.__version__ == OPENAPI["info"]["version"]


def test_key_types_are_reexported_from_the_package_root() -> None:
    for name in ["WizChatClient", "AsyncWizChatClient", "WizChatApiError", "ChatbotConfigDocument",
                 "ApplyResult", "Plan", "PublicChatbot", "Spec"]:
        assert name in wizchat_management.__all__
        assert getattr(wizchat_management, name) is not None
    assert (ROOT / "wizchat_management" / "py.typed").exists()


def test_client_modules_do_not_import_the_emulator() -> None:
    # The SDK stays a thin httpx wrapper: importing it must not pull in the server stack.
    code = "import sys, wizchat_management; print(any(m.startswith(('starlette', 'uvicorn', 'wizchat_management.emulator')) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_wizsync_and_the_sdk_pass_mypy_strict_on_python_3_10() -> None:
    # No arguments: pyproject.toml's [tool.mypy] decides what is checked and how, as for a developer.
    # mypy's own incremental cache (.mypy_cache, git-ignored): about 9 s cold, as in CI's fresh
    # clone, under a second when little changed; mypy re-checks whatever changed since.
    result = subprocess.run(
        [sys.executable, "-m", "mypy"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The config, not a shortcut in it, is what passed: strict, 3.10, every hand-written module.
    config = (ROOT / "pyproject.toml").read_text().split("[tool.mypy]", 1)[1].split("\n[", 1)[0]
    assert "strict = true" in config and 'python_version = "3.10"' in config, config
    hand_written = [
        p for package in ("wizsync", "wizchat_management") for p in (ROOT / package).rglob("*.py")
        if p != ROOT / "wizchat_management" / "models.py"
    ]
    checked = re.search(r"(?:in|checked) (\d+) source files", result.stdout)
    assert checked is not None and int(checked.group(1)) == len(hand_written), result.stdout


def test_the_package_ships_the_contract_it_was_generated_from() -> None:
    # Read at run time (the client's null rule, wizsync's document checks): it must be in the wheel.
    from wizchat_management import contract

    assert contract.openapi() == OPENAPI
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'wizchat_management = ["py.typed", "openapi.json"]' in pyproject
