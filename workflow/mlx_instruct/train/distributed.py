"""Data-parallel training over local processes (`training.processes`), for CPUs.

Why: MLX's CPU backend runs the element-wise half of a training step on one thread, so one
training process keeps about one core busy however many the machine has (measured: ~100%
CPU on the 2-core default study). N processes, each with one BLAS thread, each take 1/N of
every micro-batch's rows; after the local backward pass the summed gradients, the loss sum
and the token counts are all-summed over MLX's ring backend (TCP on 127.0.0.1; 40 MB in
~72 ms here), so every process applies the same update to identical weights. The
token-weighted loss of the whole batch is unchanged; rank 0 alone writes logs,
checkpoints, samples and outputs.

`launch` starts the ranks (the same command line, with MLX_RANK / MLX_HOSTFILE set, as
`mlx.launch --backend ring` does) and stops the others as soon as one fails, so a crashed
rank never leaves its peer waiting in an all-reduce. Why not `mlx.launch` itself (MLX 0.32):
it returns no rank's exit status (the CLI's 2 and 3 would be lost), listens on fixed
starting ports (Snakemake runs several trainings at once; `launch` takes free ones) and
passes every rank's stdout through (rank 0 alone reports here).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
from dataclasses import fields, replace
from typing import Any

import mlx.core as mx
from mlx.utils import tree_map

RANK_ENV = "MLX_RANK"
WORKER_ENV = "MLX_INSTRUCT_RANKS"  # set in every rank: the number of ranks
POLL_S = 0.5


def current_group() -> Any | None:
    """The ring group when this process is one rank of a launched run, else None."""
    if int(os.environ.get(WORKER_ENV, "1")) < 2:
        return None
    group = mx.distributed.init(strict=True, backend="ring")
    return group if group.size() > 1 else None


def rank_of(group: Any | None) -> int:
    return group.rank() if group is not None else 0


def shard(batch: Any, group: Any | None) -> Any:
    """This rank's rows of a micro-batch (rows rank, rank + N, ...)."""
    if group is None:
        return batch
    rows = slice(group.rank(), None, group.size())
    return replace(batch, **{f.name: getattr(batch, f.name)[rows] for f in fields(batch)})


def all_sum(tree: Any, group: Any | None) -> Any:
    """The element-wise sum of `tree` over the ranks.

    A sum, not `mlx.nn.average_gradients`' mean: the update divides the summed gradients by
    the whole batch's response-token count (a token-weighted mean), and a mean times N is
    not exact in floating point for N other than a power of two.
    """
    if group is None:
        return tree
    return tree_map(lambda x: mx.distributed.all_sum(x, group=group), tree)


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def launch(command: list[str], processes: int) -> int:
    """Run `command` as `processes` ring ranks on this machine; 0, or the exit code of the
    first rank to fail (the others are then stopped). Ranks > 0 keep stderr (errors) and
    drop stdout (rank 0 reports)."""
    ports = _free_ports(processes)
    hosts = [[f"127.0.0.1:{port}"] for port in ports]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(hosts, handle)
        hostfile = handle.name
    procs: list[subprocess.Popen] = []
    try:
        for rank in range(processes):
            env = {
                **os.environ,
                RANK_ENV: str(rank),
                "MLX_HOSTFILE": hostfile,
                WORKER_ENV: str(processes),
                "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1"),
            }
            stdout = None if rank == 0 else subprocess.DEVNULL
            procs.append(subprocess.Popen(command, env=env, stdout=stdout))
        while True:
            codes = [p.poll() for p in procs]
            failed = [c for c in codes if c not in (None, 0)]
            if failed or all(c is not None for c in codes):
                break
            time.sleep(POLL_S)
        for p in procs:  # a rank that failed first: its peers would wait in an all-reduce
            if p.poll() is None:
                p.kill()
            p.wait()
        return failed[0] if failed else 0
    except KeyboardInterrupt:
        for p in procs:
            p.kill()
        raise
    finally:
        os.unlink(hostfile)
