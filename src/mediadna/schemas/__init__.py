"""JSON Schemas of the documents mediadna writes (package data)."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    """``load_schema("result")`` or ``load_schema("compare")``."""
    return json.loads(resources.files(__name__).joinpath(f"{name}.schema.json").read_text())


def validate(document: dict, name: str) -> None:
    """Raise ``jsonschema.ValidationError`` if ``document`` does not fit."""
    import jsonschema

    jsonschema.validate(document, load_schema(name))
