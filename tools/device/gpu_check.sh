#!/usr/bin/env bash
# Runs ON the lent GPU machine (the device tool), in the carried tree's root:
#   bash tools/device/gpu_check.sh SECONDS
# The last install call and every resume of the GPU-check study (docs/mistral-7b.md): installs
# what this call carries, then runs the DAG in stages (the evaluations first, then aggregate,
# figures and tables, then the rest: plan, report) within SECONDS, and leaves the Snakemake log
# and a tarball of every small result file (no weights) in $OUT for the trip back.
set -u
out=${OUT:?set OUT to the folder the device tool brings back}
end=$(($(date +%s) + ${1:-500}))
if compgen -G ".devwheels-*" >/dev/null || compgen -G ".mlxcuda-*" >/dev/null; then
  bash tools/device/install.sh >"$out/install.log" 2>&1 || { tail -30 "$out/install.log"; exit 1; }
  tail -3 "$out/install.log"
fi
# shellcheck source=/dev/null
source /tmp/device-env.sh
study=(--configfile configs/mistral-7b-gpu-check.yaml)
R=results/mistral-7b-gpu-check
# A call cut by its time limit leaves Snakemake's lock and an incomplete job behind: measured
# on 2026-12-07, the resume failed on both until --unlock and --rerun-incomplete.
python3 -m snakemake --unlock --cores 1 "${study[@]}" >/dev/null 2>&1
for until in "evaluate" "tables figures" ""; do
  left=$((end - $(date +%s)))
  [ $left -gt 20 ] || break
  # shellcheck disable=SC2086  # --until takes the stage's rule names as separate words
  timeout $left python3 -m snakemake ${until:+--until $until} --cores 1 --scheduler greedy \
    --keep-going --rerun-incomplete "${study[@]}" >>"$out/snakemake.log" 2>&1
  echo "stage [${until:-all}] exit $? at $(date +%T)"
done
grep -hE "Error in rule|Finished jobid" "$out/snakemake.log" | tail -30
python3 -m mlx_instruct.analysis timing --results $R 2>&1 | tail -30
find $R -type f -size -8M -not -path "*/models/*" -not -name "*.safetensors" >/tmp/small.txt
tar czf "$out/results.tgz" -T /tmp/small.txt && ls -la "$out/results.tgz"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
