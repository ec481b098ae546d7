"""Jobs of the cloud pipeline, as plain functions (no AWS in here).

One uploaded object is one job.  The Step Functions workflow
(``infra/workflow/fingerprint.asl.json``) runs the steps below, one Lambda
task each; the Lambda handlers in ``functions/`` only parse their event, build
the adapters and call one of these:

======================  ======================================================
``job_from_object``     trigger: object key -> job options (library, save type, key)
``split_step``          probe the media, plan overlapping segments
``extract_step``        fingerprint one segment, store the part
``merge_step``          merge the parts into one fingerprint (absolute times)
``match_step``          match, apply the save type (save-if-unique), result document
``failure_result``      the one error sink: a ``failed`` result document
======================  ======================================================

Intermediate data (parts, the merged fingerprint) goes through a
:class:`PartStore` (an S3 prefix in the cloud), never through the state payload
(Step Functions caps it at 256 KB).  Results go to :func:`result_key`.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import Protocol

from .defaults import SAVE_TYPES, SEGMENT_OVERLAP, SEGMENT_SECONDS
from .errors import INTERNAL, INVALID_ARGUMENT, MediaDnaError, MediaError
from .fingerprint import Fingerprint
from .result import build_result
from .store.base import MAX_KEY_LENGTH, LibraryStore, validate_library_name, validate_primary_key

# The steps that decode, fingerprint or match import the media stack (PyAV,
# OpenCV, SciPy) when they run, so that the trigger, publish and error-sink
# functions (options, names, failed results) stay light: a zip and a layer.

#: Object keys are read as ``<prefix><library>/<save type>/<path>``; a key with
#: fewer parts uses the defaults (see :func:`job_from_object`).
INPUT_PREFIX = "input/"
#: Where a result document lands in the output bucket (variables: see :func:`result_key`).
DEFAULT_RESULT_TEMPLATE = "results/{library}/{date}/{inputName}-{jobId}.json"
#: Step Functions execution names: 1-80 characters of this alphabet.
_NAME_SAFE = re.compile(r"[^A-Za-z0-9_-]")
_TEMPLATE_VARS = ("inputName", "inputFormat", "library", "jobId", "date")


@dataclass(frozen=True)
class JobDefaults:
    library: str = "default"
    save_type: str = "save"


@dataclass(frozen=True)
class Job:
    """Everything a step needs to know about its job (the workflow's ``$.job``)."""

    job_id: str
    bucket: str
    key: str
    version_id: str  # the object version ("" when the bucket is not versioned)
    etag: str
    library: str
    save_type: str
    primary_key: str
    metadata: dict = field(default_factory=dict)
    #: an http(s) input (submitted through the API): read from there, not from bucket/key
    source_url: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Job":
        try:
            return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except TypeError as exc:
            raise MediaDnaError(INVALID_ARGUMENT, f"malformed job: {exc}") from None


def execution_name(bucket: str, key: str, version: str) -> str:
    """The job id: deterministic in (bucket, key, version id or ETag), so a repeated
    notification of the same object version maps to the same execution name and
    Step Functions refuses to start it twice."""
    digest = hashlib.sha256(f"{bucket}\0{key}\0{version}".encode("utf-8")).hexdigest()[:32]
    stem = _NAME_SAFE.sub("_", PurePosixPath(key).stem)[:40].strip("_") or "input"
    return f"{stem}-{digest}"


def job_from_object(
    bucket: str, key: str, version_id: str = "", etag: str = "", defaults: JobDefaults = JobDefaults(),
    overrides: dict | None = None,
) -> Job:
    """Job options from the object key (and optional metadata/tag overrides).

    ``input/<library>/<save type>/<path>`` -> that library and save type;
    ``input/<library>/<path>`` -> that library, the default save type;
    anything else -> the defaults.  The primary key is ``<path>`` (the key
    after the options).  ``overrides`` (object metadata or tags: ``library``,
    ``save-type``, ``primary-key``) win over the key.
    """
    if not key or key.endswith("/"):
        raise MediaDnaError(INVALID_ARGUMENT, f"not an object: {key!r}")
    rest = key[len(INPUT_PREFIX):] if key.startswith(INPUT_PREFIX) else None
    library, save_type, path = defaults.library, defaults.save_type, key
    if rest is not None:
        parts = rest.split("/")
        if len(parts) >= 3 and parts[1] in SAVE_TYPES:
            library, save_type, path = parts[0], parts[1], "/".join(parts[2:])
        elif len(parts) >= 2:
            library, path = parts[0], "/".join(parts[1:])
    o = {k.lower().replace("_", "-"): v for k, v in (overrides or {}).items()}
    library = o.get("library", library)
    save_type = o.get("save-type", save_type)
    primary_key = o.get("primary-key", path)
    validate_library_name(library)
    if save_type not in SAVE_TYPES:
        raise MediaDnaError(INVALID_ARGUMENT, f"unknown save type {save_type!r}; use one of {', '.join(SAVE_TYPES)}")
    validate_primary_key(primary_key)
    name = execution_name(bucket, key, version_id or etag)
    return Job(name, bucket, key, version_id or "", etag or "", library, save_type, primary_key)


def job_from_url(
    url: str, library: str, save_type: str = "save", primary_key: str | None = None, client_token: str = "",
) -> Job:
    """A job for an https URL (the API's submit).

    The job id is deterministic in (library, URL, client token): a retried
    submit maps to the same execution name and starts nothing new.  The
    primary key defaults to the URL without its query and fragment.
    """
    from urllib.parse import urlsplit

    if not isinstance(url, str) or len(url) > 2048 or any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise MediaDnaError(INVALID_ARGUMENT, "source_url must be an https URL of at most 2048 characters")
    parts = urlsplit(url)
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise MediaDnaError(INVALID_ARGUMENT, "source_url must be an https URL")
    validate_library_name(library)
    if save_type not in SAVE_TYPES:
        raise MediaDnaError(INVALID_ARGUMENT, f"unknown save type {save_type!r}; use one of {', '.join(SAVE_TYPES)}")
    bare = parts._replace(query="", fragment="").geturl()
    key = validate_primary_key(primary_key if primary_key is not None else bare[:MAX_KEY_LENGTH])
    digest = hashlib.sha256(f"url\0{library}\0{url}\0{client_token}".encode("utf-8")).hexdigest()[:32]
    stem = _NAME_SAFE.sub("_", PurePosixPath(parts.path).stem)[:40].strip("_") or "input"
    return Job(f"{stem}-{digest}", "", bare, "", "", library, save_type, key, source_url=url)


class PartStore(Protocol):
    """Where a job's intermediate data lives (an S3 prefix in the cloud, a folder locally)."""

    def put_bytes(self, key: str, data: bytes) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...


def part_key(job_id: str, name: str) -> str:
    return f"jobs/{job_id}/{name}"


# --- steps ----------------------------------------------------------------------
def split_step(media: str | os.PathLike, segment_seconds: float = SEGMENT_SECONDS, overlap: float = SEGMENT_OVERLAP) -> dict:
    """split: probe (errors for bad media surface here) and plan segments."""
    from . import decode as D
    from .pipeline import plan_segments

    info = D.probe(media)
    segments = plan_segments(info.duration, segment_seconds, overlap)
    return {
        "duration": info.duration,
        "media_type": info.media_type,
        # an input whose duration cannot be probed cannot be split: it is read whole,
        # which may outlast a Lambda task, so the workflow runs it on Fargate
        "runner": "fargate" if info.duration <= 0 else "lambda",
        "segments": [
            {"index": i, "start": start, "end": None if end == float("inf") else end}
            for i, (start, end) in enumerate(segments)
        ],
    }


def extract_step(media: str | os.PathLike, job_id: str, segment: dict, parts: PartStore) -> dict:
    """extract: fingerprint one segment's window and store it as a part."""
    from .pipeline import extract_window

    end = segment.get("end")
    fp = extract_window(media, float(segment["start"]), float("inf") if end is None else float(end))
    key = part_key(job_id, f"part-{int(segment['index']):05d}.mdna")
    parts.put_bytes(key, fp.to_bytes())
    return {"index": int(segment["index"]), "part": key}


def whole_step(media: str | os.PathLike, job: Job, parts: PartStore, *, sha256: str) -> dict:
    """extract + merge in one pass (the Fargate path): the whole fingerprint, where Merge puts it."""
    from .extract import media2fingerprint

    fp = media2fingerprint(media, sha256=sha256)
    fp.source = job.key
    key = part_key(job.job_id, "fingerprint.mdna")
    parts.put_bytes(key, fp.to_bytes())
    return {"fingerprint": key, "duration": fp.duration}


def merge_step(job: Job, part_keys: list[str], parts: PartStore, *, sha256: str, duration: float | None) -> dict:
    """merge: parts -> one fingerprint with absolute times (overlaps de-duplicated)."""
    from .extract import merge_fingerprints

    pieces = [Fingerprint.from_bytes(parts.get_bytes(k)) for k in part_keys]
    fp = merge_fingerprints(pieces, sha256=sha256, duration=duration)
    fp.source = job.key
    key = part_key(job.job_id, "fingerprint.mdna")
    parts.put_bytes(key, fp.to_bytes())
    return {"fingerprint": key, "duration": fp.duration}


def match_step(store: LibraryStore, job: Job, fingerprint_key: str, parts: PartStore, *, timings: dict | None = None) -> dict:
    """match + commit: the result document (status ``succeeded``)."""
    from .pipeline import match_and_commit

    fp = Fingerprint.from_bytes(parts.get_bytes(fingerprint_key))
    library = store.get_library(job.library)
    decision = match_and_commit(store, library, fp, job.primary_key, job.save_type, job.metadata)
    return build_result(
        job_id=job.job_id, library=job.library, input_key=job.key, save_type=job.save_type, fp=fp,
        matches=decision.matches, duplicate=decision.duplicate, stored=decision.stored,
        primary_key=job.primary_key if decision.stored else None, threshold=library.threshold,
        timings=dict(timings or {}),
    )


def error_from_state(error: dict | None) -> MediaDnaError:
    """The workflow's caught error (``{"Error": ..., "Cause": ...}``) as a coded error.

    Handlers raise :class:`MediaDnaError`, whose message reads ``code: text``;
    anything else (a timeout, a crash) is ``internal_error``.
    """
    import json

    error = error or {}
    cause = error.get("Cause") or ""
    message = cause
    try:
        payload = json.loads(cause)
        message = payload.get("errorMessage") or cause
    except (TypeError, ValueError):
        pass
    code, sep, text = str(message).partition(": ")
    if sep and re.fullmatch(r"[a-z_]+", code):
        return MediaDnaError(code, text)
    name = error.get("Error") or "Error"
    return MediaDnaError(INTERNAL, f"{name}: {message}"[:1000] if message else name)


def failure_result(job: Job | dict, error: MediaDnaError) -> dict:
    """The one error sink: a ``failed`` result document for the job."""
    j = job if isinstance(job, Job) else job
    get = (lambda k: getattr(j, k)) if isinstance(j, Job) else (lambda k: j.get(k))
    return build_result(
        job_id=get("job_id") or "unknown", library=get("library") or "", input_key=get("key") or "",
        save_type=get("save_type") or "nosave", error=error,
    )


def result_key(template: str, result: dict, now: datetime | None = None) -> str:
    """Where a result document goes: ``template`` with ``{inputName}`` (the input's
    file name without extension), ``{inputFormat}`` (its extension, lower case),
    ``{library}``, ``{jobId}`` and ``{date}`` (UTC ``YYYY-MM-DD``) filled in."""
    name = PurePosixPath(result.get("input", {}).get("key") or "input")
    values = {
        "inputName": _safe_segment(name.stem) or "input",
        "inputFormat": _safe_segment(name.suffix.lstrip(".").lower()) or "bin",
        "library": _safe_segment(result.get("library") or "_") or "_",
        "jobId": _safe_segment(result.get("job_id") or "job") or "job",
        "date": (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d"),
    }
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError) as exc:
        raise MediaDnaError(
            INVALID_ARGUMENT, f"bad result template {template!r}: use only {{{'}, {'.join(_TEMPLATE_VARS)}}}"
        ) from exc


def _safe_segment(text: str) -> str:
    """One path segment: no slashes, no control characters, no dot-dot, at most 200 characters."""
    cleaned = re.sub(r"[\x00-\x1f\x7f/\\]", "_", text).strip()
    return "" if cleaned in (".", "..") else cleaned[:200]


def require_media(path: str | os.PathLike) -> None:
    if not os.path.exists(path):
        raise MediaError("input_not_found", "the input object is gone")


def fingerprint_upload_step(data: bytes, job: Job, parts: PartStore) -> dict:
    """split, for an uploaded fingerprint (``mediadna fingerprint`` output, binary or JSON,
    recognised by its bytes whatever its name): nothing is decoded; the fingerprint is
    put where Merge puts one and the workflow goes straight to Match (runner ``fingerprint``)."""
    from .fingerprint import read_fingerprint

    fp = read_fingerprint(data)
    fp.source = fp.source or PurePosixPath(job.key).name
    key = part_key(job.job_id, "fingerprint.mdna")
    parts.put_bytes(key, fp.to_bytes())
    return {"runner": "fingerprint", "fingerprint": key, "duration": fp.duration, "media_type": fp.media_type,
            "segments": [], "sha256": fp.sha256}

