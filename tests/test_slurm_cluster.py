"""The smoke study through `--profile profiles/slurm` on a real one-node SLURM cluster.

A reduced smoke study (the base and one LoRA arm, the deterministic suites) runs once on this
machine and once as SLURM jobs in the same standalone copy (tests/test_smoke_study.py's
helpers). While the SLURM run trains, its train job is `scancel`ed; the profile's `retries`
submits it again and the run completes. Both runs must give the same evaluation rows: training
and evaluation are deterministic on the CPU, wherever the job ran.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from pathlib import Path

import pytest
import slurm_cluster
import yaml
from test_smoke_study import ROOT, _failure, clone_of, snakemake, standalone_copy

pytestmark = pytest.mark.slow
ARMS = {"base": {"method": "none"}, "lora-r4": {"rank": 4}}
SUITES = ("adherence", "safety")  # no timings (efficiency): rows comparable across runs


def reduced_study(path: Path) -> Path:
    """configs/smoke.yaml with two arms and two suites: every rule kind a SLURM job runs
    (prepare, train, evaluate) at a fraction of the smoke study's time."""
    study = yaml.safe_load((ROOT / "configs/smoke.yaml").read_text())
    study["study"] = "smoke-slurm"
    study["experiments"] = ARMS
    study["evaluation"]["suites"] = {s: study["evaluation"]["suites"][s] for s in SUITES}
    study["report"] = {"plan": False}
    study.pop("deployment", None)  # it names arms left out here
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def targets(results_dir: Path) -> list[str]:
    evals = results_dir / "smoke-slurm" / "evals"
    return [str(evals / arm / "s0" / f"{suite}.jsonl") for arm in ARMS for suite in SUITES]


def rows(results_dir: Path) -> dict[str, list[dict]]:
    return {
        target: [json.loads(line) for line in Path(target).read_text().splitlines()]
        for target in targets(results_dir)
    }


class Canceller(threading.Thread):
    """scancel the train job (the comment the plugin gives it) once its command has started
    writing the rule's log: mid-run, not while SLURM starts it."""

    def __init__(self, cluster: slurm_cluster.Cluster, log: Path, timeout_s: float = 900) -> None:
        super().__init__(daemon=True)
        self.cluster, self.log, self.timeout_s = cluster, log, timeout_s
        self.cancelled: str | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not self.stop.is_set() and time.monotonic() < deadline:
            started = self.log.is_file() and self.log.stat().st_size > 0
            for job in self.cluster.jobs() if started else []:
                if job["state"] == "RUNNING" and job["comment"].startswith("rule_train"):
                    self.cluster.run("scancel", job["id"])
                    self.cancelled = job["id"]
                    return
            time.sleep(0.5)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    slurm_cluster.require()
    with slurm_cluster.one_node(tmp_path_factory.mktemp("slurm")) as running:
        yield running


@pytest.fixture(scope="module")
def runs(cluster: slurm_cluster.Cluster, tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("slurm-study")
    configfile = reduced_study(base / "smoke-slurm.yaml")
    clone = standalone_copy(base / "alone")
    local, remote = base / "local", base / "slurm"
    assert clone_of(local) == clone_of(remote) == clone
    # The local run beside the SLURM run: the latter mostly waits on SLURM's polls.
    local_run: dict = {}

    def run_locally() -> None:
        started = time.monotonic()
        # a flag first: --config takes every later word as another key=value
        profile = str(clone / "profiles/local")
        local_run["result"] = snakemake(configfile, local, "--profile", profile, *targets(local))
        local_run["s"] = time.monotonic() - started

    beside = threading.Thread(target=run_locally)
    canceller = Canceller(cluster, remote / "smoke-slurm" / "logs" / "train" / "lora-r4-s0.log")
    with pytest.MonkeyPatch.context() as patch:
        beside.start()  # SLURM_CONF and the srun wrapper mean nothing to a local run
        for key, value in cluster.env().items():
            patch.setenv(key, value)
        canceller.start()
        started = time.monotonic()
        profile = str(clone / "profiles/slurm")
        result = snakemake(configfile, remote, "--profile", profile, *targets(remote))
        slurm_s = time.monotonic() - started
        canceller.stop.set()
        beside.join()
    assert local_run["result"].returncode == 0, _failure(local_run["result"], local)
    assert result.returncode == 0, _failure(result, remote) + cluster.logs()
    timing = {"local_s": round(local_run["s"], 1), "slurm_s": round(slurm_s, 1)}
    jobs = cluster.run("squeue", "--states=all", "--format=%i %T %k %V %S %e %l %m")
    print(f"reduced smoke study, run side by side: {timing}\n{jobs}")
    return {
        "local": local,
        "slurm": remote,
        "result": result,
        "cancelled": canceller.cancelled,
        "jobs": cluster.jobs(),
        "clone": clone,
    }


def test_every_job_ran_as_a_slurm_job_with_its_log(runs: dict) -> None:
    log = runs["result"].stdout + runs["result"].stderr
    submitted = re.findall(r"submitted with SLURM jobid '?(\d+)'?", log)
    states = {job["id"]: job["state"] for job in runs["jobs"]}
    rules = {job["comment"].split("_wildcards_")[0] for job in runs["jobs"]}
    assert {"rule_prepare_model", "rule_prepare_data", "rule_train", "rule_evaluate"} <= rules
    assert set(submitted) == set(states), (submitted, states)
    kept = runs["clone"] / "results" / "slurm-logs"
    for job_id, state in states.items():
        if state == "COMPLETED":
            assert list(kept.rglob(f"{job_id}.log")), f"no SLURM log of job {job_id} in {kept}"


def test_a_cancelled_job_is_submitted_again_and_the_study_completes(runs: dict) -> None:
    cancelled = runs["cancelled"]
    assert cancelled, "no train job was seen RUNNING to cancel"
    by_id = {job["id"]: job for job in runs["jobs"]}
    assert by_id[cancelled]["state"] == "CANCELLED"
    again = [
        job
        for job in runs["jobs"]
        if job["comment"] == by_id[cancelled]["comment"] and job["id"] != cancelled
    ]
    assert [job["state"] for job in again] == ["COMPLETED"], runs["jobs"]
    log = runs["result"].stdout + runs["result"].stderr
    assert f"SLURM-job '{cancelled}' failed" in log and "Trying to restart job" in log


def trained(results_dir: Path) -> dict:
    """What the LoRA run made: its data, losses and adapter weights (bit for bit)."""
    run = results_dir / "smoke-slurm" / "runs" / "lora-r4" / "s0"
    report = json.loads((run / "run.json").read_text())
    weights = hashlib.sha256((run / "adapters.safetensors").read_bytes()).hexdigest()
    keys = ("best_val_loss", "final_train_loss", "steps_done")
    return {"data": report["data"]["files_sha256"], "adapters": weights} | {
        k: report[k] for k in keys
    }


def test_results_equal_the_local_run(runs: dict) -> None:
    assert trained(runs["slurm"]) == trained(runs["local"])
    local, remote = rows(runs["local"]), rows(runs["slurm"])
    assert all(local.values())
    for (target, expected), got in zip(local.items(), remote.values(), strict=True):
        assert got == expected, f"{Path(target).relative_to(runs['local'])} differs"
