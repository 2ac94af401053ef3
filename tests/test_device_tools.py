"""tools/device: which locked pins travel to the GPU machine, and how they are packed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools" / "device"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"device_{name}", TOOLS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while the class is made
    spec.loader.exec_module(module)
    return module


pins = _load("pins")
pack = _load("pack")


def test_device_pins_keep_only_markers_true_on_linux_cpython_312() -> None:
    lines = [
        "numpy==2.3.5 ; python_full_version < '3.13'",
        "numpy==2.5.5 ; python_full_version >= '3.13'",
        "mlx-metal==0.32.4 ; sys_platform == 'darwin'",
        "PyYAML==6.0.3",
        "    # via snakemake",
    ]
    assert pins.device_pins(lines) == {"numpy": "2.3.5", "pyyaml": "6.0.3"}


def test_device_pins_reject_a_range() -> None:
    with pytest.raises(SystemExit, match="exact pin"):
        pins.device_pins(["numpy>=2"])


def test_classify_carries_missing_and_pinned_skips_listed() -> None:
    found = {"snakemake": "9.27.1", "pandas": "3.1.1", "scikit-learn": "1.9.1", "pulp": "3.3.2"}
    lines = pins.classify(found, {"pandas", "scikit-learn"})
    assert "carry snakemake==9.27.1" in lines
    assert "image pandas==3.1.1" in lines
    assert "carry scikit-learn==1.9.1" in lines  # alt-profanity-check pins it exactly
    assert any(line.startswith("skip pulp==3.3.2 #") for line in lines)


def test_pack_respects_each_folders_capacity(tmp_path: Path) -> None:
    mib = pack.MIB
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for name, size in {"a.whl": 9, "b.whl": 5, "c.whl": 4, "d.whl": 1}.items():
        (wheels / name).write_bytes(b"x" * size * mib)
    big = tmp_path / "model.whl"
    big.write_bytes(b"y" * (pack.CHUNK_MIB * mib + 3 * mib))
    todo = pack.items(wheels, [big])
    assert [i.name for i in todo if i.source == big] == ["model.whl.part-00", "model.whl.part-01"]
    caps = [6 * mib, 10 * mib, 12 * mib]
    folders = pack.pack(todo, caps)
    for index, content in enumerate(folders):
        assert sum(i.size for i in content) <= caps[min(index, len(caps) - 1)]
    assert sorted(i.name for f in folders for i in f) == sorted(i.name for i in todo)


def test_pack_refuses_an_item_larger_than_a_call(tmp_path: Path) -> None:
    (tmp_path / "huge.whl").write_bytes(b"x" * 3 * pack.MIB)
    with pytest.raises(SystemExit, match="fits no call"):
        pack.pack(pack.items(tmp_path, []), [2 * pack.MIB])
