"""deploy loadtest: a real mlx_lm server on a tiny random Mistral, and the client's bounds."""

from __future__ import annotations

import json
import math
import socket
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlx_instruct.deploy import loadtest, server
from mlx_instruct.deploy.server import Outcome
from mlx_instruct.io import read_jsonl


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlx_instruct.sources import prepare_model

    return prepare_model("random://mistral-tiny", tmp_path_factory.mktemp("served") / "model")


def _values(rows: list[dict], bench: str, item: str | None = None) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for r in rows:
        if r["benchmark"] == bench and (item is None or r["item_id"] == item):
            out.setdefault(r["metric"], []).append(r["value"])
    return out


@pytest.mark.slow
def test_served_model_under_load(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "loadtest.jsonl"
    argv = ["--model", str(model_dir), "--concurrency", "1", "2", "--requests", "4"]
    argv += ["--max-tokens", "8", "--timeout", "60", "--max-context", "128", "--out", str(out)]
    assert loadtest.main(argv) == 0
    rows = read_jsonl(out)
    assert all(r["suite"] == "loadtest" for r in rows)
    for level in ("c1", "c2"):
        requests = _values(rows, level)
        assert len(requests["latency_s"]) == 4
        assert requests["error"] == [0.0] * 4
        assert all(
            0 < t <= lat for t, lat in zip(requests["ttft_s"], requests["latency_s"], strict=True)
        )
        assert all(1 <= n <= 8 for n in requests["completion_tokens"])
        stats = {m: v[0] for m, v in _values(rows, level, "all").items()}
        assert stats["error_rate"] == 0.0
        for name in ("latency", "ttft"):
            p50, p95, p99 = (stats[f"{name}_p{q}_s"] for q in (50, 95, 99))
            assert 0 < p50 <= p95 <= p99
        expected = sum(requests["completion_tokens"]) / stats["wall_s"]
        assert stats["throughput_tokens_per_s"] == pytest.approx(expected)
    for probe in ("malformed_json", "missing_messages"):
        values = _values(rows, probe, "probe")
        assert 400 <= values["http_status"][0] < 500
        assert values["server_alive_after"] == [1.0]
    context = _values(rows, "over_context", "probe")
    assert context["prompt_tokens"][0] > 128 or context["http_status"][0] != 200
    assert _values(rows, "overload", "probe")["server_alive_after"] == [1.0]
    summary = json.loads(out.with_suffix(".json").read_text())
    assert "Request did not contain messages" in summary["probes"]["missing_messages"]["body"]
    assert summary["probes"]["overload"]["concurrency"] == 8  # 4 x the top level
    port = summary["port"]
    with pytest.raises(ConnectionRefusedError):  # the server is gone
        socket.create_connection((server.HOST, port), timeout=5).close()
    server.check_port(port)  # and its port is free again for the next run


def test_port_in_use_is_refused_before_starting(model_dir: Path, tmp_path: Path, capsys) -> None:
    with socket.socket() as busy:
        busy.bind((server.HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = tmp_path / "loadtest.jsonl"
        start = time.perf_counter()
        argv = ["--model", str(model_dir), "--port", str(port), "--out", str(out)]
        assert loadtest.main(argv) == 2
        assert time.perf_counter() - start < 5  # no server was started and waited for
    assert f"--port {port}: 127.0.0.1:{port} is in use" in capsys.readouterr().err
    assert not out.exists()


def test_a_server_whose_model_fails_is_reported_with_its_log(tmp_path: Path) -> None:
    """mlx_lm's server keeps its HTTP side up when the model fails to load (its generation
    thread dies, /health turns 503): that is an error at once, with the traceback."""
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "no-such-architecture"}))
    start = time.perf_counter()
    with (
        pytest.raises(server.ServerError, match="generation thread died") as info,
        server.serve(broken, None, 0, 4, startup_timeout=120),
    ):
        pass
    assert time.perf_counter() - start < 60
    assert "FileNotFoundError: No safetensors found" in str(info.value)


def test_request_to_a_silent_server_stops_at_its_deadline() -> None:
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind((server.HOST, 0))
        silent.listen()
        port = silent.getsockname()[1]
        start = time.perf_counter()
        outcome = server.stream_chat(port, "hi", 4, timeout=0.5)
        elapsed = time.perf_counter() - start
    assert outcome.status == 0 and not outcome.ok and "timed out" in outcome.error
    assert 0.4 < elapsed < 3.0


def test_cli_checks_flags_and_dirs(model_dir: Path, tmp_path: Path) -> None:
    out = ["--out", str(tmp_path / "x.jsonl")]
    model = ["--model", str(model_dir)]
    for bad in (
        ["--model", str(tmp_path), *out],
        [*model, "--adapter-path", str(tmp_path), *out],
        [*model, "--concurrency", "0", *out],
        [*model, "--timeout", "0", *out],
        [*model, "--port", "70000", *out],
        [*model, "--out", str(tmp_path / "x.json")],
    ):
        with pytest.raises(SystemExit):
            loadtest.parse_args(bad)
    args = loadtest.parse_args([*model, *out])
    assert args.max_context == 32768  # the model's max_position_embeddings


outcomes = st.lists(
    st.builds(
        Outcome,
        status=st.sampled_from([200, 200, 200, 0, 400, 500]),
        latency_s=st.floats(0.001, 100.0),
        ttft_s=st.one_of(st.just(math.nan), st.floats(0.0, 100.0)),
        completion_tokens=st.integers(0, 512),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=100, deadline=None)
@given(results=outcomes, wall=st.floats(0.01, 1000.0))
def test_level_stats_are_consistent(results: list[Outcome], wall: float) -> None:
    stats = loadtest.level_stats(results, wall)
    ok = [o for o in results if o.status == 200]
    assert stats["error_rate"] == pytest.approx(1 - len(ok) / len(results))
    assert stats["throughput_tokens_per_s"] == pytest.approx(
        sum(o.completion_tokens for o in ok) / wall
    )
    for name in ("latency", "ttft"):
        p50, p95, p99 = (stats[f"{name}_p{q}_s"] for q in (50, 95, 99))
        if not math.isnan(p50):
            assert p50 <= p95 <= p99
    if ok:
        assert (
            min(o.latency_s for o in ok) <= stats["latency_p50_s"] <= max(o.latency_s for o in ok)
        )
    else:
        assert math.isnan(stats["latency_p50_s"])
    rows = loadtest.level_rows(3, results, stats)
    assert len(rows) == 4 * len(results) + len(stats)
    assert {r["benchmark"] for r in rows} == {"c3"}


@pytest.mark.slow
def test_sigterm_mid_load_stops_the_server(model_dir: Path, tmp_path: Path) -> None:
    """Snakemake cancels a job with SIGTERM: the CLI must take its server down with it."""
    import os
    import signal
    import subprocess
    import sys

    port = server.free_port()
    out = tmp_path / "loadtest.jsonl"
    command = [sys.executable, "-m", "mlx_instruct.deploy", "loadtest", "--model", str(model_dir)]
    command += ["--port", str(port), "--requests", "500", "--max-tokens", "64", "--out", str(out)]
    process = subprocess.Popen(command, stderr=subprocess.PIPE)
    try:
        deadline = time.perf_counter() + 120
        while server.health(port, 2.0) != 200:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.perf_counter() < deadline, "the server never came up"
            time.sleep(0.2)
        time.sleep(2.0)  # into the load
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.HOST, port), timeout=5).close()
    assert not out.exists()
