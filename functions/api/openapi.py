"""``python -m functions.api.openapi``: write docs/openapi.json from the API's routes (``--check``: fail if stale)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

OPENAPI_FILE = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def document() -> str:
    """The OpenAPI document of functions/api/handler.py, as the repository keeps it."""
    from aws_lambda_powertools.event_handler.openapi.models import SecurityScheme  # noqa: F401 - API shape

    from functions.api.handler import API_TITLE, API_VERSION, app

    raw = app.get_openapi_json_schema(
        title=API_TITLE, version=API_VERSION,
        description="mediadna HTTP API: libraries, files, jobs and compare. Every request is signed with AWS "
                    "IAM credentials (SigV4, service execute-api); see docs/api.md.",
        security_schemes={"sigv4": {"type": "apiKey", "name": "Authorization", "in": "header",
                                    "description": "AWS Signature Version 4 (API Gateway AWS_IAM authorisation)"}},
        security=[{"sigv4": []}],
    )
    doc = json.loads(raw)
    # the routes answer invalid requests with 400 and ErrorOut (the handler's own
    # validation-error handler), not Powertools' default 422 HTTPValidationError
    for operations in doc["paths"].values():
        for operation in operations.values():
            for status, description in (("422", "Validation Error"), ("500", "Response Validation Error")):
                if operation.get("responses", {}).get(status, {}).get("description") == description:
                    del operation["responses"][status]
    schemas = doc.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(name, None)
    if "#/components/schemas/HTTPValidationError" in json.dumps(doc) or "ValidationError\"" in json.dumps(doc):
        raise RuntimeError("a route still refers to Powertools' validation error models")
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = document()
    if "--check" in argv:
        if not OPENAPI_FILE.exists() or OPENAPI_FILE.read_text() != text:
            print(f"{OPENAPI_FILE} is stale: run python -m functions.api.openapi", file=sys.stderr)
            return 1
        return 0
    OPENAPI_FILE.write_text(text)
    print(f"wrote {OPENAPI_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
