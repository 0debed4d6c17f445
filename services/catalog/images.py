"""Product image handling: validate an upload, normalise it, make thumbnails, store the files.

Decisions, so callers do not have to read the code:

- Accepted formats are JPEG, PNG, WEBP and GIF (``ImageRules.allowed_formats``). The type is
  decided by Pillow from the bytes, never by a file name or a client's content type.
- Every image is decoded completely and re-encoded. That is what strips all metadata (EXIF, XMP,
  ICC profiles, PNG text chunks, GIF comments): the encoder is given pixels and nothing else.
  EXIF orientation is applied to the pixels first, and an embedded ICC profile is converted to
  sRGB, so the image looks the same without its metadata.
- The original keeps its format family (an MPO camera file is stored as JPEG). JPEG is encoded at
  quality 88, WEBP at quality 88 with alpha kept; PNG and GIF are lossless. Transparency survives
  PNG, WEBP and GIF. Only the first frame of an animated GIF or WEBP is kept: product images are
  stills, and one frame keeps memory and thumbnail work bounded.
- Thumbnails use the original's format too, so an image and its thumbnails share one content
  type and a client that can show the original can show every thumbnail. A thumbnail size is
  the longest edge in pixels; aspect ratio is kept and nothing is upscaled, so an image smaller
  than a size gets a thumbnail of its own dimensions.
- Files are content addressed: ``products/<product_key>/<hash>.<ext>`` and
  ``<hash>_<size>.<ext>`` under the media root, where ``hash`` is the first 16 hex digits of the
  SHA-256 of the re-encoded original.
- Refusals raise ``ImageRejected(code, detail)``: ``image_too_large`` (bytes, checked before
  anything is parsed), ``unsupported_image_format``, ``image_truncated``, ``invalid_image`` and
  ``image_dimensions_too_large`` (declared width x height over ``max_pixels``, or over Pillow's
  own MAX_IMAGE_PIXELS if that is lower, checked before pixels are decoded).
  Every pixel is decoded, and PNG chunk checksums are verified, so damage is caught here rather
  than served.

Pillow is blocking, so the functions here are synchronous and each has an ``*_async`` twin that
runs it in a worker thread. Nothing here touches Pillow's global settings (MAX_IMAGE_PIXELS,
LOAD_TRUNCATED_IMAGES): they are read, never changed, so other code in the process is unaffected;
if other code turned LOAD_TRUNCATED_IMAGES on, ``process_image`` raises RuntimeError.
Known simplification: the async twins use asyncio's default thread pool and do not cap how many
large images are decoded at once; a caller expecting bursts of uploads should bound that itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import re
import struct
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

MIB = 1024 * 1024

# Pillow's name for a format -> the format we store it as.
_FORMAT_FAMILY: Mapping[str, str] = {
    "JPEG": "JPEG",
    "MPO": "JPEG",
    "PNG": "PNG",
    "WEBP": "WEBP",
    "GIF": "GIF",
}
_CONTENT_TYPES: Mapping[str, str] = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}
_EXTENSIONS: Mapping[str, str] = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
_SAVE_OPTIONS: Mapping[str, Mapping[str, object]] = {
    "JPEG": {"quality": 88, "optimize": True},
    "PNG": {"optimize": False},  # optimize is slow on large images for a few percent
    "WEBP": {"quality": 88, "method": 4},
    "GIF": {},
}
# Leading bytes of each format: they tell a damaged image of ours from a file of another type.
_MAGIC: Mapping[str, tuple[bytes, ...]] = {
    "JPEG": (b"\xff\xd8\xff",),
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "GIF": (b"GIF87a", b"GIF89a"),
}
# What Pillow's openers and decoders raise on malformed data (besides its bomb checks).
_DECODER_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)
_HASH_LENGTH = 16
_PRODUCT_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


# ---------------------------------------------------------------------------- rules and results


@dataclass(frozen=True)
class ImageRules:
    """What an uploaded product image may be, and which thumbnails to make of it."""

    max_bytes: int = 10 * MIB
    max_pixels: int = 40_000_000
    thumbnail_sizes: tuple[int, ...] = (64, 256, 512)
    allowed_formats: frozenset[str] = field(
        default_factory=lambda: frozenset({"JPEG", "PNG", "WEBP", "GIF"})
    )

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_pixels <= 0:
            raise ValueError("max_bytes and max_pixels must be positive")
        if any(size <= 0 for size in self.thumbnail_sizes):
            raise ValueError("thumbnail sizes must be positive")
        unknown = set(self.allowed_formats) - set(_CONTENT_TYPES)
        if unknown:
            raise ValueError(f"unsupported formats in allowed_formats: {sorted(unknown)}")


class ImageRejected(Exception):
    """An upload that is not an acceptable product image; ``code`` is stable for API clients."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class InvalidProductKey(ValueError):
    """A product key that cannot be used as a folder name under the media root."""

    code = "invalid_product_key"


class Thumbnail(NamedTuple):
    """One encoded thumbnail: ``(data, width, height)``."""

    data: bytes
    width: int
    height: int


@dataclass(frozen=True)
class ProcessedImage:
    """A validated image, re-encoded without metadata, with its thumbnails by size."""

    data: bytes
    width: int
    height: int
    format: str
    content_type: str
    extension: str
    content_hash: str
    thumbnails: Mapping[int, Thumbnail]


@dataclass(frozen=True)
class StoredImage:
    """Where a processed image lives, as POSIX paths relative to the media root."""

    product_key: str
    content_hash: str
    content_type: str
    width: int
    height: int
    path: str
    thumbnails: Mapping[int, str]

    def all_paths(self) -> tuple[str, ...]:
        """The original's path followed by every thumbnail's."""
        return (self.path, *self.thumbnails.values())


# ---------------------------------------------------------------------------- processing


def process_image(data: bytes, rules: ImageRules) -> ProcessedImage:
    """Validate ``data`` against ``rules``; return it re-encoded, metadata-free, with thumbnails."""
    if len(data) > rules.max_bytes:
        raise ImageRejected("image_too_large", f"{len(data)} bytes; the limit is {rules.max_bytes}")
    _require_strict_decoding()
    with _open(data, rules) as opened:
        family = _FORMAT_FAMILY[opened.format or ""]
        _decode(opened, data)
        image = _normalise(opened, family)
    original = _encode(image, family)
    return ProcessedImage(
        data=original,
        width=image.width,
        height=image.height,
        format=family,
        content_type=_CONTENT_TYPES[family],
        extension=_EXTENSIONS[family],
        content_hash=hashlib.sha256(original).hexdigest()[:_HASH_LENGTH],
        thumbnails={size: _thumbnail(image, size, family) for size in rules.thumbnail_sizes},
    )


async def process_image_async(data: bytes, rules: ImageRules) -> ProcessedImage:
    """``process_image`` in a worker thread, so the event loop keeps serving requests."""
    return await asyncio.to_thread(process_image, data, rules)


def _require_strict_decoding() -> None:
    """Refuse to run if Pillow has been told to accept truncated images."""
    # With LOAD_TRUNCATED_IMAGES on, Pillow pads missing data with grey instead of failing.
    # We never turn it on; if other code did, we fail loudly rather than flip a global back.
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must be off to validate images")


@contextlib.contextmanager
def _open(data: bytes, rules: ImageRules) -> Iterator[ImageFile.ImageFile]:
    """Identify the image and check its declared size; no pixel has been decoded yet."""
    try:
        # Naming the formats keeps Pillow's other, less hardened decoders out of reach.
        # (MPO needs no name: Pillow's JPEG opener returns it.)
        opened = Image.open(io.BytesIO(data), formats=sorted(rules.allowed_formats))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # The warning arrives as an exception only where warnings are errors; either way
        # Pillow has judged the declared size dangerous.
        raise ImageRejected("image_dimensions_too_large", str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise _unidentified(data, rules) from exc
    except _DECODER_ERRORS as exc:
        raise _damaged(data, exc) from exc
    with opened:
        _check_dimensions(opened, rules)
        if opened.format == "PNG":
            _verify_png_checksums(data)
        yield opened


def _unidentified(data: bytes, rules: ImageRules) -> ImageRejected:
    """Tell a damaged file of an allowed type from a file of another type."""
    format_ = _sniff(data)
    if format_ in rules.allowed_formats:
        return ImageRejected("invalid_image", f"the {format_} data cannot be read")
    allowed = ", ".join(sorted(rules.allowed_formats))
    return ImageRejected("unsupported_image_format", f"not an image in one of: {allowed}")


def _sniff(data: bytes) -> str | None:
    """The format the leading bytes claim, if any of ours."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for format_, prefixes in _MAGIC.items():
        if data.startswith(prefixes):
            return format_
    return None


def _damaged(data: bytes, exc: BaseException) -> ImageRejected:
    """Map a decoder failure to ``image_truncated`` or ``invalid_image``."""
    if "truncated" in str(exc).lower() or _riff_is_short(data):
        return ImageRejected("image_truncated", "the image data ends early")
    return ImageRejected("invalid_image", f"the image cannot be decoded ({exc})")


def _riff_is_short(data: bytes) -> bool:
    """Whether a WEBP file is shorter than its RIFF header says; libwebp does not tell us."""
    if _sniff(data) != "WEBP":
        return False
    declared = int.from_bytes(data[4:8], "little") + 8
    return len(data) < declared


def _check_dimensions(opened: Image.Image, rules: ImageRules) -> None:
    """Refuse decompression bombs from the header, before any pixel memory is allocated."""
    width, height = opened.size
    # Pillow warns above its own MAX_IMAGE_PIXELS; treating that as a refusal here, rather than
    # by changing warning filters, keeps this thread-safe and leaves global state alone.
    limit = min(rules.max_pixels, Image.MAX_IMAGE_PIXELS or rules.max_pixels)
    if width * height > limit:
        raise ImageRejected(
            "image_dimensions_too_large", f"{width}x{height} pixels; the limit is {limit}"
        )
    if width <= 0 or height <= 0:
        raise ImageRejected("invalid_image", f"declared size {width}x{height}")


def _verify_png_checksums(data: bytes) -> None:
    """Check every PNG chunk's CRC, which decoding alone does not, to catch corrupt pixel data."""
    try:
        # verify() leaves an image unusable, hence a second, throwaway open.
        with Image.open(io.BytesIO(data), formats=["PNG"]) as check:
            check.verify()
    except _DECODER_ERRORS as exc:
        raise _damaged(data, exc) from exc


def _decode(opened: ImageFile.ImageFile, data: bytes) -> None:
    """Decode every pixel, so a truncated or corrupt file fails here and not in a thumbnail."""
    try:
        opened.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("image_dimensions_too_large", str(exc)) from exc
    except _DECODER_ERRORS as exc:
        raise _damaged(data, exc) from exc


def _normalise(image: Image.Image, family: str) -> Image.Image:
    """Upright, sRGB pixels in a mode the target format stores, with no metadata attached."""
    image = _orient(image)
    image = _to_srgb(image)
    image = _to_storable_mode(image, family)
    # Encoders pick some metadata (ICC, GIF comments, transparency) from info; empty it so
    # only pixels are written. _to_storable_mode always returned a new image we own.
    image.info = {}
    return image


def _orient(image: Image.Image) -> Image.Image:
    """Apply the EXIF Orientation tag to the pixels."""
    try:
        return ImageOps.exif_transpose(image) or image
    except (SyntaxError, ValueError, TypeError, KeyError, OSError):
        # A broken EXIF block is dropped with the rest of the metadata; the pixels are fine.
        return image


def _to_srgb(image: Image.Image) -> Image.Image:
    """Convert pixels described by an embedded ICC profile to sRGB, since the profile goes."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA", "CMYK"):
        return image
    output_mode = "RGBA" if image.mode == "RGBA" else "RGB"
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        srgb = ImageCms.createProfile("sRGB")
        converted = ImageCms.profileToProfile(image, source, srgb, outputMode=output_mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        # A profile LittleCMS cannot use: keep the pixels as they are, like most viewers do.
        return image
    return converted or image


def _to_storable_mode(image: Image.Image, family: str) -> Image.Image:
    """A copy in L, RGB or RGBA, which every encoder and the thumbnail filter handle well."""
    # A palette or a colour key (tRNS) can carry transparency as well as an alpha band can.
    has_alpha = image.mode in _ALPHA_MODES or "transparency" in image.info
    if has_alpha and family != "JPEG":
        return image.convert("RGBA")
    # JPEG has no alpha; L stays grey, and CMYK, P, 1, I;16 and the like become RGB.
    return image.copy() if image.mode in ("L", "RGB") else image.convert("RGB")


def _encode(image: Image.Image, family: str) -> bytes:
    """Encode pixels only; no metadata is passed to the encoder."""
    buffer = io.BytesIO()
    image.save(buffer, format=family, **_SAVE_OPTIONS[family])
    return buffer.getvalue()


def _thumbnail(image: Image.Image, size: int, family: str) -> Thumbnail:
    """Shrink to fit a ``size`` square, keeping the aspect ratio and never enlarging."""
    scale = min(1.0, size / max(image.size))
    fitted = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    small = image
    if fitted != image.size:
        # reducing_gap lets Pillow shrink by whole factors first: much faster on big photos,
        # with no visible difference from a pure Lanczos pass at these sizes.
        small = image.resize(fitted, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return Thumbnail(_encode(small, family), small.width, small.height)


# ---------------------------------------------------------------------------- storage


def validate_product_key(product_key: str) -> str:
    """Return ``product_key`` if it is safe as one folder name, else raise InvalidProductKey."""
    # Starting with a letter or digit rules out "", ".", ".." and hidden folders; the character
    # set rules out separators, drive letters and anything a shell or URL would need escaped.
    if not _PRODUCT_KEY.fullmatch(product_key):
        raise InvalidProductKey(
            f"product key {product_key!r} must be 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return product_key


class MediaStore:
    """Writes product images under a media folder, served by the web tier at ``/media/``."""

    def __init__(self, media_root: Path | str) -> None:
        self.media_root = Path(media_root)

    def save(self, product_key: str, processed: ProcessedImage) -> StoredImage:
        """Write the original and its thumbnails; on any failure leave nothing behind."""
        folder = _product_folder(product_key)
        stored = _stored_image(product_key, folder, processed)
        files = [(stored.path, processed.data)] + [
            (stored.thumbnails[size], thumb.data) for size, thumb in processed.thumbnails.items()
        ]
        created_dirs: list[Path] = []
        written: list[Path] = []
        try:
            self._make_dirs(folder, created_dirs)
            for relative, data in files:
                target = self._absolute(relative)
                # Names are content hashes, so an existing file already has these bytes. Leaving
                # it alone also means a rollback never deletes a file another image relies on.
                if not target.exists():
                    _write_atomically(target, data)
                    written.append(target)
        except BaseException:
            self._remove(written, created_dirs[::-1])
            raise
        return stored

    async def save_async(self, product_key: str, processed: ProcessedImage) -> StoredImage:
        """``save`` in a worker thread."""
        return await asyncio.to_thread(self.save, product_key, processed)

    def delete(self, stored: StoredImage) -> None:
        """Remove an image's files (missing ones are fine) and its folder once it is empty."""
        folder = _product_folder(stored.product_key)
        # A StoredImage may come back from a database: only ever delete inside its own folder.
        if any(PurePosixPath(relative).parent != folder for relative in stored.all_paths()):
            raise ValueError(f"{stored!r} has paths outside {folder}")
        targets = [self._absolute(relative) for relative in stored.all_paths()]
        self._remove(targets, [self._absolute(str(folder))])

    async def delete_async(self, stored: StoredImage) -> None:
        """``delete`` in a worker thread."""
        await asyncio.to_thread(self.delete, stored)

    def _absolute(self, relative: str) -> Path:
        """Resolve a stored relative path, refusing any that would leave the media root."""
        parts = PurePosixPath(relative).parts
        if not parts or relative.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"unsafe media path {relative!r}")
        return self.media_root.joinpath(*parts)

    def _make_dirs(self, folder: PurePosixPath, created: list[Path]) -> None:
        """Create the folder chain, adding each folder this call made to ``created``."""
        path = self.media_root
        for part in folder.parts:
            path = path / part
            if not path.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                created.append(path)

    @staticmethod
    def _remove(files: list[Path], folders: list[Path]) -> None:
        """Best-effort removal of files, then of folders that are left empty."""
        for path in files:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        for folder in folders:
            # rmdir only succeeds on an empty folder, which is exactly the one to drop.
            with contextlib.suppress(OSError):
                folder.rmdir()


def _product_folder(product_key: str) -> PurePosixPath:
    """``products/<product_key>``, relative to the media root, once the key is known safe."""
    return PurePosixPath("products", validate_product_key(product_key))


def _stored_image(
    product_key: str, folder: PurePosixPath, processed: ProcessedImage
) -> StoredImage:
    """The relative paths a processed image gets under ``folder``."""
    stem, ext = processed.content_hash, processed.extension
    return StoredImage(
        product_key=product_key,
        content_hash=stem,
        content_type=processed.content_type,
        width=processed.width,
        height=processed.height,
        path=str(folder / f"{stem}.{ext}"),
        thumbnails={size: str(folder / f"{stem}_{size}.{ext}") for size in processed.thumbnails},
    )


def _write_atomically(target: Path, data: bytes) -> None:
    """Write to a temporary file beside ``target``, then rename, so readers never see half."""
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as temp:
            temp.write(data)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
