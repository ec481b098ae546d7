"""The job steps as plain functions, and the embedded engine that runs them.

split (:func:`plan_segments`) -> extract (:func:`extract_window`) -> merge
(:func:`mediadna.extract.merge_fingerprints`) -> match (:func:`find_matches`)
-> commit (:func:`commit`) -> publish (a :class:`ResultPublisher`).  The cloud
pipeline runs the same functions, one per Lambda task; :class:`Engine` runs them
in-process against any :class:`~mediadna.store.base.LibraryStore`.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from . import decode as D
from .errors import FILE_EXISTS, INTERNAL, INVALID_ARGUMENT, NOT_FOUND, VERSION_MISMATCH, LibraryError, MediaDnaError, MediaError
from .extract import media2fingerprint
from .fingerprint import FINGERPRINT_NAME, FINGERPRINT_VERSION, Fingerprint
from .index import fingerprint2postings
from .match import Match, Matcher, Segment, closeness
from .store.base import DEFAULT_THRESHOLD, FileRecord, Library, LibraryStore, validate_primary_key
from .defaults import SAVE_TYPES, SEGMENT_OVERLAP, SEGMENT_SECONDS  # noqa: F401 - re-exported
from .result import RESULT_SCHEMA_VERSION, build_result, new_job_id  # noqa: F401 - re-exported

log = logging.getLogger(__name__)
#: A query shorter than the library's minimum segment may still match if the
#: copied run covers this fraction of it (e.g. a 2 s audio excerpt).
SHORT_QUERY_FRACTION = 0.8


# --- publisher port ---------------------------------------------------------
class ResultPublisher(Protocol):
    def publish(self, result: dict) -> None: ...


class NullPublisher:
    def publish(self, result: dict) -> None:  # noqa: D401 - nothing to do
        return None


class DirectoryPublisher:
    """Writes each result to ``<root>/<library>/<job_id>.json`` (embedded default)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def publish(self, result: dict) -> None:
        import json

        lib = result.get("library") or "_"
        path = self.root / lib / f"{result['job_id']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=2, sort_keys=True))
        tmp.replace(path)


# --- steps ------------------------------------------------------------------
def plan_segments(duration: float, segment_seconds: float = SEGMENT_SECONDS, overlap: float = SEGMENT_OVERLAP) -> list[tuple[float, float]]:
    """split: windows ``[start, end)`` covering the media, consecutive ones overlapping.

    A remainder shorter than a quarter segment joins the window before it
    (no window of a fraction of a second at the end).
    """
    if duration <= 0:
        return [(0.0, float("inf"))]
    out = []
    start = 0.0
    while start < duration:
        end = min(duration, start + segment_seconds)
        if duration - end < 0.25 * segment_seconds:
            end = duration
        out.append((start, end + (overlap if end < duration else 0.0)))
        start = end
    return out


#: A window is decoded from this many seconds before its start: its first
#: frames then get the same content box (one visual chunk of context) and its
#: first audio peaks the same masking history as in a whole-file pass.  The
#: lead-in belongs to the previous window and is dropped on merge.
WINDOW_LEAD_IN = 8.0


def extract_window(source: str | os.PathLike, start: float, end: float) -> Fingerprint:
    """extract: fingerprint one window; its media times are kept absolute."""
    lead = max(0.0, start - WINDOW_LEAD_IN)
    fp = media2fingerprint(source, start=lead, end=None if end == float("inf") else end, sha256="")
    fp.meta["window_start"] = start
    fp.meta["window_end"] = end
    return fp


def load_input(source: str | os.PathLike) -> Fingerprint:
    """A media file/URL is fingerprinted; a ``.mdna`` file is read as is."""
    if not D.is_url(source) and str(source).endswith(".mdna"):
        if not Path(source).exists():
            raise MediaError(NOT_FOUND, f"no such file: {Path(source).name}")
        fp = Fingerprint.load(source)
        if fp.name != FINGERPRINT_NAME or fp.version != FINGERPRINT_VERSION:
            raise MediaError(VERSION_MISMATCH, f"{Path(source).name} was made by {fp.name} v{fp.version}; this is v{FINGERPRINT_VERSION}")
        return fp
    return media2fingerprint(source)


def duplicate_rule(match: Match, library: Library, query_duration: float) -> bool:
    """A match is a duplicate at or above the library threshold with a long enough segment."""
    if match.exact:
        return True
    need = library.min_segment_seconds
    if query_duration > 0:
        need = min(need, SHORT_QUERY_FRACTION * query_duration)
    longest = max((s.duration for s in match.segments), default=0.0)
    return match.similarity >= library.threshold and longest >= need


def find_matches(store: LibraryStore, library: str, fp: Fingerprint) -> list[Match]:
    """match: exact (SHA-256) matches first, then fingerprint matches."""
    exact: list[Match] = []
    if fp.sha256:
        for rec in store.files_by_sha256(library, fp.sha256):
            seg = Segment(0.0, fp.duration, 0.0, rec.duration, 1.0, _modality(fp), 1.0, False)
            exact.append(Match(rec.primary_key, 1.0, 1.0, 1.0, seg.modality, [seg], exact=True))
    found = Matcher(store).match(library, fp, exclude={m.primary_key for m in exact})
    return exact + found


def _modality(fp: Fingerprint) -> str:
    if fp.has_visual and fp.has_audio:
        return "audiovisual"
    return "video" if fp.has_visual else "audio"


def commit(store: LibraryStore, library: str, fp: Fingerprint, primary_key: str, save_type: str, duplicate: bool, metadata: dict | None = None) -> bool:
    """commit: apply the save type; returns whether the file is now stored.

    Re-ingesting the same key with the same bytes is a no-op that succeeds.
    """
    if save_type == "nosave" or (save_type == "save" and duplicate):
        return False
    record = FileRecord(
        primary_key=primary_key,
        duration=float(fp.duration),
        sha256=fp.sha256,
        media_type=fp.media_type,
        has_video=fp.has_visual,
        has_audio=fp.has_audio,
        fingerprint_version=fp.version,
        metadata=dict(metadata or {}),
    )
    try:
        store.add_file(library, record, fp, fingerprint2postings(fp), replace=(save_type == "forcesave"))
    except LibraryError as exc:
        if exc.code != FILE_EXISTS:
            raise
        existing = store.get_file(library, primary_key)
        if fp.sha256 and existing.sha256 == fp.sha256:
            return True  # idempotent re-ingest
        raise LibraryError(FILE_EXISTS, f"primary key {primary_key!r} already holds another file; use save type forcesave to replace it") from None
    return True


@dataclass
class Decision:
    """What match + commit decided for one input."""

    matches: list[Match]
    duplicate: bool
    stored: bool


def mark_duplicates(matches: list[Match], library: Library, query_duration: float) -> bool:
    for m in matches:
        m.duplicate = duplicate_rule(m, library, query_duration)
    return any(m.duplicate for m in matches)


def match_and_commit(
    store: LibraryStore,
    library: Library,
    fp: Fingerprint,
    primary_key: str,
    save_type: str,
    metadata: dict | None = None,
    *,
    matches: list[Match] | None = None,
    revision: int | None = None,
) -> Decision:
    """match + commit, safe under concurrency.

    ``save`` stores only if nothing in the library duplicates the input, even
    when near-identical inputs are processed at the same moment: the commit
    runs under the library's writer lock, and if the library changed since
    ``matches`` were computed (its revision moved) the input is matched again
    before deciding.  Pass ``matches`` and the ``revision`` read *before*
    computing them to reuse a match step's work; without them matching runs here.
    """
    name = library.name
    if matches is None:
        revision = store.library_revision(name) if save_type == "save" else None
        matches = find_matches(store, name, fp) if save_type != "onlysave" else []
    duplicate = mark_duplicates(matches, library, fp.duration)
    if save_type != "save" or duplicate:
        return Decision(matches, duplicate, commit(store, name, fp, primary_key, save_type, duplicate, metadata))
    with store.library_lock(name):
        if revision is None or store.library_revision(name) != revision:
            matches = find_matches(store, name, fp)  # another writer stored meanwhile: look again
            duplicate = mark_duplicates(matches, library, fp.duration)
        stored = commit(store, name, fp, primary_key, save_type, duplicate, metadata)
    return Decision(matches, duplicate, stored)


# --- result document ----------------------------------------------------------
# --- the engine -------------------------------------------------------------
@dataclass
class Engine:
    """Runs jobs in-process: the embedded product (CLI, local library)."""

    store: LibraryStore
    publisher: ResultPublisher = NullPublisher()

    def process(
        self,
        source: str | os.PathLike | Fingerprint,
        library: str,
        save_type: str = "nosave",
        primary_key: str | None = None,
        metadata: dict | None = None,
        job_id: str | None = None,
    ) -> dict:
        """One input through match + commit; never raises for a bad input."""
        job_id = job_id or new_job_id()
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        input_key = source.source if isinstance(source, Fingerprint) else _input_key(source)
        fp: Fingerprint | None = None
        common = dict(job_id=job_id, library=library, input_key=input_key, save_type=save_type)
        self._record(job_id, "running", library, input_key)
        try:
            if save_type not in SAVE_TYPES:
                raise MediaDnaError(INVALID_ARGUMENT, f"unknown save type {save_type!r}; use one of {', '.join(SAVE_TYPES)}")
            lib = self.store.get_library(library)
            key = validate_primary_key(primary_key or input_key)
            t = time.perf_counter()
            fp = source if isinstance(source, Fingerprint) else load_input(source)
            timings["fingerprint_ms"] = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            revision = self.store.library_revision(library) if save_type == "save" else None
            matches = find_matches(self.store, library, fp) if save_type != "onlysave" else []
            timings["match_ms"] = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            decision = match_and_commit(
                self.store, lib, fp, key, save_type, metadata, matches=matches, revision=revision
            )
            matches, duplicate, stored = decision.matches, decision.duplicate, decision.stored
            timings["commit_ms"] = (time.perf_counter() - t) * 1000
            timings["total_ms"] = (time.perf_counter() - t0) * 1000
            result = build_result(
                **common, fp=fp, matches=matches, duplicate=duplicate, stored=stored,
                primary_key=key if stored else None, threshold=lib.threshold, timings=timings,
            )
        except MediaDnaError as exc:
            timings["total_ms"] = (time.perf_counter() - t0) * 1000
            result = build_result(**common, fp=fp, error=exc, timings=timings)
        except Exception as exc:  # a bug or broken disk: reported, not swallowed silently
            log.exception("internal error processing %s", key)
            timings["total_ms"] = (time.perf_counter() - t0) * 1000
            err = MediaDnaError(INTERNAL, f"{type(exc).__name__}: {exc}")
            result = build_result(**common, fp=fp, error=err, timings=timings)
        self.publisher.publish(result)
        self._record(job_id, result["status"], library, input_key,
                     error_code=(result["error"] or {}).get("code"))
        return result

    def _record(self, job_id: str, state: str, library: str, input_key: str, **fields) -> None:
        """The job's record in the store (every store keeps them; one that cannot is skipped)."""
        put_job = getattr(self.store, "put_job", None)
        if put_job is None:
            return
        try:
            put_job(job_id, state, kind="fingerprint", library=library if _is_name(library) else None,
                    input_key=input_key, **{k: v for k, v in fields.items() if v is not None})
        except MediaDnaError as exc:  # a closed store or a job id of another shape: the result still stands
            log.warning("job %s not recorded: %s", job_id, exc)


def _is_name(library: object) -> bool:
    from .store.base import LIBRARY_NAME_RE

    return isinstance(library, str) and bool(LIBRARY_NAME_RE.fullmatch(library))


def _input_key(source: str | os.PathLike) -> str:
    return str(source) if D.is_url(source) else Path(source).name


# --- pairwise compare -------------------------------------------------------------
def _confidence(similarity: float) -> str:
    return "high" if similarity >= 0.8 else ("medium" if similarity >= DEFAULT_THRESHOLD else "low")


def compare(source: str | os.PathLike, target: str | os.PathLike) -> dict:
    """One-to-one compare: does ``target`` copy ``source``?  (the compare envelope)"""
    from .store.memory import MemoryStore

    t0 = time.perf_counter()
    envelope = {"match": False, "confidence": "low", "similarity_score": 0.0, "processing_time_ms": 0.0,
                "media_type": None, "matched_segments": [], "status": "succeeded", "error": None}
    try:
        src = load_input(source)
        tgt = load_input(target)
        if src.media_type == "image" or tgt.media_type == "image":
            envelope["media_type"] = "image"
            sim = _image_similarity(src, tgt)
            envelope.update(match=sim >= DEFAULT_THRESHOLD, similarity_score=round(sim, 4), confidence=_confidence(sim))
        else:
            envelope["media_type"] = "video" if (src.has_visual and tgt.has_visual) else "audio"
            store = MemoryStore()
            lib = store.create_library("compare")
            commit(store, "compare", src, "source", "onlysave", False)
            matches = find_matches(store, "compare", tgt)
            if matches:
                best = matches[0]
                envelope.update(
                    match=duplicate_rule(best, lib, tgt.duration),
                    similarity_score=round(best.similarity, 4),
                    confidence=_confidence(best.similarity),
                    matched_segments=[
                        {"source_start": round(s.reference_start, 3), "source_end": round(s.reference_end, 3),
                         "target_start": round(s.query_start, 3), "target_end": round(s.query_end, 3),
                         "score": round(s.score, 4), "modality": s.modality, "speed": round(s.speed, 3)}
                        for s in best.segments
                    ],
                )
    except MediaDnaError as exc:
        envelope.update(status="failed", error=exc.to_dict())
    except Exception as exc:
        log.exception("internal error comparing %s with %s", source, target)
        envelope.update(status="failed", error={"code": INTERNAL, "message": f"{type(exc).__name__}: {exc}"})
    envelope["processing_time_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    return envelope


def _image_similarity(a: Fingerprint, b: Fingerprint) -> float:
    """Best closeness of any frame of ``b`` to ``a``'s first frame, mirrored or
    not, either side taken whole or by its centred crops (a cropped copy)."""
    if not a.has_visual or not b.has_visual:
        raise MediaError(INVALID_ARGUMENT, "an image can only be compared with an image or a video frame")
    from .match import views_distance

    first = a.visual.select(slice(0, 1))
    d = min(
        int(views_distance(h[:, None], other.views).min())
        for one, other in ((first, b.visual), (b.visual, first))
        for h in (one.hashes, one.flipped)
    )
    return float(closeness(d))
