"""URL inputs are untrusted (mediadna.remote): hostile URLs are refused before
any connection is made to them.

Two kinds of tests:

* no server at all: every DNS question and every socket the code makes is
  recorded by the ``net`` fixture (a socket is refused outright), so a refusal
  is shown to happen with no connection attempted (and, for literal
  addresses, without even asking DNS);
* a loopback HTTP server (127.0.0.1 only: the suite's socket guard is lifted
  for that host and the URL policy's allowlist names it), with a spy on
  ``socket.connect`` that records every address connected to: redirects to
  metadata addresses, too many redirects, too large, too slow, HTML served as
  video, playlists, and real clips read through the guarded reader.
"""

from __future__ import annotations

import http.server
import json
import re
import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from pytest_socket import enable_socket, socket_allow_hosts

from mediadna import remote
from mediadna.cli import main
from mediadna.decode import decode_media, probe
from mediadna.errors import MediaError
from mediadna.extract import media2fingerprint
from mediadna.pipeline import compare
from mediadna.remote import TrustedUrl, UrlPolicy, check_url, open_url, sniff_media

LOOPBACK = frozenset({"127.0.0.1"})


# --- no network: the policy itself ---------------------------------------------------------
@pytest.fixture
def net(monkeypatch):
    """Records DNS questions and sockets; names resolve from ``net.names``, sockets are refused."""
    rec = SimpleNamespace(resolved=[], sockets=[], names={})

    def resolver(host, port):
        rec.resolved.append(host)
        if host not in rec.names:
            raise MediaError("input_not_found", f"cannot resolve host {host}")
        return list(rec.names[host])

    def no_socket(*args, **kwargs):
        rec.sockets.append(args)
        raise OSError("test: no connections")

    def no_dns(*args, **kwargs):
        rec.resolved.append(args[0] if args else None)
        raise OSError("test: no DNS")

    monkeypatch.setattr(socket, "socket", no_socket)
    monkeypatch.setattr(socket, "create_connection", no_socket)
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    rec.policy = UrlPolicy(resolver=resolver)
    return rec


HOSTILE_LITERALS = [
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://169.254.170.2/v2/credentials",  # ECS task credentials
    "http://127.0.0.1/",
    "http://127.0.0.1./",  # trailing dot
    "http://127.1/",  # short form
    "http://127.0.1/",
    "http://0177.0.0.1/",  # octal
    "http://0x7f.1/",  # hex, short
    "http://0x7f000001/",  # one hex number
    "http://2130706433/",  # one decimal number
    "http://017700000001/",  # one octal number
    "http://0x7F.0.0.01/",  # mixed
    "http://2852039166/latest/meta-data/",  # 169.254.169.254 in decimal
    "http://0xa9fea9fe/",  # ... in hex
    "http://0251.0376.0251.0376/",  # ... in octal
    "http://[::1]/",
    "http://[::ffff:7f00:1]/",  # IPv4-mapped loopback
    "http://[::ffff:127.0.0.1]/",
    "http://[0:0:0:0:0:ffff:a9fe:a9fe]/",  # IPv4-mapped metadata
    "http://[::127.0.0.1]/",  # IPv4-compatible
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "http://[2002:a9fe:a9fe::1]/",  # 6to4 of the metadata address
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of the metadata address
    "http://[fd00:ec2::254]/latest/meta-data/",  # AWS metadata over IPv6
    "http://[fe80::1]/",  # link-local
    "http://[fe80::1%25eth0]/",  # zone id
    "http://[fc00::1]/",  # unique local
    "http://[::]/",
    "http://0.0.0.0/",
    "http://0/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1:8080/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://100.100.100.200/",  # Alibaba metadata
    "http://224.0.0.1/",  # multicast
    "http://240.0.0.1/",  # reserved
    "http://255.255.255.255/",
    "http://198.18.0.1/",  # benchmarking
    "https://127.0.0.1:443/",
    "HTTP://LOCALHOST.localhost/",  # *.localhost, no DNS
    "http://metadata.google.internal/computeMetadata/v1/",  # metadata names, no DNS
    "http://instance-data/latest/",
    "http://example.com@127.0.0.1/",  # userinfo tricks
    "http://127.0.0.1@example.com/",
    "http://user:pass@example.com/",
    "http://example.com\\@127.0.0.1/",
    "http://1.2.3.09/",  # malformed numeric (resolvers disagree: refused)
    "http://256.1.1.1/",
    "http://1.2.3.4.5/",
    "http://127.0.0.1:99999/",  # bad port
    "http:///x.mp4",  # no host
    "file:///etc/passwd",  # schemes
    "ftp://example.com/x.mp4",
    "gopher://127.0.0.1:6379/_SET",
    "dict://127.0.0.1:11211/",
    "data:video/mp4;base64,AAAA",
    "//example.com/x.mp4",
    "http://exa mple.com/",
    "http://example.com/\r\nHost: 127.0.0.1",
]


@pytest.mark.parametrize("url", HOSTILE_LITERALS)
def test_hostile_url_is_refused_before_any_connection(net, url):
    with pytest.raises(MediaError) as err:
        open_url(url, net.policy)
    assert err.value.code == "url_refused", err.value
    assert net.sockets == []
    assert net.resolved == []  # literal addresses and metadata names: not even a DNS question


@pytest.mark.parametrize(
    "url",
    ["http://2130706433/clip.mp4", "http://[::ffff:169.254.169.254]/clip.mp4", "http://example.com@127.0.0.1/a.mp4"],
)
def test_hostile_url_through_the_decoder_is_refused(net, url):
    with pytest.raises(MediaError) as err:
        probe(url)
    assert err.value.code == "url_refused"
    with pytest.raises(MediaError) as err:
        list(decode_media(url))
    assert err.value.code == "url_refused"
    assert net.sockets == [] and net.resolved == []


@pytest.mark.parametrize(
    "addresses",
    [
        ["10.0.0.5"],
        ["169.254.169.254"],
        ["93.184.216.34", "127.0.0.1"],  # every address is checked, not just the first
        ["::ffff:169.254.169.254"],
        ["2606:2800:220:1::1", "fe80::1%2"],
    ],
)
def test_name_resolving_to_a_private_address_is_refused(net, addresses):
    net.names["media.example.com"] = addresses
    with pytest.raises(MediaError) as err:
        open_url("https://media.example.com/clip.mp4", net.policy)
    assert err.value.code == "url_refused"
    assert "resolves to" in err.value.message and addresses[-1].split("%")[0] not in err.value.message
    assert net.resolved == ["media.example.com"]
    assert net.sockets == []


def test_public_url_passes_the_checks(net):
    net.names["media.example.com"] = ["93.184.216.34", "2606:2800:220:1::1"]
    t = check_url("https://Media.Example.COM./v/clip.mp4?sig=1", net.policy)
    assert (t.scheme, t.host, t.port, t.path) == ("https", "media.example.com", 443, "/v/clip.mp4?sig=1")
    assert t.addresses == ("93.184.216.34", "2606:2800:220:1::1")
    assert check_url("http://8.8.8.8:8080/x", net.policy).addresses == ("8.8.8.8",)
    assert check_url("http://134744072/x", net.policy).addresses == ("8.8.8.8",)  # decimal, still public
    net.names["xn--bcher-kva.example"] = ["93.184.216.34"]
    assert check_url("http://bücher.example/x", net.policy).host == "xn--bcher-kva.example"  # IDNA, then checked
    assert net.sockets == []


def test_allowlist_exempts_the_host_as_written_only(net):
    policy = UrlPolicy(resolver=net.policy.resolver, allow_hosts=frozenset({"127.0.0.1", "minio.local"}))
    assert check_url("http://127.0.0.1:9000/x", policy).addresses == ("127.0.0.1",)
    assert check_url("http://2130706433:9000/x", policy).addresses == ("127.0.0.1",)  # the same address
    net.names["minio.local"] = ["10.1.2.3"]
    assert check_url("http://minio.local/x", policy).addresses == ("10.1.2.3",)
    net.names["evil.example.com"] = ["127.0.0.1"]  # another name for an allow-listed address: still refused
    for url in ("http://evil.example.com/x", "http://127.0.0.2/x", "http://169.254.169.254/x"):
        with pytest.raises(MediaError) as err:
            check_url(url, policy)
        assert err.value.code == "url_refused"
    # metadata stays refused even when allow-listed
    with pytest.raises(MediaError):
        check_url("http://169.254.169.254/", UrlPolicy(allow_hosts=frozenset({"169.254.169.254"})))


def test_policy_from_environment(monkeypatch):
    monkeypatch.setenv("MEDIADNA_URL_ALLOW_HOSTS", " 127.0.0.1, Minio.Local. ,0x7f.2")
    monkeypatch.setenv("MEDIADNA_URL_MAX_BYTES", "1000")
    monkeypatch.setenv("MEDIADNA_URL_DEADLINE_SECONDS", "2.5")
    p = UrlPolicy.from_env()
    assert p.allow_hosts == {"127.0.0.1", "minio.local", "127.0.0.2"}
    assert (p.max_bytes, p.deadline) == (1000, 2.5)
    monkeypatch.delenv("MEDIADNA_URL_ALLOW_HOSTS")
    monkeypatch.delenv("MEDIADNA_URL_DEADLINE_SECONDS")
    monkeypatch.setenv("MEDIADNA_URL_MAX_BYTES", "lots")
    with pytest.raises(MediaError) as err:
        UrlPolicy.from_env()
    assert err.value.code == "invalid_argument"
    monkeypatch.delenv("MEDIADNA_URL_MAX_BYTES")
    assert UrlPolicy.from_env() == UrlPolicy()  # default: no exemptions


def test_compare_with_a_hostile_url_is_a_failed_envelope(net, ref_a):
    env = compare("http://[::ffff:7f00:1]/clip.mp4", ref_a)
    assert env["status"] == "failed" and env["error"]["code"] == "url_refused"
    assert net.sockets == []


def test_cli_compare_with_a_hostile_url(net, capsys, tmp_path, ref_a, monkeypatch):
    monkeypatch.setenv("MEDIADNA_HOME", str(tmp_path / "home"))
    rc = main(["--home", str(tmp_path / "home"), "compare", str(ref_a), "http://169.254.169.254/latest/meta-data/", "--json"])
    out, err = capsys.readouterr()
    assert rc == 1 and "Traceback" not in err
    (env,) = [json.loads(line) for line in out.splitlines()]
    assert env["status"] == "failed" and env["error"]["code"] == "url_refused"
    assert net.sockets == []


# --- sniffing ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "head, kind",
    [
        (b"\x00\x00\x00\x20ftypisom", "MP4/MOV"),
        (b"\x1aE\xdf\xa3\x9fB\x86\x81", "Matroska/WebM"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "RIFF (AVI, WAV, WebP)"),
        (b"FLV\x01\x05", "FLV"),
        (b"G" + bytes(187) + b"G" + bytes(10), "MPEG-TS"),
        (b"ID3\x04\x00", "MP3 (ID3)"),
        (b"\xff\xfb\x90\x00", "MPEG audio (MP3/ADTS)"),
        (b"\xff\xf1\x50\x80", "MPEG audio (MP3/ADTS)"),  # ADTS
        (b"OggS\x00\x02", "Ogg"),
        (b"fLaC\x00\x00", "FLAC"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG"),
        (b"\x89PNG\r\n\x1a\n\x00", "PNG"),
        (b"GIF89a\x01\x00", "GIF"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "RIFF (AVI, WAV, WebP)"),
    ],
)
def test_sniff_media_containers(head, kind):
    assert sniff_media(head) == kind


@pytest.mark.parametrize(
    "head",
    [b"<!DOCTYPE html><html>", b"#EXTM3U\n#EXT-X-VERSION:3", b"ffconcat version 1.0\n", b'<?xml version="1.0"?><MPD>', b"hello", b"", b"GET / HTTP/1.1"],
)
def test_sniff_refuses_everything_else(head):
    assert sniff_media(head) is None


# --- a loopback server ------------------------------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``files`` (name -> bytes) with Range support; ``routes`` override paths."""

    files: dict
    routes: dict
    log: list
    ranges: bool = True

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 (http.server API)
        self.log.append((self.path, self.headers.get("Range"), self.headers.get("Host")))
        route = self.routes.get(self.path.split("?")[0])
        if route is not None:
            return route(self)
        data = self.files.get(self.path.split("?")[0].lstrip("/"))
        if data is None:
            self.send_error(404)
            return
        m = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        if m and self.ranges:
            start = int(m.group(1))
            end = min(int(m.group(2)) if m.group(2) else len(data) - 1, len(data) - 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        else:
            start, end = 0, len(data) - 1
            self.send_response(200)
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Content-Type", "video/mp4")
        self.end_headers()
        try:
            self.wfile.write(data[start : end + 1])
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def server(monkeypatch):
    """A loopback server and a record of every address the client connects to."""
    enable_socket()
    socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)
    connects: list = []
    guarded = socket.socket.connect

    def spy(self, address):
        connects.append(address)
        return guarded(self, address)

    monkeypatch.setattr(socket.socket, "connect", spy)
    handler = type("H", (_Handler,), {"files": {}, "routes": {}, "log": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    srv = SimpleNamespace(
        base=f"http://127.0.0.1:{httpd.server_address[1]}",
        port=httpd.server_address[1],
        handler=handler,
        files=handler.files,
        routes=handler.routes,
        log=handler.log,
        connects=connects,
        policy=UrlPolicy(allow_hosts=LOOPBACK),
    )
    yield srv
    httpd.shutdown()
    httpd.server_close()


def _redirect(location):
    def route(h):
        h.send_response(302)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return route


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:a9fe:a9fe]/latest/meta-data/",
        "http://2852039166/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "file:///etc/passwd",
        "http://10.0.0.1/",
    ],
)
def test_redirect_to_metadata_is_refused_without_connecting(server, location):
    server.routes["/clip.mp4"] = _redirect(location)
    with pytest.raises(MediaError) as err:
        open_url(f"{server.base}/clip.mp4", server.policy)
    assert err.value.code == "url_refused"
    assert len(server.log) == 1
    assert {addr[0] for addr in server.connects} == {"127.0.0.1"}


def test_redirect_to_a_name_resolving_to_metadata_is_refused(server):
    asked = []

    def resolver(host, port):
        asked.append(host)
        return ["169.254.169.254"]

    server.routes["/clip.mp4"] = _redirect("http://media.example.com/clip.mp4")
    with pytest.raises(MediaError) as err:
        open_url(f"{server.base}/clip.mp4", UrlPolicy(allow_hosts=LOOPBACK, resolver=resolver))
    assert err.value.code == "url_refused"
    assert asked == ["media.example.com"]
    assert {addr[0] for addr in server.connects} == {"127.0.0.1"}


def test_redirects_are_followed_and_limited(server, ref_a):
    server.files["clip.mp4"] = ref_a.read_bytes()
    server.routes["/a"] = _redirect("/b")
    server.routes["/b"] = _redirect(f"{server.base}/clip.mp4")
    with open_url(f"{server.base}/a", server.policy) as f:
        assert f.kind == "MP4/MOV" and f.size == len(server.files["clip.mp4"])
    for i in range(10):
        server.routes[f"/loop{i}"] = _redirect(f"/loop{i + 1}")
    server.log.clear()
    with pytest.raises(MediaError) as err:
        open_url(f"{server.base}/loop0", UrlPolicy(allow_hosts=LOOPBACK, max_redirects=3))
    assert err.value.code == "url_refused" and "redirects" in err.value.message
    assert len(server.log) == 4  # the first request and 3 redirects


def test_too_large_by_declared_size(server):
    server.files["big.mp4"] = b"\x00\x00\x00\x18ftypisom" + bytes(5000)
    policy = UrlPolicy(allow_hosts=LOOPBACK, max_bytes=1000)
    with pytest.raises(MediaError) as err:  # Content-Range total
        open_url(f"{server.base}/big.mp4", policy)
    assert err.value.code == "input_too_large"
    server.handler.ranges = False  # Content-Length of a server that ignores Range
    with pytest.raises(MediaError) as err:
        open_url(f"{server.base}/big.mp4", policy)
    assert err.value.code == "input_too_large"


def test_too_large_when_streamed_without_a_size(server):
    def stream(h):  # no Content-Length, no Range: the body ends when the connection closes
        h.send_response(200)
        h.send_header("Content-Type", "video/mp4")
        h.end_headers()
        h.wfile.write(b"\x00\x00\x00\x18ftypisom")
        try:
            for _ in range(200):
                h.wfile.write(bytes(1000))
        except (BrokenPipeError, ConnectionResetError):
            pass

    server.routes["/stream.mp4"] = stream
    f = open_url(f"{server.base}/stream.mp4", UrlPolicy(allow_hosts=LOOPBACK, max_bytes=50_000))
    assert f.kind == "MP4/MOV"
    with pytest.raises(MediaError) as err:
        f.read(-1)
    assert err.value.code == "input_too_large" and f.error is err.value
    f.close()


def test_slow_server_hits_the_deadline(server):
    def trickle(h):  # headers at once, then a byte every 50 ms: never silent, never done
        h.send_response(200)
        h.send_header("Content-Length", "100000")
        h.end_headers()
        try:
            h.wfile.write(b"\x00\x00\x00\x18ftypisom")
            for _ in range(2000):
                h.wfile.write(b"\x00")
                h.wfile.flush()
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass

    server.routes["/slow.mp4"] = trickle
    t0 = time.monotonic()
    with pytest.raises(MediaError) as err:
        open_url(f"{server.base}/slow.mp4", UrlPolicy(allow_hosts=LOOPBACK, deadline=1.0))
    assert err.value.code == "input_timeout"
    assert time.monotonic() - t0 < 4.0


def test_silent_server_hits_the_read_timeout(server):
    release = threading.Event()

    def silent(h):
        release.wait(10)

    server.routes["/silent.mp4"] = silent
    t0 = time.monotonic()
    try:
        with pytest.raises(MediaError) as err:
            open_url(f"{server.base}/silent.mp4", UrlPolicy(allow_hosts=LOOPBACK, read_timeout=0.5))
    finally:
        release.set()
    assert err.value.code == "input_timeout" and "no data" in err.value.message
    assert time.monotonic() - t0 < 4.0


@pytest.mark.parametrize(
    "body, said",
    [
        (b"<!DOCTYPE html><html><body>login</body></html>", "HTML"),
        (b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nhttp://169.254.169.254/seg.ts\n", "HLS playlist"),
        (b"ffconcat version 1.0\nfile 'http://127.0.0.1/x.mp4'\n", "ffconcat"),
    ],
)
def test_non_media_served_as_video_is_refused_by_sniffing(server, body, said):
    server.files["clip.mp4"] = body  # served with Content-Type: video/mp4
    with pytest.raises(MediaError) as err:
        open_url(f"{server.base}/clip.mp4", server.policy)
    assert err.value.code == "not_media" and said in err.value.message
    assert len(server.log) == 1


def test_sniffing_happens_in_the_decoder_path(server, monkeypatch):
    monkeypatch.setenv("MEDIADNA_URL_ALLOW_HOSTS", "127.0.0.1")
    server.files["page.mp4"] = b"<html>" + bytes(100)
    with pytest.raises(MediaError) as err:
        media2fingerprint(f"{server.base}/page.mp4")
    assert err.value.code == "not_media"


def test_real_clip_through_the_guarded_reader_equals_the_local_file(server, ref_a, monkeypatch):
    monkeypatch.setenv("MEDIADNA_URL_ALLOW_HOSTS", "127.0.0.1")
    server.files["ref_a.mp4"] = ref_a.read_bytes()
    local = media2fingerprint(ref_a)
    remote_fp = media2fingerprint(f"{server.base}/ref_a.mp4")
    assert np.array_equal(remote_fp.visual.hashes, local.visual.hashes)
    assert np.array_equal(remote_fp.audio.frames, local.audio.frames)
    assert all(r[1] and r[1].startswith("bytes=") for r in server.log)  # range requests only
    # a server that ignores Range: read as one stream, same fingerprint
    server.handler.ranges = False
    server.log.clear()
    streamed = media2fingerprint(f"{server.base}/ref_a.mp4")
    assert np.array_equal(streamed.visual.hashes, local.visual.hashes)
    assert np.array_equal(streamed.audio.frames, local.audio.frames)


def test_one_dns_answer_per_host_and_the_checked_address_is_connected(server, ref_a):
    asked = []

    def resolver(host, port):
        asked.append(host)
        return ["127.0.0.1"]

    server.files["ref_a.mp4"] = ref_a.read_bytes()
    policy = UrlPolicy(allow_hosts=frozenset({"media.test"}), resolver=resolver)
    url = f"http://media.test:{server.port}/ref_a.mp4"
    with open_url(url, policy) as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(size // 2)
        assert len(f.read(1000)) == 1000
        f.seek(100)
        f.read(-1)
    assert asked == ["media.test"]
    assert len(server.log) >= 2
    assert {h for _, _, h in server.log} == {f"media.test:{server.port}"}  # Host header: the name
    assert {addr[0] for addr in server.connects} == {"127.0.0.1"}


def test_block_cache_is_bounded(server):
    data = b"\x00\x00\x00\x18ftypisom" + np.random.default_rng(0).integers(0, 256, 30 * 1024**2, dtype=np.uint8).tobytes()
    server.files["big.mp4"] = data
    with open_url(f"{server.base}/big.mp4", server.policy) as f:
        got = bytearray()
        while chunk := f.read(1 << 16):
            got += chunk
        assert len(f._blocks) <= remote.CACHE_BLOCKS
    assert bytes(got) == data
    # sequential reads grew the runs: far fewer requests than blocks
    assert len(server.log) < len(data) // remote.BLOCK_BYTES // 4


# --- nested opens: playlists never make FFmpeg connect anywhere -------------------------------
def _playlists(folder: Path, base: str) -> dict[str, Path]:
    m3u8 = folder / "list.m3u8"
    m3u8.write_text(f"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:10.0,\n{base}/seg.ts\n#EXT-X-ENDLIST\n")
    concat = folder / "list.ffconcat"
    concat.write_text(f"ffconcat version 1.0\nfile '{base}/seg.mp4'\n")
    mpd = folder / "list.mpd"
    mpd.write_text(
        '<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT10S">'
        f'<Period><AdaptationSet><Representation id="1" bandwidth="1"><BaseURL>{base}/seg.mp4</BaseURL>'
        "</Representation></AdaptationSet></Period></MPD>"
    )
    return {"m3u8": m3u8, "ffconcat": concat, "mpd": mpd}


@pytest.mark.parametrize("kind", ["m3u8", "ffconcat", "mpd"])
def test_local_playlist_makes_no_connection(server, tmp_path, kind):
    path = _playlists(tmp_path, server.base)[kind]
    with pytest.raises(MediaError) as err:
        probe(path)
    assert err.value.code == "not_media"
    # with the early check out of the way, FFmpeg's format whitelist still refuses it
    import mediadna.decode as D

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(D, "_refuse_playlist", lambda source: None)
        with pytest.raises(MediaError):
            probe(path)
    assert server.log == []


@pytest.mark.parametrize("kind", ["m3u8", "ffconcat", "mpd"])
def test_trusted_url_playlist_makes_no_nested_request(server, tmp_path, kind):
    path = _playlists(tmp_path, server.base)[kind]
    server.files[path.name] = path.read_bytes()
    with pytest.raises(MediaError) as err:
        probe(TrustedUrl(f"{server.base}/{path.name}"))
    assert err.value.code == "not_media"
    assert [p for p, _, _ in server.log] and all(p == f"/{path.name}" for p, _, _ in server.log)


def test_trusted_url_is_read_by_ffmpeg_directly(server, ref_a):
    server.files["ref_a.mp4"] = ref_a.read_bytes()
    # no allowlist needed: our own (presigned) URLs skip the policy
    info = probe(TrustedUrl(f"{server.base}/ref_a.mp4?X-Amz-Signature=secret"))
    assert info.has_video and info.duration > 19
    with pytest.raises(MediaError) as err:
        probe(TrustedUrl(f"{server.base}/gone.mp4?X-Amz-Signature=secret"))
    assert "secret" not in err.value.message  # errors do not echo our signatures


# --- the cloud adapter: our presigned URLs are trusted, submitted URLs are not -------------------
def test_media_of_trusts_presigned_urls_only(monkeypatch):
    moto = pytest.importorskip("moto")
    boto3 = pytest.importorskip("boto3")
    from dataclasses import replace

    from functions.common import aws
    from functions.common.settings import Settings
    from mediadna.jobs import Job

    for k, v in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(k, v)
    aws.client.cache_clear()
    try:
        with moto.mock_aws():
            boto3.client("s3").create_bucket(Bucket="mediadna-in")
            boto3.client("s3").put_object(Bucket="mediadna-in", Key="input/default/save/x.mp4", Body=b"\x00\x00\x00\x18ftypisom")
            job = Job("j1", "mediadna-in", "input/default/save/x.mp4", "", "", "default", "save", "x.mp4")
            with aws.media_of(job, Settings(MEDIA_ACCESS="url")) as media:
                assert isinstance(media, TrustedUrl) and "Signature=" in media
            with aws.media_of(replace(job, source_url="http://169.254.169.254/x.mp4"), Settings()) as media:
                assert not isinstance(media, TrustedUrl)
                with pytest.raises(MediaError) as err:
                    probe(media)
                assert err.value.code == "url_refused"
    finally:
        aws.client.cache_clear()
