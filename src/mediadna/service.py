"""The operations of the HTTP API and of the CLI, as one service over ports (no AWS in here).

``functions/api/handler.py`` (API Gateway) and ``mediadna`` (the CLI) both call
:class:`Service`; only the ports differ:

==================  ===============================================================
``store``           the library store (libraries, files, job records)
``launcher``        a :class:`JobLauncher`: starts a job (the Step Functions workflow
                    in the cloud, :class:`InlineLauncher` in-process for the CLI)
``deleter``         a :class:`LibraryDeleter`: deletes a library with files
                    asynchronously (an async Lambda invoke in the cloud); without
                    one the deletion runs before the call returns
``comparer``        the one-to-one compare (:func:`mediadna.pipeline.compare`)
``rescanner``       a :class:`Rescanner`: runs a re-scan job asynchronously (an async
                    Lambda invoke in the cloud); without one it runs before the call
                    returns.  Its results go to ``publisher`` (the output bucket and
                    the callback queue / topic in the cloud)
``importer``        an :class:`~mediadna.imports.ImportLauncher` (S3 listing, plan,
                    the import workflow) with ``import_options`` (concurrency cap,
                    allowed buckets); without one, imports are refused
==================  ===============================================================

Errors are :class:`~mediadna.errors.MediaDnaError` with stable codes;
:func:`http_status` maps them to HTTP statuses.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from .errors import (
    FILE_EXISTS,
    FILE_NOT_FOUND,
    IMPORT_NOT_FOUND,
    INPUT_ERRORS,
    INVALID_ARGUMENT,
    LIBRARY_BUSY,
    LIBRARY_EXISTS,
    LIBRARY_NOT_FOUND,
    NOT_FOUND,
    MediaDnaError,
)
from .jobs import Job, JobDefaults, execution_name, job_from_object, job_from_url
from .store.base import (
    DEFAULT_MIN_SEGMENT_SECONDS,
    DEFAULT_THRESHOLD,
    FilePage,
    FileRecord,
    JobPage,
    Library,
    LibraryStore,
    validate_job_id,
    validate_library_name,
)

#: A job id that names no job.
JOB_NOT_FOUND = "job_not_found"
#: Compare media types: what the route names, what the envelope must say.
COMPARE_TYPES = ("video", "audio", "image")


class JobLauncher(Protocol):
    """Starts fingerprint jobs (the workflow in the cloud; in-process for the CLI)."""

    def object_job(self, key: str, version_id: str | None, overrides: dict) -> Job:
        """The job for an object already in the input store (``input_not_found`` if it is not there)."""
        ...

    def launch(self, job: Job) -> bool:
        """Start ``job``; False if it was started before (same job id)."""
        ...


class LibraryDeleter(Protocol):
    def delete_later(self, library: str, job_id: str) -> None:
        """Arrange for :meth:`Service.run_library_deletion` to run soon (asynchronously)."""
        ...


class Rescanner(Protocol):
    def rescan_later(self, job_id: str, reference_library: str, query_library: str, since: str | None) -> None:
        """Arrange for :meth:`Service.run_rescan` to run soon (asynchronously)."""
        ...


@dataclass
class Submitted:
    job: dict  # the job record
    created: bool  # False: the same submit was made before (idempotent retry)


@dataclass
class Deletion:
    job: dict | None  # the asynchronous deletion's job record; None: deleted already


def http_status(error: MediaDnaError) -> int:
    """The HTTP status of a coded error."""
    code = error.code
    if code in (LIBRARY_NOT_FOUND, FILE_NOT_FOUND, JOB_NOT_FOUND, NOT_FOUND, IMPORT_NOT_FOUND):
        return 404
    if code in (LIBRARY_EXISTS, FILE_EXISTS):
        return 409
    if code == LIBRARY_BUSY:
        return 503
    if code == INVALID_ARGUMENT:
        return 400
    if code in INPUT_ERRORS:
        return 422
    return 500


def delete_job_id(library: Library) -> str:
    """The deletion job of one library (its name and creation time): repeating the delete finds it again."""
    digest = hashlib.sha256(f"delete\0{library.name}\0{library.created_at}".encode("utf-8")).hexdigest()[:32]
    return f"delete-{digest}"


class Service:
    def __init__(self, store: LibraryStore, *, launcher: JobLauncher | None = None,
                 deleter: LibraryDeleter | None = None, comparer: Callable[[str, str], dict] | None = None,
                 defaults: JobDefaults = JobDefaults(), importer=None, import_options: dict | None = None,
                 rescanner: Rescanner | None = None, publisher=None):
        self.store = store
        self.rescanner = rescanner
        self.publisher = publisher
        self.importer = importer
        self.import_options = dict(import_options or {})
        self.launcher = launcher
        self.deleter = deleter
        self.comparer = comparer
        self.defaults = defaults

    # -- libraries -----------------------------------------------------------------
    def create_library(self, name: str, threshold: float = DEFAULT_THRESHOLD,
                       min_segment_seconds: float = DEFAULT_MIN_SEGMENT_SECONDS) -> Library:
        return self.store.create_library(name, threshold=threshold, min_segment_seconds=min_segment_seconds)

    def get_library(self, name: str) -> Library:
        return self.store.get_library(name)

    def list_libraries(self) -> list[Library]:
        return self.store.list_libraries()

    def delete_library(self, name: str) -> Deletion:
        """An empty library goes at once; one with files is deleted by a job (when a deleter is set).

        The job is recorded ``running`` before the deleter is asked, so its id can
        be polled at once; repeating the call returns the same job.
        """
        library = self.store.get_library(name)
        if library.file_count == 0 or self.deleter is None:
            self.store.delete_library(name)
            return Deletion(None)
        job_id = delete_job_id(library)
        existing = self.store.get_job(job_id)
        if existing is not None and existing["state"] in ("queued", "running"):
            return Deletion(existing)
        self.store.put_job(job_id, "running", kind="delete_library", library=name, input_key=f"library:{name}")
        try:
            self.deleter.delete_later(name, job_id)
        except Exception:
            self.store.put_job(job_id, "failed", error_code="internal_error")
            raise
        return Deletion(self.store.get_job(job_id))

    def run_library_deletion(self, name: str, job_id: str) -> dict:
        """The asynchronous half of :meth:`delete_library` (the deleter calls it)."""
        validate_job_id(job_id)
        try:
            self.store.delete_library(name)
        except MediaDnaError as exc:
            if exc.code != LIBRARY_NOT_FOUND:  # gone already: a repeated delivery of the same deletion
                self.store.put_job(job_id, "failed", error_code=exc.code)
                raise
        self.store.put_job(job_id, "succeeded")
        return self.store.get_job(job_id)

    # -- files -----------------------------------------------------------------------
    def list_files(self, library: str, limit: int = 100, cursor: str | None = None) -> FilePage:
        return self.store.list_files(library, limit=limit, cursor=cursor)

    def get_file(self, library: str, primary_key: str) -> FileRecord:
        return self.store.get_file(library, primary_key)

    def delete_file(self, library: str, primary_key: str) -> None:
        self.store.delete_file(library, primary_key)

    # -- jobs --------------------------------------------------------------------------
    def submit_job(self, library: str, *, key: str | None = None, version_id: str | None = None,
                   source_url: str | None = None, save_type: str | None = None, primary_key: str | None = None,
                   client_token: str = "") -> Submitted:
        """Start a fingerprint job for an object in the input bucket (``key``) or an https URL.

        Idempotent: the job id is deterministic (object version, or library + URL +
        client token); a repeated submit returns the existing job, ``created`` False.
        """
        if self.launcher is None:
            raise MediaDnaError(INVALID_ARGUMENT, "this service cannot start jobs (no job launcher configured)")
        if (key is None) == (source_url is None):
            raise MediaDnaError(INVALID_ARGUMENT, "give exactly one of key and source_url")
        validate_library_name(library)
        self.store.get_library(library)  # library_not_found now, not in a failed job later
        save_type = save_type or self.defaults.save_type
        if source_url is not None:
            job = job_from_url(source_url, library, save_type, primary_key, client_token)
        else:
            overrides = {"library": library, "save-type": save_type}
            if primary_key is not None:
                overrides["primary-key"] = primary_key
            job = self.launcher.object_job(key, version_id, overrides)
            # one job per (object version, options, client token): the same submit again is a
            # repeat; the same object for another library or save type is another job
            options = f"{job.version_id or job.etag}\0{job.library}\0{job.save_type}\0{job.primary_key}\0{client_token}"
            job = Job(**{**job.to_dict(), "job_id": execution_name(job.bucket, job.key, options)})
        existing = self.store.get_job(job.job_id)
        if existing is None:
            self.store.put_job(job.job_id, "queued", kind="fingerprint", library=job.library,
                               input_key=job.key)
        started = self.launcher.launch(job)
        record = self.store.get_job(job.job_id) or existing
        return Submitted(record, created=started and existing is None)

    def get_job(self, job_id: str) -> dict:
        validate_job_id(job_id)
        record = self.store.get_job(job_id)
        if record is None:
            raise MediaDnaError(JOB_NOT_FOUND, f"job {job_id!r} not found")
        return record

    def list_jobs(self, library: str | None = None, state: str | None = None, since: str | None = None,
                  until: str | None = None, limit: int = 100, cursor: str | None = None) -> JobPage:
        return self.store.list_jobs(library=library, state=state, since=since, until=until, limit=limit,
                                    cursor=cursor)

    # -- imports -------------------------------------------------------------------------
    def start_import(self, library: str, *, prefix: str | None = None, manifest: str | None = None,
                     save_type: str | None = None, import_id: str | None = None,
                     max_concurrency: int | None = None) -> dict:
        """Plan and start a backfill import of ``prefix`` or ``manifest`` (``s3://`` URLs) into ``library``."""
        from .imports import DEFAULT_IMPORT_SAVE_TYPE, start_import

        if self.importer is None:
            raise MediaDnaError(INVALID_ARGUMENT, "imports are not configured here")
        return start_import(self.store, self.importer, library, prefix=prefix, manifest=manifest,
                            save_type=save_type or DEFAULT_IMPORT_SAVE_TYPE, import_id=import_id,
                            max_concurrency=max_concurrency, **self.import_options)

    def get_import(self, library: str, import_id: str, *, failures: int = 100, cursor: str | None = None) -> dict:
        """An import's progress and failed items; ``import_not_found`` if it is not one of ``library``'s."""
        from .imports import get_import

        validate_library_name(library)
        record = get_import(self.store, import_id, failures=failures, cursor=cursor)
        if record.get("library") != library:
            raise MediaDnaError(IMPORT_NOT_FOUND, f"import {import_id!r} does not exist in library {library!r}")
        return record

    # -- re-scan -------------------------------------------------------------------------
    def start_rescan(self, reference_library: str, query_library: str, *, since: str | None = None,
                     client_token: str = "") -> Submitted:
        """Check the kept uploads of ``query_library`` against ``reference_library`` again (a ``rescan`` job).

        Every upload that matches now gets a ``nosave`` result document through the
        publisher (in the cloud: the output bucket, the callback queue and the topic).
        ``since`` (ISO-8601) limits it to references added since.  The job id is
        deterministic in (libraries, since, client token): a repeated start while it
        runs returns the same job.
        """
        from .store.base import normalize_time

        self.store.get_library(reference_library)
        self.store.get_library(query_library)
        if reference_library == query_library:
            raise MediaDnaError(INVALID_ARGUMENT, "the query library must differ from the reference library")
        since = normalize_time(since, "since") if since is not None else None
        digest = hashlib.sha256(f"rescan\0{reference_library}\0{query_library}\0{since or ''}\0{client_token}".encode()).hexdigest()[:32]
        job_id = f"rescan-{digest}"
        existing = self.store.get_job(job_id)
        if existing is not None and existing["state"] in ("queued", "running"):
            return Submitted(existing, created=False)
        self.store.put_job(job_id, "running", kind="rescan", library=reference_library, input_key=f"library:{query_library}")
        if self.rescanner is None:
            return Submitted(self.run_rescan(job_id, reference_library, query_library, since), created=True)
        try:
            self.rescanner.rescan_later(job_id, reference_library, query_library, since)
        except Exception:
            self.store.put_job(job_id, "failed", error_code="internal_error")
            raise
        return Submitted(self.store.get_job(job_id), created=True)

    def run_rescan(self, job_id: str, reference_library: str, query_library: str, since: str | None = None) -> dict:
        """The work of :meth:`start_rescan`: publish a result per upload that matches; the job ends ``succeeded``."""
        from .pipeline import NullPublisher
        from .rescan import rescan

        validate_job_id(job_id)
        try:
            for _ in rescan(self.store, query_library, reference_library, since=since,
                            publisher=self.publisher or NullPublisher()):
                pass
        except MediaDnaError as exc:
            self.store.put_job(job_id, "failed", error_code=exc.code)
            raise
        self.store.put_job(job_id, "succeeded")
        return self.store.get_job(job_id)

    # -- compare -------------------------------------------------------------------------
    def compare(self, media_type: str, source_url: str, target_url: str) -> dict:
        """The compare envelope of ``source_url`` and ``target_url`` (http(s) only).

        ``media_type`` is what the caller expects (the route): a pair that turns out
        to be another type is answered with ``status: failed``, ``invalid_argument``.
        """
        if media_type not in COMPARE_TYPES:
            raise MediaDnaError(INVALID_ARGUMENT, f"media type must be one of {', '.join(COMPARE_TYPES)}")
        for name, url in (("source_url", source_url), ("target_url", target_url)):
            check_http_url(url, name)
        comparer = self.comparer
        if comparer is None:
            from .pipeline import compare as comparer
        envelope = comparer(source_url, target_url)
        if envelope.get("status") == "succeeded" and envelope.get("media_type") != media_type:
            envelope = dict(envelope, status="failed", match=False, matched_segments=[], error={
                "code": INVALID_ARGUMENT,
                "message": f"the inputs compare as {envelope.get('media_type')}, not {media_type}: "
                           f"use /{envelope.get('media_type')}/match"})
        return envelope


def check_http_url(url: object, what: str = "url") -> str:
    """An http(s) URL with a host (no file://, data:, ftp:...); the decoder's URL guard does the rest."""
    if not isinstance(url, str) or not url or len(url) > 2048 or any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise MediaDnaError(INVALID_ARGUMENT, f"{what} must be an http(s) URL of at most 2048 characters")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise MediaDnaError(INVALID_ARGUMENT, f"{what} must be an http(s) URL")
    return url


class InlineLauncher:
    """:class:`JobLauncher` for the embedded CLI: runs the job now, in this process, through the Engine.

    Local paths are accepted as ``key`` (the CLI's input store is the file system);
    ``publisher`` receives the result document.
    """

    def __init__(self, store: LibraryStore, publisher=None):
        self.store = store
        self.publisher = publisher
        self.results: dict[str, dict] = {}

    def object_job(self, key: str, version_id: str | None, overrides: dict) -> Job:
        if not os.path.exists(key):
            raise MediaDnaError(NOT_FOUND, f"no such file: {key}")
        stat = os.stat(key)
        job = job_from_object("local", os.path.abspath(key), "", f"{stat.st_size}-{stat.st_mtime_ns}",
                              JobDefaults(), overrides)
        return Job(**{**job.to_dict(), "primary_key": overrides.get("primary-key") or os.path.basename(key)})

    def launch(self, job: Job) -> bool:
        from .pipeline import Engine, NullPublisher

        if (rec := self.store.get_job(job.job_id)) is not None and rec["state"] != "queued":
            return False
        engine = Engine(self.store, self.publisher or NullPublisher())
        source = job.source_url or job.key
        self.results[job.job_id] = engine.process(source, job.library, save_type=job.save_type,
                                                  primary_key=job.primary_key, job_id=job.job_id)
        return True
