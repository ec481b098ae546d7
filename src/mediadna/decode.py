"""Decoding with PyAV: probe, sampled small grey frames, mono low-rate audio.

One demux pass feeds both streams, so a remote file is read once.  An
http(s) URL is untrusted: it is vetted and read through
:func:`mediadna.remote.open_url` (range requests, so a window reads part of
the file); a :class:`~mediadna.remote.TrustedUrl` (our own presigned URLs)
goes to FFmpeg as is.  For every input FFmpeg may open nothing else: formats
that open further files or URLs (playlists, concat lists, network
descriptions) are refused and nested opens are limited to the input's own
protocol (see docs/security.md).  Everything streams: memory does not grow
with the input's duration.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import av
import cv2
import numpy as np

from . import remote
from .errors import CORRUPT, EMPTY, NO_STREAMS, NOT_FOUND, NOT_MEDIA, TOO_LONG, UNSUPPORTED, MediaError

#: Frames sampled per second of media.  5/s keeps >= 30 samples in a 6 s clip
#: while hashing costs stay far below decoding (see bench/ and README).
SAMPLE_FPS = 5.0
#: Sampled frames are scaled in the decoder to this square grey raster; the
#: content box is found on it and the hash computed from the box (aspect is
#: normalised away, so the square costs nothing in robustness).
FRAME_SIZE = 192
#: Skip decoding frames nothing refers to (see _decode_open); the sampled
#: frames then sit up to a frame or two later than the sampling instant.
SKIP_NONREF = True
#: Pictures of at most this many pixels are decoded on one thread: on frames
#: this small FFmpeg's frame threads cost more CPU in hand-overs than they
#: save, and the hashing thread needs the other core (57 dev-corpus files,
#: 152x114 to 640x360, timed interleaved on 2 cores: extraction 0.60x -> 0.67x
#: the speed of decoding).  From 640x360 up frame threads were as fast or
#: faster, so larger pictures keep FFmpeg's choice (a thread per core).
ONE_THREAD_PIXELS = 480 * 270
#: Audio is resampled to mono at this rate (landmarks live below 4 kHz).
AUDIO_RATE = 8000
#: Inputs longer than this are refused (a clear error beats an 18-hour job).
MAX_DURATION_SECONDS = 6 * 3600.0
#: Remote reads of trusted URLs give up after this many seconds without data
#: (untrusted URLs: see the limits in remote.py).
NETWORK_TIMEOUT_SECONDS = 20
#: Demuxers that open other files or URLs named inside the input (HLS and DASH
#: playlists, concat lists, IMF packages, SDP/RTSP/RTP/SAP descriptions) or run
#: something (lavfi graphs, AviSynth/VapourSynth scripts): never used, so an
#: uploaded playlist cannot make this program fetch internal URLs or files.
NESTED_FORMATS = frozenset(
    {"hls", "applehttp", "dash", "concat", "imf", "sdp", "rtsp", "rtp", "sap", "lavfi", "avisynth", "vapoursynth"}
)
#: Every other format FFmpeg knows (FFmpeg's ``format_whitelist``).
SAFE_FORMATS = ",".join(sorted(set(av.formats_available) - NESTED_FORMATS))
#: Untrusted URLs also go without image2 (it opens image files by name).
REMOTE_FORMATS = ",".join(sorted(set(av.formats_available) - NESTED_FORMATS - {"image2"}))
#: Protocols FFmpeg may use, per kind of input (``protocol_whitelist``): a
#: local file only "file", a trusted URL only HTTP(S); an untrusted URL is read
#: by remote.RemoteFile and FFmpeg may open nothing ("none" matches no protocol).
LOCAL_PROTOCOLS = "file"
TRUSTED_URL_PROTOCOLS = "http,https,tcp,tls"
REMOTE_PROTOCOLS = "none"
#: Bytes FFmpeg asks of a RemoteFile per read.
REMOTE_IO_BUFFER = 64 * 1024

IMAGE_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe", "gif")


def is_url(source: str | os.PathLike) -> bool:
    s = str(source)
    return s.startswith("http://") or s.startswith("https://")


@dataclass
class MediaInfo:
    duration: float
    has_video: bool
    has_audio: bool
    media_type: str  # video | audio | image
    width: int = 0
    height: int = 0
    fps: float = 0.0
    rotation: int = 0
    video_codec: str = ""
    audio_codec: str = ""
    format_name: str = ""
    size_bytes: int = 0

    sample_aspect: float = 1.0

    @property
    def display_aspect(self) -> float | None:
        """Width / height as displayed (pixel aspect and rotation applied)."""
        if not self.width or not self.height:
            return None
        a = self.width * (self.sample_aspect or 1.0) / self.height
        return 1.0 / a if self.rotation % 180 == 90 else a

    def to_dict(self) -> dict:
        return asdict(self)


def _check_local(source: str | os.PathLike) -> int:
    p = Path(source)
    if not p.exists():
        raise MediaError(NOT_FOUND, f"no such file: {p.name}")
    if p.is_dir():
        raise MediaError(NOT_MEDIA, f"{p.name} is a directory, not a media file")
    size = p.stat().st_size
    if size == 0:
        raise MediaError(EMPTY, f"{p.name} is empty (0 bytes)")
    return size


#: Leading bytes of common containers: ISO-BMFF/QuickTime box types at offset 4, then
#: signatures at offset 0 (Matroska/WebM, RIFF (WAV/AVI/WebP), Ogg, FLAC, MP3 ID3, FLV).
_BOX_TYPES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide")
_SIGNATURES = (b"\x1aE\xdf\xa3", b"RIFF", b"OggS", b"fLaC", b"ID3", b"FLV\x01")


def _looks_like_media(source: str | os.PathLike) -> bool:
    """Does the file start like a media container (so a failed open means damage)?"""
    try:
        with open(source, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return False
    return head[4:8] in _BOX_TYPES or head.startswith(_SIGNATURES)


#: Leading text of playlists and manifests (refused with a clear message;
#: the format whitelist refuses them anyway).
_PLAYLIST_HEADS = (b"#EXTM3U", b"ffconcat", b"<?xml", b"<MPD")


def _refuse_playlist(source: str | os.PathLike) -> None:
    try:
        with open(source, "rb") as fh:
            head = fh.read(512).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError:
        return
    if head.startswith(_PLAYLIST_HEADS) and (not head.startswith(b"<?xml") or b"<MPD" in head):
        raise MediaError(NOT_MEDIA, f"{Path(source).name} is a playlist or manifest; files that open other files or URLs are refused")


def _refuse_nested_open(url: str, flags: int, options: dict):
    """PyAV io_open hook of untrusted inputs: FFmpeg may open nothing besides the input."""
    raise PermissionError("opening further files or URLs from an untrusted input is refused")


def open_container(source: str | os.PathLike):
    """Open a local path or http(s) URL, mapping FFmpeg errors to clear codes."""
    container, _ = _open_input(source)
    return container


def _open_input(source: str | os.PathLike):
    """The opened container, and the RemoteFile under it for an untrusted URL (else None)."""
    name = _display(source)
    reader = None
    if isinstance(source, remote.TrustedUrl):
        us = str(NETWORK_TIMEOUT_SECONDS * 1_000_000)
        target = str(source)
        kwargs = dict(
            options={"timeout": us, "rw_timeout": us, "reconnect": "1"},
            container_options={"protocol_whitelist": TRUSTED_URL_PROTOCOLS, "format_whitelist": SAFE_FORMATS},
            timeout=NETWORK_TIMEOUT_SECONDS,
        )
    elif is_url(source):
        reader = remote.open_url(str(source))  # vetted, connected and sniffed, or refused
        target = reader
        kwargs = dict(
            container_options={"protocol_whitelist": REMOTE_PROTOCOLS, "format_whitelist": REMOTE_FORMATS},
            io_open=_refuse_nested_open,
            buffer_size=REMOTE_IO_BUFFER,
        )
    else:
        _check_local(source)
        _refuse_playlist(source)
        # A local path goes to FFmpeg absolute: a relative name with a colon
        # ("a:b.mp4", "concat:x.mp4") would otherwise be taken for a protocol.
        target = os.path.abspath(source)
        kwargs = dict(container_options={"protocol_whitelist": LOCAL_PROTOCOLS, "format_whitelist": SAFE_FORMATS})
    try:
        return av.open(target, "r", **kwargs), reader
    except MediaError:
        if reader is not None:
            reader.close()
        raise
    except Exception as exc:
        if reader is not None:
            reader.close()
            if reader.error is not None:  # the read failure FFmpeg reported as an I/O error
                raise reader.error from None
        raise _open_error(exc, source, name) from None


def _open_error(exc: Exception, source, name: str) -> MediaError:
    """An exception of av.open as a MediaError with a clear code."""
    if isinstance(exc, av.error.InvalidDataError):
        if not is_url(source) and _looks_like_media(source):
            # e.g. an MP4 cut short before its index (moov) was written
            return MediaError(CORRUPT, f"{name} is a damaged or truncated media file")
        return MediaError(NOT_MEDIA, f"{name} is not a recognised audio, video or image file")
    if isinstance(exc, (av.error.HTTPNotFoundError, FileNotFoundError)):
        return MediaError(NOT_FOUND, f"cannot open {name}: not found")
    if isinstance(exc, av.error.ArgumentError):
        # format_whitelist: a format that would open other files or URLs
        return MediaError(NOT_MEDIA, f"cannot open {name}: not a supported audio, video or image format")
    if isinstance(exc, av.error.FFmpegError):
        return MediaError(NOT_MEDIA, f"cannot open {name}: {exc.strerror or exc}")
    if isinstance(exc, OSError):
        return MediaError(NOT_FOUND, f"cannot open {name}: {exc.strerror or exc}")
    raise exc


def _pick_streams(container):
    video = next((s for s in container.streams.video if s.codec_context is not None), None)
    audio = next((s for s in container.streams.audio if s.codec_context is not None), None)
    # Cover art in an audio file is an attached picture, not video.
    if video is not None and video.disposition & av.stream.Disposition.attached_pic:
        video = None
    return video, audio


def _duration(container, video, audio) -> float:
    if container.duration:
        return max(0.0, container.duration / av.time_base)
    for s in (video, audio):
        if s is not None and s.duration and s.time_base:
            return float(s.duration * s.time_base)
    return 0.0


def probe(source: str | os.PathLike) -> MediaInfo:
    """Streams, duration and geometry of an input, without decoding it."""
    with open_media(source) as media:
        return media.info


class Media:
    """An input opened once (see :func:`open_media`): its :class:`MediaInfo`,
    and its streams decoded by :meth:`decode`."""

    def __init__(self, source: str | os.PathLike, container, reader, info: MediaInfo) -> None:
        self.source = source
        self.info = info
        self._opened: tuple | None = (container, reader)

    def decode(self, **options) -> Iterator[Decoded]:
        """:func:`decode_media` of this input (same options).  The first call
        decodes the container already open, and the decode owns it from then
        on (its worker thread closes it); a later call opens the input again."""
        opened, self._opened = self._opened, None
        return decode_media(self.source, opened=opened, **options)

    def close(self) -> None:
        if self._opened is not None:
            self._opened[0].close()
            self._opened = None


@contextmanager
def open_media(source: str | os.PathLike) -> Iterator[Media]:
    """Open and probe an input once, to read its info and then decode it.

    Raises :class:`MediaError` as :func:`probe` does.  Saves opening the
    input a second time (a few ms locally; a round trip or two for a URL).
    """
    container, reader = _open_input(source)
    try:
        info = _probe_open(container, source)
        if reader is not None:
            info.size_bytes = reader.size or 0
    except MediaError:
        container.close()
        _raise_read_error(reader)  # a failed read, not damage
        raise
    except BaseException:
        container.close()
        raise
    media = Media(source, container, reader, info)
    try:
        yield media
    finally:
        media.close()


def _raise_read_error(reader) -> None:
    """Re-raise a RemoteFile's read failure (FFmpeg may have reported it as damage)."""
    if reader is not None and reader.error is not None:
        raise reader.error from None


def _probe_open(container, source) -> MediaInfo:
    video, audio = _pick_streams(container)
    fmt = container.format.name or ""
    if video is None and audio is None:
        raise MediaError(NO_STREAMS, f"{_display(source)} has no audio or video stream")
    is_image = video is not None and audio is None and any(f in fmt.split(",") for f in IMAGE_FORMATS)
    duration = 0.0 if is_image else _duration(container, video, audio)
    if duration > MAX_DURATION_SECONDS:
        raise MediaError(TOO_LONG, f"{_display(source)} lasts {duration / 3600:.1f} h; the limit is {MAX_DURATION_SECONDS / 3600:.0f} h")
    info = MediaInfo(
        duration=duration,
        has_video=video is not None,
        has_audio=audio is not None,
        media_type="image" if is_image else ("video" if video is not None else "audio"),
        format_name=fmt,
        size_bytes=0 if is_url(source) else Path(source).stat().st_size,
    )
    if video is not None:
        cc = video.codec_context
        info.width, info.height = int(cc.width or 0), int(cc.height or 0)
        info.fps = float(video.average_rate or video.guessed_rate or 0.0)
        info.video_codec = cc.name or ""
        sar = video.sample_aspect_ratio or cc.sample_aspect_ratio
        info.sample_aspect = float(sar) if sar else 1.0
        info.rotation = _stream_rotation(video)
    if audio is not None:
        info.audio_codec = audio.codec_context.name or ""
    return info


def _stream_rotation(video) -> int:
    """Rotation (degrees) declared by the stream (frames are turned upright on decode)."""
    try:
        return int(round(float(video.metadata.get("rotate", 0)))) % 360
    except (TypeError, ValueError):
        return 0


def _display(source) -> str:
    """How errors name an input: a file's name, a URL (our own presigned ones without their signature)."""
    if isinstance(source, remote.TrustedUrl):
        return str(source).split("?", 1)[0]
    return str(source) if is_url(source) else Path(source).name


def sha256_file(source: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a local file's bytes, streamed ('' for URLs)."""
    if is_url(source):
        return ""
    h = hashlib.sha256()
    with open(source, "rb") as fh:
        while True:
            b = fh.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


@dataclass
class Decoded:
    """One item of the decode stream."""

    kind: str  # "video" | "audio"
    time: float  # seconds from the start of the media
    data: np.ndarray  # video: uint8 (FRAME_SIZE, FRAME_SIZE); audio: float32 mono samples


def _rotate(img: np.ndarray, rotation: int) -> np.ndarray:
    r = int(rotation) % 360
    if r == 0:
        return img
    # PyAV reports the display-matrix angle counter-clockwise; undo it.
    return np.ascontiguousarray(np.rot90(img, k=(r // 90) % 4))


def decode_media(
    source: str | os.PathLike,
    *,
    start: float = 0.0,
    end: float | None = None,
    fps: float = SAMPLE_FPS,
    size: int = FRAME_SIZE,
    audio_rate: int = AUDIO_RATE,
    want_video: bool = True,
    want_audio: bool = True,
    prefetch: int = 64,
    opened: tuple | None = None,
) -> Iterator[Decoded]:
    """Stream sampled grey frames and mono audio of ``[start, end)``.

    Frames are picked at ``fps`` (the first decoded frame at or after each
    sampling instant) and scaled to ``size``x``size`` grey (see
    :func:`frame2gray`); audio is resampled to ``audio_rate`` mono float32.
    Raises :class:`MediaError` for unusable input; a few corrupt packets in
    an otherwise good file are skipped.  With ``prefetch`` > 0 decoding runs
    in a worker thread, at most that many items ahead of the caller.
    ``opened``: (container, reader) of :func:`open_media`, used instead of
    opening ``source`` again, and closed here like one opened here.
    """
    def produce() -> Iterator:
        container, reader = opened if opened is not None else _open_input(source)
        try:
            yield from _decode_open(container, source, start, end, fps, size, audio_rate, want_video, want_audio)
            _raise_read_error(reader)  # a failed read is never a "truncated tail"
        except MediaError:
            _raise_read_error(reader)
            raise
        finally:
            container.close()

    # The decoder thread decodes; the caller's thread resamples the audio and
    # scales small pictures (see _Finish), so both cores share the work.
    finish = _Finish(source, start, end, size, audio_rate)
    stream = produce() if prefetch <= 0 else _in_background(produce(), prefetch)
    try:
        for item in stream:
            yield from finish(item)
    except _Truncated:
        yield from finish.held.flush()
    finally:
        stream.close()


_DONE = object()


def _in_background(gen: Iterator, maxsize: int) -> Iterator:
    """Run a generator in a worker thread, handing items over a bounded queue.

    Decoding (FFmpeg, GIL released) and scaling then overlap with hashing and
    peak picking in the caller; the bounded queue keeps memory flat.
    """
    q: queue.Queue = queue.Queue(maxsize)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in gen:
                if not put(item):
                    break
            put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, re-raised there
            put((_DONE, exc))
        finally:
            gen.close()

    worker = threading.Thread(target=run, name="mediadna-decode", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if type(item) is tuple and item[0] is _DONE:
                if item[1] is not None:
                    raise item[1]
                return
            yield item
    finally:
        stop.set()
        worker.join(timeout=10)


def decoder_threads(width: int, height: int) -> int:
    """Video decoder threads for a picture size: 1 up to ONE_THREAD_PIXELS, else 0 (FFmpeg's choice)."""
    return 1 if width * height <= ONE_THREAD_PIXELS else 0


def _decode_open(container, source, start, end, fps, size, audio_rate, want_video, want_audio):
    _probe_open(container, source)  # refuses unusable inputs before decoding
    video, audio = _pick_streams(container)
    if not want_video:
        video = None
    if not want_audio:
        audio = None
    streams = [s for s in (video, audio) if s is not None]
    if not streams:
        return
    for s in streams:
        s.thread_type = "AUTO"
    threads = decoder_threads(video.codec_context.width or 0, video.codec_context.height or 0) if video is not None else 0
    if video is not None:
        video.codec_context.thread_count = threads
    if video is not None and SKIP_NONREF:
        # Only 1 frame in 5-6 is sampled: frames no other frame refers to
        # (most B-frames) need not be decoded at all.  Sampling then takes the
        # first decoded frame at or after each instant (times stay exact).
        video.codec_context.skip_frame = "NONREF"
    base = {}
    for s in streams:
        st = s.start_time if s.start_time is not None else 0
        base[s.index] = float(st * s.time_base) if s.time_base else 0.0
    t0 = min(base.values())
    if start > 0:
        try:
            container.seek(int((start + t0) / av.time_base), backward=True, any_frame=False)
        except av.error.FFmpegError:
            pass  # unseekable: decode from the start and skip
    step = 1.0 / fps
    next_t = start
    # small pictures (decoded on one thread) go to the caller's thread as decoded
    # frames, which it scales; large ones are scaled here (a queue of them would
    # hold megabytes each)
    raw_video = video is not None and threads == 1
    pending = _RawAudio()  # compressed-frame-sized audio, handed over in AUDIO_BATCH_SECONDS pieces
    decoded_any = False
    bad = 0
    rotation = 0
    try:
        for packet in container.demux(streams):
            if end is not None and packet.pts is not None and packet.time_base is not None:
                if float(packet.pts * packet.time_base) - t0 > end + 1.0 and packet.stream.type == "video":
                    break
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                bad += 1
                if bad > 50:
                    raise MediaError(CORRUPT, f"{_display(source)} is corrupt: too many undecodable packets") from None
                continue
            for frame in frames:
                if frame.time is None:
                    continue
                t = float(frame.time) - t0
                decoded_any = True
                if packet.stream.type == "video":
                    if t < next_t - 1e-3 or (end is not None and t >= end):
                        continue
                    rotation = getattr(frame, "rotation", 0) or 0
                    yield _RawVideo(t, frame, rotation) if raw_video else Decoded("video", t, _rotate(frame2gray(frame, size), rotation))
                    next_t = max(next_t + step, t + step * 0.5)
                    while next_t <= t:
                        next_t += step
                else:
                    pending.add(frame, t)
                    if pending.seconds >= AUDIO_BATCH_SECONDS:
                        yield pending
                        pending = _RawAudio()
        yield pending
        yield _AudioEnd(complete=True)
    except MediaError:
        raise
    except av.error.FFmpegError as exc:
        if not decoded_any:
            raise MediaError(CORRUPT, f"{_display(source)} cannot be decoded: {exc.strerror or exc}") from None
        # a truncated tail: keep what decoded
        yield pending
        yield _AudioEnd(complete=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MediaError(UNSUPPORTED, f"{_display(source)}: {exc}") from None
    if not decoded_any:
        raise MediaError(CORRUPT, f"{_display(source)} contains no decodable audio or video")


@dataclass
class _RawVideo:
    """A sampled frame, still FFmpeg's: the caller's thread scales it."""

    time: float
    frame: object
    rotation: int


class _RawAudio:
    """Decoded audio frames (and their times), resampled in the caller's thread."""

    def __init__(self) -> None:
        self.frames: list = []
        self.seconds = 0.0

    def add(self, frame, t: float) -> None:
        self.frames.append((frame, t))
        self.seconds += frame.samples / (frame.sample_rate or 1)


@dataclass
class _AudioEnd:
    complete: bool  # False: a truncated tail (the resampler's remainder is dropped)


class _Truncated(Exception):
    """Resampling failed part-way: keep what came before (as a truncated tail)."""


class _Finish:
    """The caller's half of decoding: raw items to :class:`Decoded` ones.

    Resamples audio to ``audio_rate`` mono, hands it on in pieces of at least
    AUDIO_BATCH_SECONDS windowed to ``[start, end)``, and scales raw video
    frames (small pictures) to grey rasters.
    """

    def __init__(self, source, start: float, end: float | None, size: int, audio_rate: int):
        self.source, self.size, self.rate = source, size, audio_rate
        self.resampler = None  # made at the first audio frame
        self.audio_pos: float | None = None  # time of the next resampled sample
        self.held = _AudioBatch(start, end, audio_rate)

    def __call__(self, item) -> Iterator[Decoded]:
        if isinstance(item, Decoded):
            yield item
        elif isinstance(item, _RawVideo):
            yield Decoded("video", item.time, _rotate(frame2gray(item.frame, self.size), item.rotation))
        elif isinstance(item, _RawAudio):
            for frame, t in item.frames:
                if self.audio_pos is None:
                    self.audio_pos = t  # the resampled stream starts with the first decoded frame
                yield from self._emit(self._resample(frame))
        elif isinstance(item, _AudioEnd):
            if item.complete and self.resampler is not None:
                yield from self._emit(self._resample(None))
            yield from self.held.flush()

    def _resample(self, frame) -> list:
        if self.resampler is None:
            # the resampler emits frames of AUDIO_BATCH_SECONDS (one object, one array each, not one per ~20 ms)
            batch = int(AUDIO_BATCH_SECONDS * self.rate) or None
            self.resampler = av.AudioResampler(format="flt", layout="mono", rate=self.rate, frame_size=batch)
        try:
            return self.resampler.resample(frame)
        except av.error.FFmpegError:
            raise _Truncated from None
        except ValueError as exc:
            raise MediaError(UNSUPPORTED, f"{_display(self.source)}: {exc}") from None

    def _emit(self, resampled: list) -> Iterator[Decoded]:
        for rf in resampled:
            yield from self.held.add(rf.to_ndarray().reshape(-1), self.audio_pos)
            self.audio_pos += rf.samples / self.rate


#: 8-bit planar YUV layouts whose first plane is the luma we hash.
_Y_FORMATS = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21", "yuv411p", "yuv440p", "gray"})


def frame2gray(frame, size: int) -> np.ndarray:
    """A decoded frame as a ``size`` x ``size`` grey raster.

    For 8-bit YUV the luma plane is read in place and area-scaled by OpenCV
    (several times faster than swscale's area filter); anything else goes
    through swscale.
    """
    if frame.format.name in _Y_FORMATS:
        plane = frame.planes[0]
        y = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[: frame.height, : frame.width]
        if y.shape[0] >= size and y.shape[1] >= size:
            # bilinear to twice the target, then an exact 2x area average:
            # several times cheaper than one fractional area resize, and the
            # same raster to within a grey level
            y = cv2.resize(y, (2 * size, 2 * size), interpolation=cv2.INTER_LINEAR)
        if frame.color_range == 2 or frame.format.name.startswith("yuvj") or frame.format.name == "gray":
            return cv2.resize(y, (size, size), interpolation=cv2.INTER_AREA)
        # limited range (16-235) -> full range, like swscale's gray conversion
        small = cv2.resize(y, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
        return np.clip((small - 16.0) * (255.0 / 219.0), 0, 255).astype(np.uint8)
    small = frame.reformat(width=size, height=size, format="gray", interpolation="AREA").to_ndarray()
    return np.ascontiguousarray(small[:size, :size])


#: Resampled audio is handed on in pieces of at least this many seconds: a
#: compressed track comes in ~20-50 ms frames, and one hand-over per frame
#: (to the worker queue, then the peak picker) cost a third of the decode
#: time of a small file.  The resampler itself emits frames of this length
#: (one output frame and array per piece, not per compressed frame).
AUDIO_BATCH_SECONDS = 0.5


class _AudioBatch:
    """Consecutive resampled audio frames, joined and windowed to ``[start, end)``."""

    def __init__(self, start: float, end: float | None, rate: int):
        self.start, self.end, self.rate = start, end, rate
        self.parts: list[np.ndarray] = []
        self.pos = 0.0  # time of the first held sample
        self.n = 0

    def add(self, samples: np.ndarray, pos: float) -> Iterator[Decoded]:
        if not self.parts:
            self.pos = pos
        self.parts.append(samples)
        self.n += len(samples)
        if self.n >= AUDIO_BATCH_SECONDS * self.rate:
            yield from self.flush()

    def flush(self) -> Iterator[Decoded]:
        if self.parts:
            joined = np.concatenate(self.parts).astype(np.float32, copy=False)
            self.parts, self.n = [], 0
            yield from _window_audio(joined, self.pos, self.start, self.end, self.rate)


def _window_audio(samples: np.ndarray, pos: float, start: float, end: float | None, rate: int):
    n = len(samples)
    a = int(round((start - pos) * rate)) if pos < start else 0
    b = n if end is None else min(n, int(round((end - pos) * rate)))
    if a < b:
        yield Decoded("audio", pos + a / rate, samples[a:b])


def decode_timing(source: str | os.PathLike) -> float:
    """Decode every frame of every stream, doing nothing else (bench baseline)."""
    import time

    container = open_container(source)
    try:
        streams = [s for s in (*container.streams.video[:1], *container.streams.audio[:1])]
        for s in streams:
            s.thread_type = "AUTO"
        t = time.perf_counter()
        for packet in container.demux(streams):
            try:
                for _ in packet.decode():
                    pass
            except av.error.InvalidDataError:
                continue
        return time.perf_counter() - t
    finally:
        container.close()
