"""Product image processing and the media store, on real images built with Pillow."""

from __future__ import annotations

import io
import os
import struct
import uuid
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageCms, ImageDraw, ImageFile, PngImagePlugin

from services.catalog import images
from services.catalog.images import (
    ImageRejected,
    ImageRules,
    InvalidProductKey,
    MediaStore,
    ProcessedImage,
    process_image,
    process_image_async,
)

EXAMPLES = Path(__file__).resolve().parents[3] / "deploy" / "products" / "images"
RULES = ImageRules()
ORIENTATION = 0x0112
RED = (220, 30, 30)
BLUE = (30, 30, 220)


# ---------------------------------------------------------------------------- builders


def picture(size: tuple[int, int] = (800, 600), mode: str = "RGB") -> Image.Image:
    """An image with some structure, so encoders have real work to do."""
    image = Image.new(mode, size, "white")
    draw = ImageDraw.Draw(image)
    width, height = size
    draw.rectangle((0, 0, width // 2, height), fill=RED if mode != "L" else 80)
    draw.ellipse((width // 4, height // 4, width * 3 // 4, height * 3 // 4), fill="black")
    return image


def encode(image: Image.Image, format_: str, **options: object) -> bytes:
    """The bytes of ``image`` saved as ``format_``."""
    buffer = io.BytesIO()
    image.save(buffer, format=format_, **options)
    return buffer.getvalue()


def decode(data: bytes) -> Image.Image:
    """A fully loaded image from bytes."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk with its length and CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(width: int, height: int) -> bytes:
    """A valid, all-black 1-bit PNG: tiny on disk, ``width * height`` pixels once decoded."""
    row_bytes = 1 + (width + 7) // 8  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    block = bytes(row_bytes * 256)  # every row is zeros, so compress big zero blocks
    rows_left, parts = height, []
    while rows_left > 0:
        rows = min(rows_left, 256)
        parts.append(compressor.compress(block[: rows * row_bytes]))
        rows_left -= rows
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", b"".join(parts))
        + png_chunk(b"IEND", b"")
    )


def rejection(data: bytes, rules: ImageRules = RULES) -> str:
    """The code process_image refuses ``data`` with."""
    with pytest.raises(ImageRejected) as caught:
        process_image(data, rules)
    return caught.value.code


def no_pixel_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any attempt to decode pixels fail the test."""

    def refuse(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


def processed(size: tuple[int, int] = (300, 200)) -> ProcessedImage:
    """A processed JPEG with default thumbnails."""
    return process_image(encode(picture(size), "JPEG"), RULES)


def files_under(root: Path) -> list[Path]:
    """Every file and folder below ``root``."""
    return sorted(root.rglob("*"))


# ---------------------------------------------------------------------------- processing


@pytest.mark.parametrize(
    ("format_", "content_type", "extension"),
    [("JPEG", "image/jpeg", "jpg"), ("PNG", "image/png", "png"), ("WEBP", "image/webp", "webp")],
)
def test_each_format_gets_thumbnails_of_the_configured_sizes(
    format_: str, content_type: str, extension: str
) -> None:
    result = process_image(encode(picture((800, 600)), format_), RULES)

    assert (result.width, result.height) == (800, 600)
    assert (result.format, result.content_type, result.extension) == (
        format_,
        content_type,
        extension,
    )
    dimensions = {size: (t.width, t.height) for size, t in result.thumbnails.items()}
    assert dimensions == {64: (64, 48), 256: (256, 192), 512: (512, 384)}
    for thumbnail in result.thumbnails.values():
        image = decode(thumbnail.data)
        assert image.format == format_
        assert image.size == (thumbnail.width, thumbnail.height)


def test_thumbnails_keep_portrait_aspect_ratio() -> None:
    result = process_image(encode(picture((300, 900)), "PNG"), RULES)

    assert (result.thumbnails[256].width, result.thumbnails[256].height) == (85, 256)


def test_a_small_image_is_never_upscaled() -> None:
    result = process_image(encode(picture((100, 50)), "PNG"), RULES)

    assert {s: (t.width, t.height) for s, t in result.thumbnails.items()} == {
        64: (64, 32),
        256: (100, 50),
        512: (100, 50),
    }


def test_exif_orientation_is_applied_and_exif_removed() -> None:
    stored = picture((300, 100))  # red on the left half
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # "turn 90 degrees clockwise to display"
    data = encode(stored, "JPEG", exif=exif.tobytes())

    result = process_image(data, RULES)

    image = decode(result.data)
    assert (result.width, result.height) == (100, 300)
    assert image.size == (100, 300)
    assert "exif" not in image.info
    assert not image.getexif()
    # Turned clockwise, the stored left edge is now the top.
    top, bottom = image.getpixel((50, 10)), image.getpixel((50, 290))
    assert isinstance(top, tuple)
    assert top[0] > 180 and top[2] < 80
    assert bottom == pytest.approx((255, 255, 255), abs=10)
    assert (result.thumbnails[64].width, result.thumbnails[64].height) == (21, 64)


def test_jpeg_exif_xmp_and_comments_are_removed() -> None:
    exif = Image.Exif()
    exif[0x010F] = "secret camera maker"
    options = {"exif": exif.tobytes(), "comment": b"secret", "xmp": b"<x>secret</x>"}
    data = encode(picture(), "JPEG", **options)
    assert data.count(b"secret") == 3

    result = process_image(data, RULES)

    assert b"secret" not in result.data
    assert decode(result.data).info.keys() <= {"jfif", "jfif_version", "jfif_unit", "jfif_density"}


def test_png_text_chunks_are_removed() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret location")
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>secret</x:xmpmeta>")
    data = encode(picture(), "PNG", pnginfo=info)
    assert b"secret" in data

    result = process_image(data, RULES)

    assert b"secret" not in result.data
    assert decode(result.data).info.keys() <= {"dpi"}
    assert all(b"secret" not in t.data for t in result.thumbnails.values())


def test_an_icc_profile_is_applied_then_dropped() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(picture(), "JPEG", icc_profile=srgb)

    result = process_image(data, RULES)

    assert "icc_profile" not in decode(result.data).info


def test_a_gif_comment_is_removed() -> None:
    data = encode(picture().convert("P"), "GIF", comment=b"secret")

    result = process_image(data, RULES)

    assert b"secret" not in result.data
    assert result.format == "GIF"


@pytest.mark.parametrize("format_", ["PNG", "WEBP", "GIF"])
def test_transparency_is_kept(format_: str) -> None:
    image = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle((50, 50, 150, 150), fill=(*BLUE, 255))

    result = process_image(encode(image, format_), RULES)

    for data in (result.data, result.thumbnails[64].data):
        out = decode(data).convert("RGBA")
        width, height = out.size
        assert out.getpixel((0, 0))[3] == 0  # type: ignore[index]
        assert out.getpixel((width // 2, height // 2))[3] == 255  # type: ignore[index]


def test_only_the_first_frame_of_an_animated_gif_is_kept() -> None:
    frames = [Image.new("RGB", (60, 40), colour) for colour in (RED, BLUE)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)

    result = process_image(data, RULES)

    out = decode(result.data)
    assert getattr(out, "n_frames", 1) == 1
    assert out.convert("RGB").getpixel((30, 20)) == pytest.approx(RED, abs=8)


def test_a_cmyk_jpeg_becomes_rgb() -> None:
    result = process_image(encode(picture().convert("CMYK"), "JPEG"), RULES)

    assert decode(result.data).mode == "RGB"


def test_a_palette_png_becomes_a_true_colour_png() -> None:
    result = process_image(encode(picture().convert("P"), "PNG"), RULES)

    assert decode(result.data).mode == "RGB"
    assert result.format == "PNG"


def test_the_content_hash_names_the_stored_bytes() -> None:
    data = encode(picture(), "PNG")

    first, second = process_image(data, RULES), process_image(data, RULES)

    assert first.content_hash == second.content_hash
    assert len(first.content_hash) == 16
    assert int(first.content_hash, 16) >= 0


# ---------------------------------------------------------------------------- refusals


def test_a_text_file_named_png_is_an_unsupported_format(tmp_path: Path) -> None:
    upload = tmp_path / "product.png"
    upload.write_text("definitely a picture of a mug\n")

    assert rejection(upload.read_bytes()) == "unsupported_image_format"


def test_a_format_outside_the_allowed_list_is_unsupported() -> None:
    assert rejection(encode(picture(), "BMP")) == "unsupported_image_format"
    png_only = ImageRules(allowed_formats=frozenset({"PNG"}))
    assert rejection(encode(picture(), "GIF"), png_only) == "unsupported_image_format"


@pytest.mark.parametrize("format_", ["PNG", "JPEG", "WEBP", "GIF"])
def test_a_truncated_image_is_refused(format_: str) -> None:
    data = encode(picture(), format_)

    assert rejection(data[: len(data) // 2]) == "image_truncated"


def test_a_png_cut_inside_its_header_is_invalid() -> None:
    assert rejection(encode(picture(), "PNG")[:40]) == "invalid_image"


def test_a_corrupt_png_is_invalid() -> None:
    data = bytearray(encode(picture(), "PNG"))
    data[200:260] = bytes(60)

    assert rejection(bytes(data)) == "invalid_image"


def test_truncated_images_stay_refused_when_pillow_is_told_to_pad_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = encode(picture(), "PNG")

    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        process_image(data[: len(data) // 2], RULES)


def test_oversized_bytes_are_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode(picture(), "PNG")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the image was opened")

    monkeypatch.setattr(Image, "open", refuse)

    assert rejection(data, ImageRules(max_bytes=len(data) - 1)) == "image_too_large"


def test_a_decompression_bomb_is_refused_from_its_header(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = png_bomb(20_000, 20_000)  # 400 million pixels in about 50 KB
    assert len(bomb) < 100_000
    no_pixel_decoding(monkeypatch)
    pillow_limit = Image.MAX_IMAGE_PIXELS

    assert rejection(bomb) == "image_dimensions_too_large"
    assert Image.MAX_IMAGE_PIXELS == pillow_limit


def test_our_pixel_limit_applies_below_pillows(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = png_bomb(8_000, 8_000)  # 64 million: over our 40 million, under Pillow's warning
    no_pixel_decoding(monkeypatch)

    assert rejection(bomb) == "image_dimensions_too_large"


def test_pillows_warning_limit_applies_above_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = png_bomb(10_000, 10_000)  # 100 million: Pillow warns, it does not raise
    no_pixel_decoding(monkeypatch)
    generous = ImageRules(max_pixels=500_000_000)

    with pytest.warns(Image.DecompressionBombWarning):
        assert rejection(bomb, generous) == "image_dimensions_too_large"


def test_an_image_just_within_the_pixel_limit_is_accepted() -> None:
    result = process_image(encode(picture((100, 40)), "PNG"), ImageRules(max_pixels=4_000))

    assert (result.width, result.height) == (100, 40)


def test_rules_refuse_nonsense() -> None:
    with pytest.raises(ValueError):
        ImageRules(thumbnail_sizes=(0,))
    with pytest.raises(ValueError):
        ImageRules(allowed_formats=frozenset({"TIFF"}))


async def test_process_image_async_gives_the_same_result() -> None:
    data = encode(picture(), "WEBP")

    result = await process_image_async(data, RULES)

    assert result == process_image(data, RULES)


# ---------------------------------------------------------------------------- media store


def test_save_writes_the_original_and_thumbnails_under_the_product(tmp_path: Path) -> None:
    image = processed()
    key = f"mug-{uuid.uuid4().hex[:8]}"

    stored = MediaStore(tmp_path).save(key, image)

    assert stored.path == f"products/{key}/{image.content_hash}.jpg"
    assert stored.thumbnails == {
        size: f"products/{key}/{image.content_hash}_{size}.jpg" for size in (64, 256, 512)
    }
    assert (tmp_path / stored.path).read_bytes() == image.data
    for size, relative in stored.thumbnails.items():
        assert (tmp_path / relative).read_bytes() == image.thumbnails[size].data
    assert (stored.width, stored.height, stored.content_type) == (300, 200, "image/jpeg")
    assert not [p for p in files_under(tmp_path) if p.name.startswith(".")]


def test_saving_the_same_image_twice_is_harmless(tmp_path: Path) -> None:
    store, image = MediaStore(tmp_path), processed()

    first = store.save("mug", image)
    second = store.save("mug", image)

    assert first == second
    assert len(list((tmp_path / "products" / "mug").iterdir())) == 4


def test_delete_removes_the_files_and_the_empty_folder(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    stored = store.save("mug", processed())

    store.delete(stored)
    store.delete(stored)  # a second delete finds nothing and does not fail

    assert files_under(tmp_path) == [tmp_path / "products"]


def test_a_failed_write_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace, calls = os.replace, []

    def replace_then_fail(source: str, target: str) -> None:
        calls.append(target)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_replace(source, target)

    monkeypatch.setattr(images.os, "replace", replace_then_fail)

    with pytest.raises(OSError, match="No space"):
        MediaStore(tmp_path).save("mug", processed())

    assert len(calls) == 3
    assert files_under(tmp_path) == []


def test_a_failed_write_keeps_files_saved_earlier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MediaStore(tmp_path)
    earlier = store.save("mug", processed((300, 200)))
    before = files_under(tmp_path)

    def fail(source: str, target: str) -> None:
        raise OSError(5, "I/O error")

    monkeypatch.setattr(images.os, "replace", fail)
    with pytest.raises(OSError):
        store.save("mug", processed((200, 300)))

    assert files_under(tmp_path) == before
    assert (tmp_path / earlier.path).exists()


@pytest.mark.parametrize("key", ["../x", "..", ".", "", "a/b", "a\\b", "/etc", ".hidden", "a b"])
def test_unsafe_product_keys_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(InvalidProductKey):
        MediaStore(tmp_path).save(key, processed())

    assert files_under(tmp_path) == []


def test_delete_refuses_paths_outside_the_media_root(tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "media")
    outside = tmp_path / "keep.txt"
    outside.write_text("keep me")
    stored = store.save("mug", processed())
    tampered = images.StoredImage(**{**stored.__dict__, "path": "products/mug/../../../keep.txt"})

    elsewhere = images.StoredImage(**{**stored.__dict__, "path": "products/cap/x.jpg"})

    with pytest.raises(ValueError):
        store.delete(tampered)
    with pytest.raises(ValueError):
        store.delete(elsewhere)

    assert outside.exists()


async def test_save_async_writes_the_files(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)

    stored = await store.save_async("cap", processed())
    await store.delete_async(stored)

    assert files_under(tmp_path) == [tmp_path / "products"]


# ---------------------------------------------------------------------------- example images


def example_images() -> list[Path]:
    """The product images shipped with the example configuration."""
    return sorted(p for p in EXAMPLES.iterdir() if not p.name.startswith("."))


def test_the_examples_cover_every_format() -> None:
    suffixes = {p.suffix for p in example_images()}

    assert len(example_images()) >= 8
    assert {".jpg", ".png", ".webp"} <= suffixes


@pytest.mark.parametrize("path", example_images(), ids=lambda p: p.name)
def test_each_example_image_is_accepted(path: Path) -> None:
    data = path.read_bytes()

    result = process_image(data, RULES)

    assert len(data) < 40 * 1024
    assert set(result.thumbnails) == set(RULES.thumbnail_sizes)
    assert "exif" not in decode(result.data).info


def test_the_coffee_example_is_turned_upright_by_its_exif_tag() -> None:
    data = (EXAMPLES / "coffee.jpg").read_bytes()
    assert decode(data).getexif()[ORIENTATION] == 6
    stored_width, stored_height = decode(data).size

    result = process_image(data, RULES)

    assert (result.width, result.height) == (stored_height, stored_width)
    assert result.height > result.width
