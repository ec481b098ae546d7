"""Untrusted http(s) inputs: a URL policy and a guarded, seekable reader.

A URL given by a user may point anywhere, including at services only this
machine can reach (cloud metadata, loopback, the VPC).  :func:`open_url`
checks the URL against a :class:`UrlPolicy` *before* any connection: scheme,
host (parsed the way resolvers parse it: ``2130706433``, ``0177.0.0.1``,
``0x7f.1``, ``127.1``, ``[::ffff:7f00:1]``) and every address the host
resolves to.  It then connects to the address it checked (DNS is asked once
per host, so a rebinding answer cannot swap it; TLS still verifies the
hostname), follows redirects itself with the same checks at every hop, and
enforces size, read-timeout and overall time limits.  The body is read
with HTTP Range requests into a bounded block cache (:class:`RemoteFile`,
a read-only seekable file FFmpeg reads through PyAV), so a time window of a
long file reads only part of it.  The first bytes must look like an audio,
video or image container (:func:`sniff_media`); a Content-Type is never
trusted.

URLs this program made itself (presigned URLs of its own bucket) are marked
:class:`TrustedUrl` and are read by FFmpeg directly (see ``decode.py``).
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import os
import re
import socket
import ssl
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Callable
from urllib.parse import urljoin, urlsplit

from .errors import EMPTY, INVALID_ARGUMENT, NOT_FOUND, NOT_MEDIA, TIMEOUT, TOO_LARGE, URL_REFUSED, MediaError

#: Only these schemes are fetched (file:, ftp:, gopher:, data: ... are refused).
ALLOWED_SCHEMES = ("http", "https")
#: Redirects followed per request (each hop is checked like the first URL).
MAX_REDIRECTS = 5
#: Largest remote input, in bytes: checked against the declared size before
#: reading, and against the bytes received when a server declares none.
MAX_BYTES = 8 * 1024**3
#: Seconds to establish a TCP (+TLS) connection.
CONNECT_TIMEOUT_SECONDS = 5.0
#: Seconds a server may stay silent while a response is awaited or read.
READ_TIMEOUT_SECONDS = 20.0
#: Overall seconds one opened URL may take (all requests, redirects and reads):
#: a trickling server cannot hold a worker beyond this.
DEADLINE_SECONDS = 1800.0
#: Range requests fetch aligned blocks of this size ...
BLOCK_BYTES = 256 * 1024
#: ... up to this many in one request when reads are sequential (4 MiB) ...
MAX_RUN_BLOCKS = 16
#: ... and keep this many in memory (16 MiB; least recently used dropped first).
CACHE_BLOCKS = 64
#: A server that ignores Range is read as one stream, kept in memory up to this
#: size and in a temporary file beyond it (to serve FFmpeg's seeks back).
SPOOL_MEMORY_BYTES = 16 * 1024**2
#: Bytes looked at by :func:`sniff_media` (MPEG-TS needs two 188-byte packets).
SNIFF_BYTES = 512
#: Environment: comma-separated hosts exempt from the private-address rule
#: (e.g. ``127.0.0.1`` for local testing).  Metadata addresses stay refused.
ENV_ALLOW_HOSTS = "MEDIADNA_URL_ALLOW_HOSTS"
ENV_MAX_BYTES = "MEDIADNA_URL_MAX_BYTES"
ENV_DEADLINE = "MEDIADNA_URL_DEADLINE_SECONDS"

#: Cloud metadata and host-local service addresses: refused even when allow-listed.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS/GCP/Azure/OpenStack instance metadata
        "169.254.170.2",  # AWS ECS task metadata and credentials
        "169.254.169.253",  # AWS VPC DNS resolver
        "168.63.129.16",  # Azure wire server (a public address, so named here)
        "100.100.100.200",  # Alibaba Cloud metadata
        "fd00:ec2::254",  # AWS instance metadata over IPv6
        "fd00:ec2::23",  # AWS Time Sync / DNS over IPv6 (Nitro)
    )
)
#: Metadata host names, refused without asking DNS.
METADATA_HOSTS = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"}
)
#: Shared address space (carrier-grade NAT; Python's is_private leaves it out).
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
#: NAT64 prefixes: the IPv4 address in the last 32 bits is what gets reached.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
#: Statuses followed as redirects (with a Location header).
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_USER_AGENT = "mediadna (+https://github.com/mediadna)"
_CHUNK = 64 * 1024

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]


class TrustedUrl(str):
    """A URL this program produced itself (e.g. a presigned URL of its own
    bucket): read by FFmpeg directly, without the :class:`UrlPolicy` checks."""

    __slots__ = ()


def resolve_host(host: str, port: int) -> list[str]:
    """Addresses of ``host`` from the system resolver (one DNS question)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise MediaError(NOT_FOUND, f"cannot resolve host {host}: {exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise MediaError(INVALID_ARGUMENT, f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise MediaError(INVALID_ARGUMENT, f"{name} must be positive")
    return value


@dataclass(frozen=True)
class UrlPolicy:
    """What an untrusted URL may be and how long and large its fetch may get."""

    allow_hosts: frozenset[str] = frozenset()  # canonical hosts exempt from the address rule
    max_redirects: int = MAX_REDIRECTS
    max_bytes: int = MAX_BYTES
    connect_timeout: float = CONNECT_TIMEOUT_SECONDS
    read_timeout: float = READ_TIMEOUT_SECONDS
    deadline: float = DEADLINE_SECONDS
    resolver: Resolver = field(default=resolve_host, compare=False)

    @classmethod
    def from_env(cls, **overrides) -> "UrlPolicy":
        """The default policy with ``MEDIADNA_URL_*`` settings applied."""
        hosts = {canonical_host(h) for h in os.environ.get(ENV_ALLOW_HOSTS, "").split(",") if h.strip()}
        policy = cls(
            allow_hosts=frozenset(hosts),
            max_bytes=int(_env_number(ENV_MAX_BYTES, MAX_BYTES)),
            deadline=_env_number(ENV_DEADLINE, DEADLINE_SECONDS),
        )
        return replace(policy, **overrides)


# --- hosts and addresses -------------------------------------------------------------------

_NUM_PART = re.compile(r"^(0x[0-9a-f]*|0[0-7]*|[1-9][0-9]*)$", re.IGNORECASE)
_LOOKS_NUMERIC = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)
_HOST_CHARS = re.compile(r"^[a-z0-9.\-_:\[\]%]+$", re.IGNORECASE)


def _ipv4_of_parts(host: str) -> ipaddress.IPv4Address | None:
    """``host`` as inet_aton reads it (1-4 parts; decimal, octal or hex), or None if not numeric.

    Raises ValueError for a host that resolvers (and browsers) would take
    for a malformed address: its last label is numeric but it does not parse.
    """
    parts = host.split(".")
    if not _LOOKS_NUMERIC.match(parts[-1]):
        return None
    if len(parts) > 4 or not all(_NUM_PART.match(p) for p in parts):
        raise ValueError(f"{host} is a malformed numeric address")
    values = [int(p, 16) if p[:2].lower() == "0x" else (int(p, 8) if p.startswith("0") and len(p) > 1 else int(p or "0")) for p in parts]
    last_bits = 32 - 8 * (len(values) - 1)
    if any(v > 255 for v in values[:-1]) or values[-1] >= 1 << last_bits:
        raise ValueError(f"{host} is a malformed numeric address")
    n = 0
    for v in values[:-1]:
        n = (n << 8) | v
    return ipaddress.IPv4Address((n << last_bits) | values[-1])


def literal_address(host: str) -> Address | None:
    """The address a host names literally (every IPv4 spelling, IPv6), or None for a name."""
    h = host[:-1] if host.endswith(".") else host
    if ":" in h:
        if "%" in h:
            raise ValueError("IPv6 zone ids are refused")
        return ipaddress.IPv6Address(h)
    return _ipv4_of_parts(h) if h else None


def canonical_host(host: str) -> str:
    """Lower-case name without a trailing dot, or an address's standard form."""
    h = host.strip().strip("[]").lower()
    try:
        ip = literal_address(h)
    except ValueError:
        ip = None
    if ip is not None:
        return str(ip)
    return h[:-1] if h.endswith(".") else h


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address leads to (mapped, compatible, 6to4, Teredo, NAT64)."""
    found = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # IPv4-compatible ::a.b.c.d (deprecated, still routed by some stacks)
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if any(ip in net for net in _NAT64):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def address_refusal(ip: Address) -> str | None:
    """Why an address must not be connected to (None if it is public)."""
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        for v4 in _embedded_ipv4(ip):
            why = address_refusal(v4)
            if why:
                return f"{why} (embedded in IPv6)"
    for attr, why in (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_private", "a private address"),
        ("is_reserved", "a reserved address"),
    ):
        if getattr(ip, attr):
            return why
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "a shared (carrier-grade NAT) address"
    if not ip.is_global:
        return "not a public address"
    return None


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (addresses already vetted) and what to ask."""

    url: str
    scheme: str
    host: str  # as sent in Host and TLS SNI (no brackets)
    port: int
    path: str  # path and query
    addresses: tuple[str, ...]


def check_url(url: str, policy: UrlPolicy, _pins: dict | None = None) -> Target:
    """Parse ``url`` and vet it and every address of its host; raises ``url_refused``.

    ``_pins`` caches a host's checked addresses for later hops (one DNS
    answer per host for the life of a reader).
    """
    if not isinstance(url, str) or any(c in url for c in "\\\x00\r\n\t ") or len(url) > 8192:
        raise MediaError(URL_REFUSED, "refused URL: empty, too long or containing spaces, backslashes or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise MediaError(URL_REFUSED, f"refused URL {url}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise MediaError(URL_REFUSED, f"refused URL {url}: only {' and '.join(ALLOWED_SCHEMES)} are fetched")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise MediaError(URL_REFUSED, f"refused URL {url}: credentials in URLs are not accepted")
    raw_host = parts.hostname or ""
    if not raw_host.isascii():
        try:
            raw_host = raw_host.encode("idna").decode("ascii")
        except UnicodeError:
            raise MediaError(URL_REFUSED, f"refused URL {url}: malformed host name") from None
    if not raw_host or not _HOST_CHARS.match(raw_host):
        raise MediaError(URL_REFUSED, f"refused URL {url}: missing or malformed host")
    try:
        ip = literal_address(raw_host)
    except ValueError as exc:
        raise MediaError(URL_REFUSED, f"refused URL {url}: {exc}") from None
    host = str(ip) if ip is not None else canonical_host(raw_host)
    port = port or (443 if scheme == "https" else 80)
    exempt = host in policy.allow_hosts
    if ip is not None:
        why = address_refusal(ip)
        if why and (not exempt or ip in METADATA_ADDRESSES):
            raise MediaError(URL_REFUSED, f"refused URL {url}: {ip} is {why}")
        addresses = (str(ip),)
    else:
        if host in METADATA_HOSTS or (host.endswith(".localhost") and not exempt):
            raise MediaError(URL_REFUSED, f"refused URL {url}: {host} is a metadata or local host name")
        key = (host, port)
        if _pins is not None and key in _pins:
            addresses = _pins[key]
        else:
            found = policy.resolver(host, port)
            if not found:
                raise MediaError(NOT_FOUND, f"cannot resolve host {host}")
            for a in found:
                try:
                    addr = ipaddress.ip_address(a.split("%", 1)[0])
                except ValueError:
                    raise MediaError(URL_REFUSED, f"refused URL {url}: {host} resolves to a malformed address") from None
                why = address_refusal(addr)
                if why and (not exempt or addr in METADATA_ADDRESSES):
                    # the resolved address itself is not echoed back to the requester
                    raise MediaError(URL_REFUSED, f"refused URL {url}: {host} resolves to {why}")
            addresses = tuple(found)
            if _pins is not None:
                _pins[key] = addresses
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url=url, scheme=scheme, host=host, port=port, path=path, addresses=addresses)


# --- HTTP with pinned addresses, manual redirects and a deadline -----------------------------


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to an already checked address (TLS verifies the host name)."""

    def __init__(self, target: Target, policy: UrlPolicy, tls: ssl.SSLContext | None):
        super().__init__(target.host, target.port, timeout=policy.read_timeout)
        self._addresses = target.addresses
        self._connect_timeout = policy.connect_timeout
        self._tls = tls
        # http.client drops self.sock when a response owns the connection
        # (will_close); timeouts and the watchdog still need the socket
        self.live_sock: socket.socket | None = None

    def connect(self):  # noqa: D102 (http.client API)
        last: OSError | None = None
        for a in self._addresses:
            addr = ipaddress.ip_address(a.split("%", 1)[0])
            family = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(min(self._connect_timeout, self.timeout))
                sock.connect((str(addr), self.port))
            except OSError as exc:
                sock.close()
                last = exc
                continue
            sock.settimeout(self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                try:
                    sock = self._tls.wrap_socket(sock, server_hostname=self.host)
                except OSError:
                    sock.close()
                    raise
            self.sock = self.live_sock = sock
            return
        raise last or OSError("no address to connect to")

    def abort(self) -> None:
        """Unblock a pending read (the deadline's watchdog)."""
        sock = self.live_sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Client:
    """Requests for one reader: checked hops, pinned addresses, one deadline."""

    def __init__(self, policy: UrlPolicy):
        self.policy = policy
        self.expires = time.monotonic() + policy.deadline
        self._pins: dict = {}
        self._conn: _PinnedConnection | None = None
        self._conn_key: tuple | None = None
        self._resp: http.client.HTTPResponse | None = None  # the response being read
        self._tls: ssl.SSLContext | None = None
        self._timed_out = False
        self._timer: threading.Timer | None = None

    # the deadline: a timer aborts whatever blocks once the time is up
    def remaining(self) -> float:
        left = self.expires - time.monotonic()
        if left <= 0:
            raise MediaError(TIMEOUT, f"gave up reading the URL after {self.policy.deadline:g} s (the deadline)")
        return left

    def _arm(self, conn: _PinnedConnection) -> None:
        self._disarm()
        self._timed_out = False

        def fire():
            self._timed_out = True
            conn.abort()

        self._timer = threading.Timer(self.remaining(), fire)
        self._timer.daemon = True
        self._timer.start()

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def failure(self, exc: BaseException, url: str) -> MediaError:
        """A network exception as a clear MediaError (deadline, silence or unreachable)."""
        if self._timed_out or time.monotonic() >= self.expires:
            return MediaError(TIMEOUT, f"gave up reading {url} after {self.policy.deadline:g} s (the deadline)")
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return MediaError(TIMEOUT, f"{url}: no data for {self.policy.read_timeout:g} s")
        if isinstance(exc, ssl.SSLError):
            return MediaError(NOT_FOUND, f"cannot open {url}: TLS failed ({exc.reason or exc})")
        return MediaError(NOT_FOUND, f"cannot open {url}: {getattr(exc, 'strerror', None) or exc or type(exc).__name__}")

    def _connection(self, target: Target) -> _PinnedConnection:
        key = (target.scheme, target.host, target.port, target.addresses)
        if self._conn is not None and self._conn_key == key:
            return self._conn
        self.close()
        tls = None
        if target.scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        self._conn, self._conn_key = _PinnedConnection(target, self.policy, tls), key
        return self._conn

    def get(self, url: str, headers: dict[str, str]) -> tuple[str, http.client.HTTPResponse]:
        """GET ``url``, following redirects (each hop checked before connecting).

        Returns the final URL and its response (headers read, body not);
        the deadline's watchdog stays armed until :meth:`done`.
        """
        for _ in range(self.policy.max_redirects + 1):
            target = check_url(url, self.policy, self._pins)
            resp = self._send(target, headers)
            location = resp.getheader("Location")
            if resp.status in _REDIRECTS and location:
                self.done(resp, reuse=False)
                url = urljoin(url, location.strip())
                continue
            return url, resp
        self.close()
        raise MediaError(URL_REFUSED, f"refused URL: more than {self.policy.max_redirects} redirects")

    def _send(self, target: Target, headers: dict[str, str]) -> http.client.HTTPResponse:
        hdrs = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity", **headers}
        for attempt in (0, 1):
            conn = self._connection(target)
            reused = conn.sock is not None
            try:
                self._arm(conn)
                conn.timeout = min(self.policy.read_timeout, self.remaining())
                conn.request("GET", target.path, headers=hdrs)
                self._resp = conn.getresponse()
                return self._resp
            except MediaError:
                self.close()
                raise
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                # a kept-alive connection the server closed meanwhile: one fresh try
                if reused and attempt == 0 and not self._timed_out and isinstance(
                    exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
                ):
                    continue
                raise self.failure(exc, target.url) from None
        raise AssertionError("unreachable")

    def read(self, resp: http.client.HTTPResponse, n: int, url: str) -> bytes:
        """Up to ``n`` body bytes (fewer only at the end of the body)."""
        out = bytearray()
        try:
            while len(out) < n:
                left = self.remaining()  # raises past the deadline
                if self._timed_out:
                    break
                sock = self._conn.live_sock if self._conn is not None else None
                if sock is not None:
                    sock.settimeout(min(self.policy.read_timeout, left))
                piece = resp.read1(min(_CHUNK, n - len(out)))
                if not piece:
                    break
                out += piece
        except MediaError:
            self.close()
            raise
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self.close()
            raise self.failure(exc, url) from None
        if self._timed_out:
            self.close()
            raise self.failure(TimeoutError(), url)
        return bytes(out)

    def done(self, resp: http.client.HTTPResponse, reuse: bool = True) -> None:
        """Finish with a response: keep the connection only if its body was read to the end."""
        self._disarm()
        if reuse and resp.isclosed() and not resp.will_close:
            return
        self.close()

    def close(self) -> None:
        self._disarm()
        if self._resp is not None:
            self._resp.close()  # owns the socket once the server said it closes
            self._resp = None
        if self._conn is not None:
            self._conn.close()
        self._conn = self._conn_key = None


# --- sniffing ---------------------------------------------------------------------------------

#: (offset, leading bytes, container) of the media this program reads.
_MAGIC = (
    (0, b"\x1aE\xdf\xa3", "Matroska/WebM"),
    (0, b"RIFF", "RIFF (AVI, WAV, WebP)"),
    (0, b"FLV\x01", "FLV"),
    (0, b"OggS", "Ogg"),
    (0, b"fLaC", "FLAC"),
    (0, b"ID3", "MP3 (ID3)"),
    (0, b"\xff\xd8\xff", "JPEG"),
    (0, b"\x89PNG\r\n\x1a\n", "PNG"),
    (0, b"GIF87a", "GIF"),
    (0, b"GIF89a", "GIF"),
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
    (0, b"0&\xb2u\x8ef\xcf\x11", "ASF/WMV"),
    (0, b"\x00\x00\x01\xba", "MPEG-PS"),
    (0, b"caff", "CAF"),
    (0, b"#!AMR", "AMR"),
    (0, b".snd", "AU"),
    (0, b"\x0bw", "AC-3"),
)
#: ISO-BMFF / QuickTime top-level box types (at offset 4).
_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot")


def sniff_media(head: bytes) -> str | None:
    """The container the first bytes announce, or None (HTML, text, playlists, ...)."""
    if len(head) >= 8 and head[4:8] in _BOXES:
        return "MP4/MOV"
    for offset, magic, name in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return name
    if len(head) >= 12 and head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "AIFF"
    if len(head) >= 10 and head[:2] == b"BM" and head[6:10] == b"\x00\x00\x00\x00":
        return "BMP"
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return "MPEG-TS"
    if len(head) > 196 and head[4] == 0x47 and head[196] == 0x47:
        return "MPEG-TS (M2TS)"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "MPEG audio (MP3/ADTS)"
    return None


def _describe(head: bytes) -> str:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"#extm3u"):
        return "an HLS playlist"
    if text.startswith(b"ffconcat"):
        return "an ffconcat playlist"
    if b"<mpd" in text:
        return "a DASH manifest"
    if text.startswith((b"<!doctype html", b"<html")) or b"<html" in text[:256]:
        return "an HTML page"
    return "not an audio, video or image file"


# --- the reader -------------------------------------------------------------------------------

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


class RemoteFile(io.RawIOBase):
    """A read-only, seekable file over HTTP Range requests (see :func:`open_url`).

    Reads are served from aligned blocks kept in a bounded LRU cache;
    sequential reads fetch growing runs of blocks in one request.  A server
    that ignores Range is read as one stream, spooled to memory then a
    temporary file, up to the policy's ``max_bytes``.  A failure raised in a
    read is kept in :attr:`error` (FFmpeg may report it only as "I/O error").
    """

    def __init__(self, url: str, policy: UrlPolicy):
        super().__init__()
        self.url = url
        self.policy = policy
        self.size: int | None = None
        self.kind = ""
        self.error: MediaError | None = None
        self._client = _Client(policy)
        self._location = url
        self._pos = 0
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._next_block = 0
        self._run = 1
        self._stream: http.client.HTTPResponse | None = None  # no-Range mode
        self._spool: tempfile.SpooledTemporaryFile | None = None
        self._spooled = 0
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    # opening: the first request decides between Range and stream mode, then sniff
    def _open(self) -> None:
        first = BLOCK_BYTES * 4
        self._location, resp = self._client.get(self.url, {"Range": f"bytes=0-{first - 1}"})
        if resp.status == 206:
            start, data, total = self._range_body(resp, 0, first)
            if total is None:
                raise MediaError(NOT_MEDIA, f"{self.url}: the server's Content-Range gives no size")
            self.size = total
            self._store(0, data)
            self._next_block = len(data) // BLOCK_BYTES
        elif resp.status == 200:
            self._start_stream(resp)
        elif resp.status == 416:
            self._client.done(resp, reuse=False)
            raise MediaError(EMPTY, f"{self.url} is empty (0 bytes)")
        else:
            self._client.done(resp, reuse=False)
            raise self._status_error(resp.status)
        head = self._peek(SNIFF_BYTES)
        if not head:
            raise MediaError(EMPTY, f"{self.url} is empty (0 bytes)")
        kind = sniff_media(head)
        if kind is None:
            raise MediaError(NOT_MEDIA, f"{self.url} is {_describe(head)}; only audio, video and image files are read")
        self.kind = kind

    def _status_error(self, status: int) -> MediaError:
        if status in (404, 410):
            return MediaError(NOT_FOUND, f"cannot open {self.url}: not found (HTTP {status})")
        return MediaError(NOT_FOUND, f"cannot open {self.url}: HTTP {status}")

    def _check_size(self, size: int) -> None:
        if size > self.policy.max_bytes:
            raise MediaError(TOO_LARGE, f"{self.url} is {size / 1024**2:.0f} MB; the limit is {self.policy.max_bytes / 1024**2:.0f} MB")

    def _range_body(self, resp, start: int, length: int) -> tuple[int, bytes, int | None]:
        m = _CONTENT_RANGE.match(resp.getheader("Content-Range") or "")
        if not m or int(m.group(1)) != start or int(m.group(2)) < start:
            self._client.done(resp, reuse=False)
            raise MediaError(NOT_MEDIA, f"{self.url}: the server answered a range request with a different range")
        total = None if m.group(3) == "*" else int(m.group(3))
        if total is not None:
            self._check_size(total)
        declared = int(m.group(2)) - start + 1
        # never past the end of the resource (some servers echo the asked range)
        n = min(declared, length, total - start if total is not None else declared)
        data = self._client.read(resp, n, self.url)
        if len(data) < n:
            self._client.done(resp, reuse=False)
            raise MediaError(NOT_FOUND, f"{self.url}: the connection closed early")
        # a body longer than what was read leaves the connection unusable: done() drops it
        self._client.done(resp, reuse=n == declared)
        return start, data, total

    def _store(self, offset: int, data: bytes) -> None:
        first = offset // BLOCK_BYTES
        for i in range(0, len(data), BLOCK_BYTES):
            self._blocks[first + i // BLOCK_BYTES] = data[i : i + BLOCK_BYTES]
            self._blocks.move_to_end(first + i // BLOCK_BYTES)
        while len(self._blocks) > CACHE_BLOCKS:
            self._blocks.popitem(last=False)

    def _block(self, index: int) -> bytes:
        hit = self._blocks.get(index)
        if hit is not None:
            self._blocks.move_to_end(index)
            return hit
        assert self.size is not None
        self._run = min(self._run * 2, MAX_RUN_BLOCKS) if index == self._next_block else 1
        last_block = (self.size - 1) // BLOCK_BYTES
        count = 1
        while count < self._run and index + count <= last_block and index + count not in self._blocks:
            count += 1
        start = index * BLOCK_BYTES
        end = min(self.size, start + count * BLOCK_BYTES) - 1
        self._location, resp = self._client.get(self._location, {"Range": f"bytes={start}-{end}"})
        if resp.status != 206:
            self._client.done(resp, reuse=False)
            if resp.status == 200:
                raise MediaError(NOT_MEDIA, f"{self.url}: the server stopped honouring range requests")
            raise self._status_error(resp.status)
        _, data, total = self._range_body(resp, start, end - start + 1)
        if total is not None and total != self.size:
            raise MediaError(NOT_MEDIA, f"{self.url} changed while it was read")
        self._store(start, data)
        self._next_block = index + count
        return self._blocks[index]

    # no-Range mode
    def _start_stream(self, resp) -> None:
        length = resp.getheader("Content-Length")
        if length and length.strip().isdigit():
            self._check_size(int(length))
            self.size = int(length)
        self._stream = resp
        self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)

    def _pull(self, upto: int | None) -> None:
        """Spool the stream up to offset ``upto`` (None: to its end)."""
        while self._stream is not None and (upto is None or self._spooled < upto):
            want = _CHUNK * 16 if upto is None else min(_CHUNK * 16, upto - self._spooled)
            data = self._client.read(self._stream, want, self.url)
            if data:
                self._spooled += len(data)
                self._check_size(self._spooled)
                self._spool.seek(0, io.SEEK_END)
                self._spool.write(data)
            if len(data) < want:
                self._client.done(self._stream, reuse=False)
                self._stream = None
                self.size = self._spooled

    def _peek(self, n: int) -> bytes:
        if self._spool is not None:
            self._pull(n)
            self._spool.seek(0)
            return self._spool.read(n)
        return self._blocks.get(0, b"")[:n]

    # io.RawIOBase
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        try:
            if whence == io.SEEK_SET:
                pos = offset
            elif whence == io.SEEK_CUR:
                pos = self._pos + offset
            elif whence == io.SEEK_END:
                if self.size is None:
                    self._pull(None)
                pos = self.size + offset
            else:
                raise ValueError(f"unsupported whence {whence}")
        except MediaError as exc:
            self.error = self.error or exc
            raise
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def read(self, n: int = -1) -> bytes:
        if self.closed:
            raise ValueError("read from a closed file")
        try:
            return self._read(n)
        except MediaError as exc:
            self.error = self.error or exc
            raise

    def _read(self, n: int) -> bytes:
        if n is None or n < 0:
            out = bytearray()
            while chunk := self._read(_CHUNK * 16):
                out += chunk
            return bytes(out)
        if n == 0:
            return b""
        if self._spool is not None:
            self._pull(self._pos + n)
            self._spool.seek(self._pos)
            data = self._spool.read(n)
        else:
            if self.size is None or self._pos >= self.size:
                return b""
            index, off = divmod(self._pos, BLOCK_BYTES)
            data = self._block(index)[off : off + n]
        self._pos += len(data)
        return data

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._client.close()
            if self._spool is not None:
                self._spool.close()
            self._blocks.clear()
        super().close()


def open_url(url: str, policy: UrlPolicy | None = None) -> RemoteFile:
    """Open an untrusted http(s) URL for reading, refusing it before connecting if it must be.

    Raises :class:`MediaError`: ``url_refused`` (scheme, host, address,
    redirects), ``input_timeout``, ``input_too_large``, ``input_not_found``,
    ``input_empty`` or ``not_media`` (the first bytes are no media container).
    """
    return RemoteFile(url, policy or UrlPolicy.from_env())
