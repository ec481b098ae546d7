"""Re-scan: check kept uploads again when references are added (no AWS in here).

An upload that was queried before its original was registered found nothing
then.  If uploads are kept (their fingerprints stored in a *query library*,
e.g. ingested with ``onlysave``), :func:`rescan` matches each of them against
the reference library again and yields a result document per upload that
matches now, so a late-registered original still catches its earlier copies.
``since`` limits the report to matches against references added at or after
that time (the ones a previous re-scan could not know).
"""

from __future__ import annotations

from collections.abc import Iterator

from .pipeline import NullPublisher, ResultPublisher, find_matches, mark_duplicates
from .result import build_result, new_job_id
from .store.base import LibraryStore, normalize_time


def _added_since(store: LibraryStore, library: str, since: str) -> set[str]:
    keys, cursor = set(), None
    while True:
        page = store.list_files(library, limit=1000, cursor=cursor)
        keys |= {r.primary_key for r in page.items if r.created_at >= since}
        cursor = page.next_cursor
        if not cursor:
            return keys


def rescan(
    store: LibraryStore,
    query_library: str,
    reference_library: str,
    *,
    since: str | None = None,
    include_unmatched: bool = False,
    publisher: ResultPublisher = NullPublisher(),
) -> Iterator[dict]:
    """Each kept upload of ``query_library`` matched against ``reference_library``.

    Yields (and publishes) a ``nosave`` result document per upload with
    matches (every upload with ``include_unmatched``); ``input.key`` is the
    upload's primary key in the query library.  Nothing is stored.
    """
    ref = store.get_library(reference_library)
    store.get_library(query_library)
    fresh = _added_since(store, reference_library, normalize_time(since, "since")) if since is not None else None
    cursor = None
    while True:
        page = store.list_files(query_library, limit=100, cursor=cursor)
        for rec in page.items:
            fp = store.load_fingerprint(query_library, rec.primary_key)
            matches = find_matches(store, reference_library, fp)
            if fresh is not None:
                matches = [m for m in matches if m.primary_key in fresh]
            duplicate = mark_duplicates(matches, ref, fp.duration)
            if not matches and not include_unmatched:
                continue
            result = build_result(job_id=new_job_id(), library=reference_library, input_key=rec.primary_key,
                                  save_type="nosave", fp=fp, matches=matches, duplicate=duplicate,
                                  threshold=ref.threshold)
            publisher.publish(result)
            yield result
        cursor = page.next_cursor
        if not cursor:
            return
