"""The images the compose file names, built here: no registry is needed.

The base is Debian bookworm from `debootstrap --variant=minbase`, from the mirror apt uses, kept
as a tarball under CACHE and imported when the daemon lacks it. The stand-ins
(deploy/ci-images/) are built FROM it and tagged as compose's *_IMAGE variables name them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from deploycheck.host import apt_install, run

ROOT = Path(__file__).resolve().parent.parent
CI_IMAGES = ROOT / "deploy" / "ci-images"
CACHE = Path("/var/cache/store-deploycheck")
BASE_IMAGE = "store-ci/debian:bookworm"
EXTRA_CA = Path("/usr/local/share/ca-certificates")

# compose variable -> (stand-in folder, tag)
STAND_INS = {
    "PYTHON_IMAGE": ("python", "store-ci/python:3.11"),
    "POSTGRES_IMAGE": ("postgres", "store-ci/postgres:16"),
    "REDIS_IMAGE": ("redis", "store-ci/redis:7"),
    "RABBITMQ_IMAGE": ("rabbitmq", "store-ci/rabbitmq:3.13"),
    "MAILCATCHER_IMAGE": ("mailcatcher", "store-ci/mailcatcher:1"),
}


def image_exists(name: str) -> bool:
    """True when the daemon has an image of that name."""
    return run("docker", "image", "inspect", name, check=False).returncode == 0


def apt_mirror() -> str:
    """The Debian mirror apt is configured with (deb822 or one-line sources)."""
    sources = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    for path in sources:
        text = path.read_text(errors="replace") if path.is_file() else ""
        match = re.search(r"^URIs:\s*(\S+/debian)\s*$", text, re.M) or re.search(
            r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)\s+bookworm\b", text, re.M
        )
        if match:
            return match.group(1)
    return "http://deb.debian.org/debian"


def base_image() -> str:
    """Import the debootstrapped base, debootstrapping it first when it is not cached."""
    if image_exists(BASE_IMAGE):
        return "present"
    tarball = CACHE / "debian-bookworm-minbase.tar"
    made = "cached"
    if not tarball.exists():
        made = "debootstrapped"
        if shutil.which("debootstrap") is None:
            apt_install("debootstrap")
        CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=CACHE) as rootfs:
            run("debootstrap", "--variant=minbase", "bookworm", rootfs, apt_mirror())
            partial = tarball.with_suffix(".partial")
            run("tar", "-C", rootfs, "-cf", str(partial), ".")
            partial.rename(tarball)
    with tarball.open("rb") as source:
        subprocess.run(
            ["docker", "import", "-", BASE_IMAGE], stdin=source, check=True, capture_output=True
        )
    return made


def build_stand_ins() -> dict[str, str]:
    """Build each stand-in FROM the base; returns compose's image variables for them."""
    images = {}
    for variable, (folder, tag) in STAND_INS.items():
        with tempfile.TemporaryDirectory() as context:
            shutil.copytree(CI_IMAGES / folder, context, dirs_exist_ok=True)
            if folder == "python":
                # The host's extra CA certificates (re-signed outgoing TLS): a CI-only setting.
                extra = sorted(EXTRA_CA.glob("*.crt")) if EXTRA_CA.is_dir() else []
                Path(context, "extra-ca.crt").write_text(
                    "".join(path.read_text() for path in extra)
                )
            run("docker", "build", "-q", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "-t", tag,
                context)  # fmt: skip
        images[variable] = tag
    return images
