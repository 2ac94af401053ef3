"""The smoke study through `--profile profiles/slurm` on a real one-node SLURM cluster.

A reduced smoke study (the base and one LoRA arm, the deterministic suites) runs as SLURM jobs
in a standalone copy (tests/test_smoke_study.py's helpers). While it trains, its train job is
`scancel`ed; the profile's `retries` submits it again and the run completes. Its runs must
equal the same runs of the smoke study's own local run (conftest.py's session fixture `smoke`,
run beside the SLURM run when no earlier test needed it): training and evaluation are
deterministic on the CPU, wherever the job ran.
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
# The first status check 1 s after a submission, not the profile's 5: each check that finds
# nothing finished waits 10 s more, so a job of ~50 s is seen at 64 s instead of 80 s.
POLL_SOONER = ("--slurm-init-seconds-before-status-checks", "1")


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


def evaluations() -> list[Path]:
    """The compared files, relative to a study's results."""
    return [Path("evals") / arm / "s0" / f"{suite}.jsonl" for arm in ARMS for suite in SUITES]


def rows(study: Path) -> dict[Path, list[dict]]:
    return {
        name: [json.loads(line) for line in (study / name).read_text().splitlines()]
        for name in evaluations()
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
def runs(
    cluster: slurm_cluster.Cluster,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> dict:
    base = tmp_path_factory.mktemp("slurm-study")
    configfile = reduced_study(base / "smoke-slurm.yaml")
    clone = standalone_copy(base / "alone")
    remote = base / "slurm"
    assert clone_of(remote) == clone
    study = remote / "smoke-slurm"
    slurm_run: dict = {}

    def run_on_slurm() -> None:
        started = time.monotonic()
        # a flag first: --config takes every later word as another key=value
        profile = str(clone / "profiles/slurm")
        slurm_run["result"] = snakemake(
            configfile, remote, "--profile", profile, *POLL_SOONER,
            *(str(study / name) for name in evaluations()),
        )  # fmt: skip
        slurm_run["s"] = time.monotonic() - started

    beside = threading.Thread(target=run_on_slurm, daemon=True)
    canceller = Canceller(cluster, study / "logs" / "train" / "lora-r4-s0.log")
    with pytest.MonkeyPatch.context() as patch:
        # SLURM_CONF and the srun wrapper (first on PATH) mean nothing to a local run
        for key, value in cluster.env().items():
            patch.setenv(key, value)
        canceller.start()
        beside.start()
        # The SLURM run mostly waits on SLURM's polls and job start-ups: the smoke study, if
        # no earlier test ran it, runs meanwhile.
        started = time.monotonic()
        smoke = request.getfixturevalue("smoke")
        smoke_s = time.monotonic() - started
        beside.join()
        canceller.stop.set()
    result = slurm_run["result"]
    assert result.returncode == 0, _failure(result, remote) + cluster.logs()
    timing = {"slurm_s": round(slurm_run["s"], 1), "smoke_beside_s": round(smoke_s, 1)}
    jobs = cluster.run("squeue", "--states=all", "--format=%i %T %k %V %S %e %l %m")
    print(f"reduced smoke study on SLURM: {timing}\n{jobs}")
    return {
        "local": smoke[1],
        "slurm": study,
        "result": result,
        "cancelled": canceller.cancelled,
        "jobs": cluster.jobs(),
        "clone": clone,
    }


def test_every_job_ran_as_a_slurm_job_with_its_log(runs: dict) -> None:
    log = runs["result"].stdout + runs["result"].stderr
    submitted = re.findall(r"submitted with SLURM jobid '?(\d+)'?", log)
    states = {job["id"]: job["state"] for job in runs["jobs"]}
    assert set(submitted) == set(states), (submitted, states)
    kept = runs["clone"] / "results" / "slurm-logs"
    ran: dict[str, list[str]] = {}  # rule -> the completed SLURM jobs whose log runs it
    for job_id, state in states.items():
        if state == "COMPLETED":
            job_log = list(kept.rglob(f"{job_id}.log"))
            assert job_log, f"no SLURM log of job {job_id} in {kept}"
            for rule in set(re.findall(r"^rule (\w+):", job_log[0].read_text(), re.M)):
                ran.setdefault(rule, []).append(job_id)
    assert sorted(ran) == ["evaluate", "prepare_data", "prepare_model", "train"], ran
    # the profile's group: both prepare rules in one SLURM job
    assert ran["prepare_model"] == ran["prepare_data"], ran


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


def trained(study: Path) -> dict:
    """What the LoRA run made: its data, losses and adapter weights (bit for bit)."""
    run = study / "runs" / "lora-r4" / "s0"
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
    for name, expected in local.items():
        assert remote[name] == expected, f"{name} differs"
