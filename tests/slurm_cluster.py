"""A one-node SLURM cluster on localhost for the tests (recipe: docs/slurm-one-node.md).

Debian's slurm-wlm and munge, every file (key, sockets, slurm.conf, state, logs) in the
folder given, daemons on their own ports (16817/16818) so a system SLURM is untouched. There
is no slurmdbd: jobs are watched with squeue. Root is needed (slurmd runs jobs as their user
and munged's key must be root's); where that or a package is missing the tests skip with the
reason, and fail under CI, which installs them (.ci/run).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PORTS = (16817, 16818)  # slurmctld, slurmd: not SLURM's defaults
TOOLS = ("munged", "slurmctld", "slurmd", "sinfo", "squeue", "scancel", "sbatch", "srun")
STARTUP_S = 30  # the cluster came up in 1.0-1.2 s in the spike


@dataclass(frozen=True)
class Cluster:
    root: Path

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    def env(self) -> dict[str, str]:
        """What a client needs: the conf, and bin/ (the srun wrapper) first on PATH."""
        return {"SLURM_CONF": str(self.conf), "PATH": f"{self.root / 'bin'}:{os.environ['PATH']}"}

    def run(self, *command: str) -> str:
        done = subprocess.run(
            command, env={**os.environ, **self.env()}, capture_output=True, text=True, timeout=30
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}\n{self.logs()}")
        return done.stdout

    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld holds: finished ones stay MinJobAge (3600 s, the whole test)."""
        out = self.run("squeue", "--states=all", "--noheader", "--format=%i|%T|%k|%j")
        keys = ("id", "state", "comment", "name")
        return [dict(zip(keys, line.split("|"), strict=True)) for line in out.splitlines()]

    def logs(self) -> str:
        return "\n".join(
            f"--- {log}\n{log.read_text(errors='replace')[-2000:]}"
            for log in sorted((self.root / "log").glob("*"))
        )


def missing() -> str | None:
    """Why this machine cannot run the cluster, or None."""
    if os.geteuid() != 0:
        return "not root (slurmd and munged need root)"
    absent = [tool for tool in TOOLS if not shutil.which(tool)]
    if absent:
        return f"{', '.join(absent)} not found: apt-get install slurm-wlm munge"
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "snakemake-executor-plugin-slurm is not installed: bash workflow/setup.sh"
    for port in PORTS:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return f"port {port} is in use (another SLURM?)"
    return None


def require() -> None:
    """Skip without the cluster's prerequisites, but fail under CI (it installs them)."""
    reason = missing()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"one-node SLURM cluster: {reason} (CI must run it: .ci/run installs it)")
    pytest.skip(f"one-node SLURM cluster: {reason}")


def _conf(root: Path) -> str:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    settings = {
        "ClusterName": "mlxtest",
        "SlurmctldHost": "localhost",
        "SlurmUser": "root",
        "SlurmdUser": "root",
        "AuthType": "auth/munge",
        "CredType": "cred/munge",
        "AuthInfo": f"socket={root / 'msock' / 'munge.sock'}",
        "SlurmctldPort": PORTS[0],
        "SlurmdPort": PORTS[1],
        "StateSaveLocation": root / "state",
        "SlurmdSpoolDir": root / "spool",
        "SlurmctldPidFile": root / "run" / "slurmctld.pid",
        "SlurmdPidFile": root / "run" / "slurmd.pid",
        "SlurmctldLogFile": root / "log" / "slurmctld.log",
        "SlurmdLogFile": root / "log" / "slurmd.log",
        "MailProg": "/bin/true",
        "ProctrackType": "proctrack/linuxproc",  # no cgroups in a container
        "TaskPlugin": "task/none",
        "SelectType": "select/cons_tres",
        "SelectTypeParameters": "CR_Core_Memory",  # mem_mb requests are enforced at scheduling
        "MpiDefault": "none",
        "ReturnToService": 2,
        "MinJobAge": 3600,  # finished jobs stay visible to squeue (the plugin's status source)
        "AccountingStorageType": "accounting_storage/none",
        "JobAcctGatherType": "jobacct_gather/none",
        "JobCompType": "jobcomp/none",
        "SchedulerType": "sched/backfill",
        "SlurmctldTimeout": 30,
        "SlurmdTimeout": 30,
    }
    lines = [f"{key}={value}" for key, value in settings.items()]
    lines.append(
        f"NodeName=localhost NodeHostname={socket.gethostname().split('.')[0]} "
        f"NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={pages // 2**20} State=UNKNOWN"
    )
    lines.append("PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP")
    return "\n".join(lines) + "\n"


def _start(root: Path) -> list[subprocess.Popen]:
    for sub, mode in (("munge", 0o700), ("msock", 0o755), ("state", 0o755), ("spool", 0o755),
                      ("log", 0o755), ("run", 0o755), ("bin", 0o755)):  # fmt: skip
        (root / sub).mkdir(mode=mode)
        (root / sub).chmod(mode)  # past the umask
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    # --force: the socket's parents (pytest's 0700 tmp root) are not world-searchable
    subprocess.run(
        ["munged", "--force", f"--key-file={key}", f"--socket={root / 'msock' / 'munge.sock'}",
         f"--pid-file={root / 'munge' / 'munged.pid'}", f"--log-file={root / 'log' / 'munged.log'}",
         f"--seed-file={root / 'munge' / 'munged.seed'}"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    (root / "slurm.conf").write_text(_conf(root))
    # The jobstep plugin drops SLURM_CONF from the nested srun's environment (its source, 0.6.1);
    # a cluster with /etc/slurm/slurm.conf or configless slurmd needs no such wrapper.
    wrapper = root / "bin" / "srun"
    wrapper.write_text(
        f'#!/bin/sh\nexport SLURM_CONF={root / "slurm.conf"}\nexec {shutil.which("srun")} "$@"\n'
    )
    wrapper.chmod(0o755)
    env = {**os.environ, "SLURM_CONF": str(root / "slurm.conf")}
    daemons = []
    for command in (["slurmctld", "-D"], ["slurmd", "-D", "-N", "localhost"]):
        out = (root / "log" / f"{command[0]}.out").open("w")
        daemons.append(
            subprocess.Popen(
                [*command, "-f", str(root / "slurm.conf")],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        )
    return daemons


@contextlib.contextmanager
def one_node(root: Path) -> Iterator[Cluster]:
    """A running cluster whose every file is under `root`; on exit every job is cancelled,
    the daemons stopped and `root` removed."""
    cluster = Cluster(root)
    daemons: list[subprocess.Popen] = []
    try:
        daemons = _start(root)
        deadline = time.monotonic() + STARTUP_S
        while "idle" not in _sinfo(cluster):
            if time.monotonic() > deadline or any(d.poll() is not None for d in daemons):
                raise RuntimeError(f"the one-node SLURM cluster did not come up\n{cluster.logs()}")
            time.sleep(0.2)
        yield cluster
    finally:
        if daemons:
            # SIGTERM to a Snakemake does not cancel its SLURM jobs: cancel them all here
            subprocess.run(["scancel", "--full", "--user=root"], env={**os.environ, **cluster.env()},
                           capture_output=True, timeout=30)  # fmt: skip
        for daemon in reversed(daemons):
            daemon.terminate()
        for daemon in daemons:
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        if (root / "msock" / "munge.sock").exists():
            subprocess.run(["munged", f"--socket={root / 'msock' / 'munge.sock'}", "--stop"],
                           capture_output=True, timeout=30)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def _sinfo(cluster: Cluster) -> str:
    done = subprocess.run(
        ["sinfo", "--noheader", "--format=%t"],
        env={**os.environ, **cluster.env()},
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.stdout
