"""http(s) inputs: the guarded reader (mediadna.remote) reads a remote file with range requests.

A loopback HTTP server (127.0.0.1 only; the unit suite's socket guard is
lifted for that host alone, and MEDIADNA_URL_ALLOW_HOSTS exempts it from the
URL policy's private-address rule) serves a generated clip with Range
support and records every request, so the test can check that a time window
is read partially, not downloaded whole.
"""

from __future__ import annotations

import http.server
import re
import threading
from pathlib import Path

import numpy as np
import pytest
from pytest_socket import enable_socket, socket_allow_hosts

from mediadna import synth
from mediadna.decode import decode_media
from mediadna.extract import media2fingerprint


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    root: Path
    log: list

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):  # noqa: N802 (http.server API)
        path = self.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        m = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        start, end = 0, len(data) - 1
        if m:
            start = int(m.group(1))
            end = int(m.group(2)) if m.group(2) else len(data) - 1
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Content-Type", "video/mp4")
        self.end_headers()
        self.log.append((start, end))
        try:
            self.wfile.write(data[start : end + 1])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client seeks away mid-transfer


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDIADNA_URL_ALLOW_HOSTS", "127.0.0.1")
    enable_socket()
    socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)
    handler = type("H", (_RangeHandler,), {"root": tmp_path, "log": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{httpd.server_address[1]}", handler.log
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    # short GOPs so a seek lands near the window
    path = tmp_path_factory.mktemp("http") / "clip.mp4"
    return synth.make_video(path, kind="scenes", duration=40.0, seed=11, size=(320, 180))


def test_url_fingerprint_equals_local_fingerprint(server, long_clip):
    root, base, log = server
    (root / "clip.mp4").write_bytes(long_clip.read_bytes())
    remote = media2fingerprint(f"{base}/clip.mp4")
    local = media2fingerprint(long_clip)
    assert remote.source.endswith("/clip.mp4")
    assert len(remote.visual) == len(local.visual)
    assert np.array_equal(remote.visual.hashes, local.visual.hashes)
    assert np.array_equal(remote.audio.frames, local.audio.frames)


def test_url_window_is_read_with_range_requests(server, long_clip):
    root, base, log = server
    data = long_clip.read_bytes()
    (root / "clip.mp4").write_bytes(data)
    items = list(decode_media(f"{base}/clip.mp4", start=30.0, end=34.0))
    times = [i.time for i in items if i.kind == "video"]
    assert times and min(times) >= 30.0 - 1e-6 and max(times) < 34.0
    # the reader seeked: at least one request started past the beginning of the file
    assert any(start > 0 for start, _ in log), log
    # ... and far less than the whole file went over the wire after the seek
    served_after_seek = sum(min(end, len(data) - 1) - start + 1 for start, end in log if start > len(data) // 2)
    assert served_after_seek < len(data), log


def test_url_window_hashes_match_local_window(server, long_clip):
    root, base, log = server
    (root / "clip.mp4").write_bytes(long_clip.read_bytes())
    remote = [i for i in decode_media(f"{base}/clip.mp4", start=20.0, end=24.0) if i.kind == "video"]
    local = [i for i in decode_media(long_clip, start=20.0, end=24.0) if i.kind == "video"]
    assert [r.time for r in remote] == [x.time for x in local]
    assert all(np.array_equal(r.data, x.data) for r, x in zip(remote, local))


def test_missing_url_is_a_clear_error(server):
    from mediadna.errors import MediaError

    _, base, _ = server
    with pytest.raises(MediaError) as err:
        media2fingerprint(f"{base}/nothere.mp4")
    assert err.value.code in ("input_not_found", "not_media")
    assert "nothere.mp4" in err.value.message


def test_loopback_url_is_refused_without_the_allowlist(server, monkeypatch):
    from mediadna.errors import MediaError

    root, base, log = server
    monkeypatch.delenv("MEDIADNA_URL_ALLOW_HOSTS")
    with pytest.raises(MediaError) as err:
        media2fingerprint(f"{base}/clip.mp4")
    assert err.value.code == "url_refused"
    assert log == []
