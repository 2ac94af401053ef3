"""Pack the device payload into git-ignored folders that each fit one `run` call.

A call carries at most 64 MiB, working tree included. MLX's CUDA wheel already travels in
two folders of its own (.mlxcuda-a, .mlxcuda-b: ../shared/tools/prepare-mlx-cuda-carry.sh),
so the first two of our folders are sized to ride along with those and the rest fill whole
calls. The payload: the project's wheels (installed on the device with pip --target) and
cache files too large for one call (the MiniLM wheel the semantic suite reads from the
project's download cache), cut into CHUNK_MIB pieces that install.sh joins and checks
against the sha256 in each folder's cache-files.txt.

    python tools/device/pack.py --wheels DIR [--cache-file PATH ...] [--image-pins FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
CALL_LIMIT = 64 * MIB  # what one `run` call carries, working tree included
MARGIN = 2 * MIB  # for files the tree gains before the call
CHUNK_MIB = 8  # small pieces pack the space left beside the MLX folders
RIDERS = (".mlxcuda-a", ".mlxcuda-b")  # folders whose calls our first folders share


@dataclass
class Item:
    """One file to carry: a wheel, or a piece of a cache file (source[offset:offset+size])."""

    name: str
    source: Path
    size: int
    offset: int = 0


def folder_bytes(path: Path) -> int:
    """Bytes of the files under path (0 when it is absent)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def tree_bytes() -> int:
    """Bytes of what every call sends: tracked and untracked-not-ignored files."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    return sum(Path(p.decode()).stat().st_size for p in listed if p and Path(p.decode()).is_file())


def items(wheels: Path, cache_files: list[Path]) -> list[Item]:
    """Every wheel whole; every cache file in CHUNK_MIB pieces named <file>.part-NN."""
    out = [Item(w.name, w, w.stat().st_size) for w in sorted(wheels.glob("*.whl"))]
    for path in cache_files:
        size, step = path.stat().st_size, CHUNK_MIB * MIB
        for index, offset in enumerate(range(0, size, step)):
            out.append(
                Item(f"{path.name}.part-{index:02d}", path, min(step, size - offset), offset)
            )
    return out


def pack(todo: list[Item], caps: list[int]) -> list[list[Item]]:
    """First fit, largest first, into folders of the given capacities; new folders take
    caps[-1]. Raises when one item exceeds a whole call's capacity."""
    folders: list[list[Item]] = []
    room: list[int] = []
    for item in sorted(todo, key=lambda i: -i.size):
        index = next((k for k, left in enumerate(room) if item.size <= left), None)
        while index is None:
            cap = caps[len(folders)] if len(folders) < len(caps) else caps[-1]
            if item.size > caps[-1]:
                raise SystemExit(f"pack.py: {item.name} ({item.size // MIB} MiB) fits no call")
            folders.append([])
            room.append(cap)
            index = len(folders) - 1 if item.size <= cap else None
        folders[index].append(item)
        room[index] -= item.size
    return folders


def write_folder(path: Path, content: list[Item], manifest: str, wheels: str) -> None:
    """Copy the folder's wheels and cut its pieces; every folder holds the manifests (the
    cache files' sha256 and piece counts, and every folder's wheels), so that install.sh
    knows when all have come."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    for item in content:
        with open(item.source, "rb") as src, open(path / item.name, "wb") as dst:
            src.seek(item.offset)
            dst.write(src.read(item.size))
    (path / "cache-files.txt").write_text(manifest)
    (path / "wheels.txt").write_text(wheels)


def main() -> None:
    """Pack, write .devwheels-N, print each folder's size and the calls that carry them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheels", type=Path, required=True)
    parser.add_argument("--cache-file", type=Path, action="append", default=[])
    parser.add_argument("--image-pins", type=Path)
    args = parser.parse_args()
    whole = CALL_LIMIT - MARGIN - tree_bytes()
    caps = [whole - folder_bytes(Path(r)) for r in RIDERS if Path(r).is_dir()] + [whole]
    folders = pack(items(args.wheels, args.cache_file), [c for c in caps if c > MIB])
    manifest = "".join(
        f"{p.name} {hashlib.sha256(p.read_bytes()).hexdigest()} {-(-p.stat().st_size // (CHUNK_MIB * MIB))}\n"
        for p in args.cache_file
    )
    wheels = "".join(f"{w.name}\n" for w in sorted(args.wheels.glob("*.whl")))
    for old in Path(".").glob(".devwheels-*"):
        shutil.rmtree(old)
    riders = [r for r in RIDERS if Path(r).is_dir() and whole - folder_bytes(Path(r)) > MIB]
    print(f"working tree: {tree_bytes() / MIB:.1f} MiB; a call carries at most 64 MiB")
    for index, content in enumerate(folders):
        path = Path(f".devwheels-{index + 1}")
        write_folder(path, content, manifest, wheels)
        if index == 0 and args.image_pins:
            shutil.copy(args.image_pins, path / "image-pins.txt")
        carry = ([riders[index]] if index < len(riders) else []) + [path.name]
        size = sum(i.size for i in content) / MIB
        print(
            f"{path.name}: {len(content)} files, {size:.1f} MiB; call {index + 1}: carry {json.dumps(carry)}"
        )
    for index in range(len(folders), len(riders)):
        print(f"call {index + 1}: carry {json.dumps([riders[index]])}")


if __name__ == "__main__":
    main()
