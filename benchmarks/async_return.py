"""When does `mx.async_eval` hand the host back? (issue 13 item 3, the overlap's premise)

    python benchmarks/async_return.py [--ops 400] [--size 4096] [--repeats 3]

A step built ahead (docs/training.md, "Second" and "Fifth H100 session") can only hide the
host's graph building if `mx.async_eval` returns while the device still has most of the
queued graph to run. Both overlaps built so far hid nothing, explained by MLX's scheduler
capping the tasks in flight. This queues a chain of `--ops` matmul + tanh on `--size`
squared bfloat16 matrices and prints, per repeat, the seconds until `async_eval` returned
and until the device finished: a return share near 1.0 means the host was held to the end.
Run it under environment settings (e.g. `MLX_MAX_OPS_PER_BUFFER`, which on MLX-CUDA sets how
many operations go into one committed graph) to see whether any lets the host go early.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time


def chain(x, w, ops: int):
    import mlx.core as mx

    for _ in range(ops):
        x = mx.tanh(x @ w)
    return x


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=400)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    import mlx.core as mx

    dtype = mx.bfloat16 if mx.default_device() == mx.gpu else mx.float32
    x = mx.random.normal((args.size, args.size)).astype(dtype)
    w = (mx.random.normal((args.size, args.size)) / args.size**0.5).astype(dtype)
    mx.eval(x, w)
    mx.eval(chain(x, w, 4))  # kernels built before the clock
    rows = []
    for _ in range(args.repeats + 1):
        out = chain(x, w, args.ops)
        tic = time.perf_counter()
        mx.async_eval(out)
        returned = time.perf_counter() - tic
        mx.eval(out)
        done = time.perf_counter() - tic
        rows.append({"returned_s": returned, "done_s": done, "return_share": returned / done})
    rows = rows[1:]  # the first repeat warms the allocator
    knobs = {k: v for k, v in os.environ.items() if k.startswith("MLX_")}
    share = statistics.median(r["return_share"] for r in rows)
    print(f"{mx.default_device()}, {args.ops} x (matmul {args.size}^2 + tanh), env {knobs or '{}'}: "
          f"async_eval returned after {statistics.median(r['returned_s'] for r in rows):.4f} s of "
          f"{statistics.median(r['done_s'] for r in rows):.4f} s (share {share:.2f})")  # fmt: skip
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"args": vars(args), "env": knobs, "repeats": rows}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
