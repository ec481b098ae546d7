"""Fingerprint value objects and their binary / JSON round-trips.

A :class:`Fingerprint` is what extraction produces for one media file and
what the library stores.  It carries its ``name``, ``version`` and the
``params`` it was made with, so a library never mixes incompatible hashes.

Binary layout (``.mdna`` files, little-endian)::

    b"MDNA" | u8 container version | u32 header length | header (JSON, UTF-8)
    | zlib(payload)

The header lists each array's name, dtype and length; the payload is the
arrays' raw bytes concatenated in header order.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from .errors import BAD_FINGERPRINT, MediaError

FINGERPRINT_NAME = "mediadna"
#: Bump when hashes change meaning; stores refuse to mix versions.
FINGERPRINT_VERSION = 1
MAGIC = b"MDNA"
CONTAINER_VERSION = 1

# Bit flags per sampled frame.
FLAG_FLAT = 1  # flat / near-black / near-uniform frame: never evidence on its own
FLAG_DIM = 2  # dim frame (night footage): evidence only in a long enough segment (mediadna.match.DIM_SEGMENT_SECONDS)


@dataclass(frozen=True)
class FrameHash:
    """A 64-bit perceptual frame hash (DCT sign pattern, like pHash / PDQ)."""

    value: int

    def distance(self, other: "FrameHash") -> int:
        """Hamming distance in bits (0 = identical, ~32 = unrelated)."""
        return int(bin(self.value ^ other.value).count("1"))

    def __str__(self) -> str:
        return f"{self.value:016x}"

    @classmethod
    def from_hex(cls, text: str) -> "FrameHash":
        return cls(int(text, 16))


@dataclass
class VisualTrack:
    """Per sampled frame: time (s), hash, hash of the mirrored frame, flags,
    and the hashes of centred crops of the frame (``zoom``, one column per
    ``params["zoom_views"]`` entry; none in fingerprints made before them)."""

    times: np.ndarray  # float32 seconds, increasing
    hashes: np.ndarray  # uint64
    flipped: np.ndarray  # uint64 (hash of the horizontally mirrored frame)
    flags: np.ndarray  # uint8, FLAG_* bits
    zoom: np.ndarray | None = None  # uint64 (N, views): hashes of the frame's centred crops

    def __post_init__(self) -> None:
        self.times = np.asarray(self.times, dtype=np.float32)
        self.hashes = np.asarray(self.hashes, dtype=np.uint64)
        self.flipped = np.asarray(self.flipped, dtype=np.uint64)
        self.flags = np.asarray(self.flags, dtype=np.uint8)
        n = len(self.times)
        self.zoom = np.zeros((n, 0), np.uint64) if self.zoom is None else np.asarray(self.zoom, dtype=np.uint64)
        if not (len(self.hashes) == len(self.flipped) == len(self.flags) == n) or self.zoom.ndim != 2 or len(self.zoom) != n:
            raise MediaError(BAD_FINGERPRINT, "visual track arrays differ in length")

    def __len__(self) -> int:
        return len(self.times)

    @property
    def informative(self) -> np.ndarray:
        """Mask of frames that may serve as evidence (not flat)."""
        return (self.flags & FLAG_FLAT) == 0

    @property
    def dim(self) -> np.ndarray:
        """Mask of dim frames (evidence only in long segments)."""
        return (self.flags & FLAG_DIM) != 0

    @classmethod
    def empty(cls) -> "VisualTrack":
        return cls(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0))

    def select(self, mask: np.ndarray) -> "VisualTrack":
        return VisualTrack(self.times[mask], self.hashes[mask], self.flipped[mask], self.flags[mask], self.zoom[mask])

    @property
    def views(self) -> np.ndarray:
        """(N, 1 + zoom views) uint64: the frame's hash, then its centred crops' hashes."""
        return np.concatenate([self.hashes[:, None], self.zoom], axis=1)


@dataclass
class AudioTrack:
    """Spectral peaks: STFT frame index and frequency bin of each peak.

    Also the band-energy contour of every audible frame (``contour_frames``,
    ``contour``: 32 bits each, see mediadna.audio.samples2contour; empty in
    fingerprints made before it)."""

    frames: np.ndarray  # uint32 STFT frame index (time = frame * hop / rate)
    bins: np.ndarray  # uint16 frequency bin
    contour_frames: np.ndarray | None = None  # uint32 STFT frame index, ascending
    contour: np.ndarray | None = None  # uint32 contour bits of those frames

    def __post_init__(self) -> None:
        self.frames = np.asarray(self.frames, dtype=np.uint32)
        self.bins = np.asarray(self.bins, dtype=np.uint16)
        self.contour_frames = np.asarray(() if self.contour_frames is None else self.contour_frames, dtype=np.uint32)
        self.contour = np.asarray(() if self.contour is None else self.contour, dtype=np.uint32)
        if len(self.frames) != len(self.bins) or len(self.contour_frames) != len(self.contour):
            raise MediaError(BAD_FINGERPRINT, "audio track arrays differ in length")

    def __len__(self) -> int:
        return len(self.frames)

    @classmethod
    def empty(cls) -> "AudioTrack":
        return cls(np.zeros(0), np.zeros(0))


@dataclass
class Fingerprint:
    """Everything mediadna knows about one media file."""

    duration: float
    sha256: str
    media_type: str  # "video" | "audio" | "image"
    params: dict
    visual: VisualTrack | None = None
    audio: AudioTrack | None = None
    name: str = FINGERPRINT_NAME
    version: int = FINGERPRINT_VERSION
    inset: VisualTrack | None = None  # hashes of a picture-in-picture inset, where one was seen
    source: str = ""  # the input's file name, informative only
    meta: dict = field(default_factory=dict)  # probe facts (width, height, codecs...)
    #: short inputs only: the audio peaks on STFT grids offset by this many
    #: samples (see mediadna.audio.SHIFTS); frame f starts at f * hop + offset
    shifted: dict[int, AudioTrack] = field(default_factory=dict)

    # -- convenience -------------------------------------------------------
    @property
    def has_visual(self) -> bool:
        return self.visual is not None and len(self.visual) > 0

    @property
    def has_audio(self) -> bool:
        return self.audio is not None and len(self.audio) > 0

    def compatible_with(self, other: "Fingerprint") -> bool:
        return self.name == other.name and self.version == other.version

    # -- binary ------------------------------------------------------------
    def _arrays(self) -> list[tuple[str, np.ndarray]]:
        out: list[tuple[str, np.ndarray]] = []
        if self.visual is not None:
            v = self.visual
            out += [("v.times", v.times), ("v.hashes", v.hashes), ("v.flipped", v.flipped), ("v.flags", v.flags)]
            if len(v) and v.zoom.shape[1]:
                out.append(("v.zoom", v.zoom.reshape(-1)))
        if self.audio is not None:
            out += [("a.frames", self.audio.frames), ("a.bins", self.audio.bins)]
            if len(self.audio.contour):
                out += [("a.cframes", self.audio.contour_frames), ("a.contour", self.audio.contour)]
        if self.inset is not None and len(self.inset):
            i = self.inset
            out += [("i.times", i.times), ("i.hashes", i.hashes), ("i.flipped", i.flipped), ("i.flags", i.flags)]
        for offset in sorted(self.shifted):
            track = self.shifted[offset]
            out += [(f"s{offset}.frames", track.frames), (f"s{offset}.bins", track.bins)]
            if len(track.contour):
                out += [(f"s{offset}.cframes", track.contour_frames), (f"s{offset}.contour", track.contour)]
        return out

    def _header(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "duration": self.duration,
            "sha256": self.sha256,
            "media_type": self.media_type,
            "params": self.params,
            "source": self.source,
            "meta": self.meta,
        }

    def to_bytes(self) -> bytes:
        arrays = self._arrays()
        header = self._header()
        header["arrays"] = [[n, a.dtype.newbyteorder("<").str, int(a.size)] for n, a in arrays]
        payload = b"".join(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes() for _, a in arrays)
        hbytes = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
        return MAGIC + struct.pack("<BI", CONTAINER_VERSION, len(hbytes)) + hbytes + zlib.compress(payload, 6)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Fingerprint":
        try:
            if data[:4] != MAGIC:
                raise ValueError("not a mediadna fingerprint (bad magic)")
            cver, hlen = struct.unpack_from("<BI", data, 4)
            if cver != CONTAINER_VERSION:
                raise ValueError(f"unknown container version {cver}")
            header = json.loads(data[9 : 9 + hlen])
            # decompressobj, not zlib.decompress: the latter silently ignores
            # bytes after the end of the stream (appended garbage, two files
            # concatenated), which must be rejected like any other corruption.
            dec = zlib.decompressobj()
            payload = dec.decompress(data[9 + hlen :]) + dec.flush()
            if not dec.eof:
                raise ValueError("payload truncated")
            if dec.unused_data:
                raise ValueError("trailing bytes after the payload")
            arrays: dict[str, np.ndarray] = {}
            pos = 0
            for name, dtype, size in header.pop("arrays"):
                dt = np.dtype(dtype)
                nbytes = dt.itemsize * int(size)
                if pos + nbytes > len(payload):
                    raise ValueError("payload truncated")
                arrays[name] = np.frombuffer(payload, dtype=dt, count=int(size), offset=pos).astype(dt.newbyteorder("="))
                pos += nbytes
            if pos != len(payload):
                raise ValueError("payload longer than its arrays")
            return cls._from_parts(header, arrays)
        except MediaError:
            raise
        except Exception as exc:  # struct/zlib/json/key errors: all mean "bad file"
            raise MediaError(BAD_FINGERPRINT, f"cannot read fingerprint: {exc}") from None

    @classmethod
    def _from_parts(cls, header: dict, arrays: dict[str, np.ndarray]) -> "Fingerprint":
        visual = audio = None
        if "v.times" in arrays:
            zoom = None
            if "v.zoom" in arrays:
                n = len(arrays["v.times"])
                if n == 0 or arrays["v.zoom"].size % n:
                    raise ValueError("zoom views do not match the frames")
                zoom = arrays["v.zoom"].reshape(n, -1)
            visual = VisualTrack(arrays["v.times"], arrays["v.hashes"], arrays["v.flipped"], arrays["v.flags"], zoom)
        if "a.frames" in arrays:
            audio = AudioTrack(arrays["a.frames"], arrays["a.bins"], arrays.get("a.cframes"), arrays.get("a.contour"))
        inset = None
        if "i.times" in arrays:
            inset = VisualTrack(arrays["i.times"], arrays["i.hashes"], arrays["i.flipped"], arrays["i.flags"])
        shifted = {}
        for name in arrays:
            if name.startswith("s") and name.endswith(".frames"):
                offset = name[1 : -len(".frames")]
                shifted[int(offset)] = AudioTrack(arrays[name], arrays[f"s{offset}.bins"],
                                                  arrays.get(f"s{offset}.cframes"), arrays.get(f"s{offset}.contour"))
        return cls(
            duration=float(header["duration"]),
            sha256=str(header["sha256"]),
            media_type=str(header["media_type"]),
            params=dict(header["params"]),
            visual=visual,
            audio=audio,
            inset=inset,
            name=str(header["name"]),
            version=int(header["version"]),
            source=str(header.get("source", "")),
            meta=dict(header.get("meta", {})),
            shifted=shifted,
        )

    # -- JSON --------------------------------------------------------------
    def to_json(self) -> str:
        doc = self._header()
        doc["arrays"] = {
            n: {"dtype": a.dtype.newbyteorder("<").str, "data": base64.b64encode(a.astype(a.dtype.newbyteorder("<")).tobytes()).decode()}
            for n, a in self._arrays()
        }
        return json.dumps(doc, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Fingerprint":
        try:
            doc = json.loads(text)
            arrays = {}
            for n, spec in doc.pop("arrays").items():
                dt = np.dtype(spec["dtype"])
                arrays[n] = np.frombuffer(base64.b64decode(spec["data"]), dtype=dt).astype(dt.newbyteorder("="))
            return cls._from_parts(doc, arrays)
        except MediaError:
            raise
        except Exception as exc:
            raise MediaError(BAD_FINGERPRINT, f"cannot read fingerprint JSON: {exc}") from None

    # -- files -------------------------------------------------------------
    def save(self, path) -> None:
        with open(path, "wb") as fh:
            fh.write(self.to_bytes())

    @classmethod
    def load(cls, path) -> "Fingerprint":
        with open(path, "rb") as fh:
            data = fh.read()
        if data[:1] == b"{":
            return cls.from_json(data.decode("utf-8", "replace"))
        return cls.from_bytes(data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Fingerprint):
            return NotImplemented
        if self._header() != other._header():
            return False
        a, b = self._arrays(), other._arrays()
        return [n for n, _ in a] == [n for n, _ in b] and all(np.array_equal(x, y) for (_, x), (_, y) in zip(a, b))


# -- fingerprints submitted instead of media ------------------------------------------------
def looks_like_fingerprint(head: bytes) -> bool:
    """Whether a file's first bytes are a fingerprint's (by content, never by name):
    the binary magic, or the start of :meth:`Fingerprint.to_json`."""
    if head[:4] == MAGIC:
        return True
    text = head.lstrip()[:16].replace(b" ", b"")
    return text.startswith(b'{"arrays":{')


def read_fingerprint(data: bytes) -> Fingerprint:
    """A submitted fingerprint (binary or JSON) that this version can match."""
    from .errors import VERSION_MISMATCH

    if data[:4] == MAGIC:
        fp = Fingerprint.from_bytes(data)
    else:
        fp = Fingerprint.from_json(data.decode("utf-8", "replace"))
    if fp.name != FINGERPRINT_NAME or fp.version != FINGERPRINT_VERSION:
        raise MediaError(VERSION_MISMATCH, f"the fingerprint was made by {fp.name} v{fp.version}; this is v{FINGERPRINT_VERSION}")
    return fp
