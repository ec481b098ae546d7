"""The result document (one per input; the CLI's ``--json`` and the cloud's output bucket).

Light on purpose (no media libraries): the cloud's trigger and error sink build
``failed`` results without loading the decoding stack.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from .errors import MediaDnaError
from .fingerprint import FINGERPRINT_NAME, FINGERPRINT_VERSION, Fingerprint

if TYPE_CHECKING:
    from .match import Match

RESULT_SCHEMA_VERSION = "1.0"


def new_job_id() -> str:
    return uuid.uuid4().hex


def build_result(
    *,
    job_id: str,
    library: str,
    input_key: str,
    save_type: str,
    fp: Fingerprint | None = None,
    matches: "list[Match] | None" = None,
    duplicate: bool = False,
    stored: bool = False,
    primary_key: str | None = None,
    threshold: float | None = None,
    error: MediaDnaError | None = None,
    timings: dict | None = None,
) -> dict:
    return {
        "schema_version": RESULT_SCHEMA_VERSION,
        "job_id": job_id,
        "status": "failed" if error else "succeeded",
        "error": error.to_dict() if error else None,
        "library": library,
        "input": {
            "key": input_key,
            "duration": round(float(fp.duration), 3) if fp else None,
            "sha256": (fp.sha256 or None) if fp else None,
            "media_type": fp.media_type if fp else None,
        },
        "save_type": save_type,
        "stored": bool(stored),
        "primary_key": primary_key,
        "duplicate": bool(duplicate),
        "threshold": threshold,
        "matches": [m.to_dict() for m in (matches or [])],
        "fingerprint": {"name": FINGERPRINT_NAME, "version": FINGERPRINT_VERSION},
        "timings": {k: round(v, 1) for k, v in (timings or {}).items()},
    }


