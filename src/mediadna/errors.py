"""Errors with stable machine-readable codes.

Every failure that reaches a user (CLI line, result document ``error``
field, cloud callback) is a :class:`MediaDnaError` with one of the codes
below, never a traceback.
"""

from __future__ import annotations

# Input problems: the file itself is the problem; retrying will not help.
NOT_FOUND = "input_not_found"
EMPTY = "input_empty"
NOT_MEDIA = "not_media"
CORRUPT = "corrupt_media"
NO_STREAMS = "no_usable_streams"
UNSUPPORTED = "unsupported_media"
TOO_LARGE = "input_too_large"
TOO_LONG = "input_too_long"
BAD_FINGERPRINT = "bad_fingerprint"
INVALID_ARGUMENT = "invalid_argument"
NO_CONTENT = "no_content"  # only silence / flat frames: nothing to fingerprint
URL_REFUSED = "url_refused"  # a URL the policy refuses (scheme, private address, redirects): see docs/security.md
TIMEOUT = "input_timeout"  # a remote input too slow (silent or past the deadline): a retry may help
# Library problems.
LIBRARY_NOT_FOUND = "library_not_found"
LIBRARY_EXISTS = "library_exists"
FILE_NOT_FOUND = "file_not_found"
FILE_EXISTS = "file_exists"
VERSION_MISMATCH = "fingerprint_version_mismatch"
LIBRARY_BUSY = "library_busy"  # another writer held the library's lock for too long: retry later
IMPORT_NOT_FOUND = "import_not_found"
# Anything else (a bug, a broken disk): reported, never swallowed.
INTERNAL = "internal_error"

INPUT_ERRORS = frozenset(
    {NOT_FOUND, EMPTY, NOT_MEDIA, CORRUPT, NO_STREAMS, UNSUPPORTED, TOO_LARGE, TOO_LONG, BAD_FINGERPRINT, NO_CONTENT, URL_REFUSED}
)


class MediaDnaError(Exception):
    """A failure with a stable ``code`` and a one-line human ``message``."""

    code: str = INTERNAL

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message}

    def __str__(self) -> str:  # one clear line
        return f"{self.code}: {self.message}"


class MediaError(MediaDnaError):
    """The input media cannot be used (corrupt, empty, not media, ...)."""


class LibraryError(MediaDnaError):
    """A library or library-file operation failed (not found, exists, ...)."""


class LibraryBusyError(LibraryError):
    """The library's writer lock stayed taken (``library_busy``): worth retrying later."""

    def __init__(self, message: str):
        super().__init__(LIBRARY_BUSY, message)
