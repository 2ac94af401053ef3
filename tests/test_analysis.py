"""The analysis package: bootstrap intervals, tidy assembly, counts, weight geometry."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlx_instruct.analysis import lora_geometry as geo
from mlx_instruct.analysis import metrics, stats, summary, tidy, timing
from mlx_instruct.analysis.stats import Bootstrap

# --- bootstrap ---------------------------------------------------------------------------


def test_bca_interval_covers_the_true_mean_at_about_the_nominal_rate() -> None:
    rng = np.random.default_rng(7)
    boot = Bootstrap(resamples=400, confidence=0.9, seed=0)
    covered = 0
    reps = 100
    for _ in range(reps):
        sample = rng.exponential(scale=2.0, size=40)  # skewed: where BCa earns its keep
        ci = stats.mean_ci(sample, boot)
        assert ci.method == "BCa"
        covered += ci.low <= 2.0 <= ci.high
    assert 0.78 <= covered / reps <= 0.98, covered


def test_paired_difference_of_identical_inputs_is_zero_width() -> None:
    x = np.random.default_rng(0).normal(size=50)
    ci = stats.paired_diff_ci(x, x.copy())
    assert (ci.estimate, ci.low, ci.high) == (0.0, 0.0, 0.0)
    assert ci.method == "degenerate"
    assert not ci.excludes_zero


def test_bca_is_deterministic_for_a_seed_and_varies_across_seeds() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(0.3, 1, 60), rng.normal(0, 1, 60)
    first = stats.paired_diff_ci(x, y, Bootstrap(500, 0.95, 3))
    again = stats.paired_diff_ci(x, y, Bootstrap(500, 0.95, 3))
    other = stats.paired_diff_ci(x, y, Bootstrap(500, 0.95, 4))
    assert first == again
    assert (first.low, first.high) != (other.low, other.high)
    assert first.low < first.estimate < first.high


def test_degenerate_inputs_are_named_not_crashed() -> None:
    assert stats.mean_ci([1.0, 1.0, 1.0]).method == "degenerate"
    assert stats.mean_ci([3.0]).method == "n<2"
    assert np.isnan(stats.mean_ci([]).estimate)
    binary = stats.mean_ci([0.0] * 30 + [1.0])  # BCa may fail here; some interval must come back
    assert binary.method in ("BCa", "percentile") and binary.low <= binary.estimate <= binary.high
    with pytest.raises(ValueError, match="shape"):
        stats.paired_diff_ci([1.0, 2.0], [1.0])


def test_classify_counts_on_a_hand_fixture() -> None:
    diff = [0.5, 0.0, -0.2, 0.005, -0.005, 1.0, np.nan]
    assert stats.classify(diff, direction=1, tolerance=0.01) == (2, 3, 1)
    assert stats.classify(diff, direction=-1, tolerance=0.01) == (1, 3, 2)
    assert stats.classify(diff, direction=1, tolerance=0.0) == (3, 1, 2)


def _rows(experiment, seed, values, suite="adherence", benchmark="json", metric="adherence"):
    return [
        {"study": "t", "experiment": experiment, "method": "none" if experiment == "base" else "lora", "rank": None, "seed": seed, "suite": suite, "benchmark": benchmark, "item_id": f"i{k}", "metric": metric, "value": float(v)}
        for k, v in enumerate(values)
    ]  # fmt: skip


def test_summary_counts_pairs_and_seed_spread_on_a_hand_fixture() -> None:
    rows = (  # a continuous metric without a fixed band: unchanged within 5% of the base item
        _rows("base", 0, [10, 20, 30, 40], metric="score")
        + _rows("tuned", 0, [20, 20, 20, 50], metric="score")
        + _rows("tuned", 1, [20, 20, 40, 50], metric="score")
        + _rows("other", 0, [10, 20, 30, 40], metric="score")
    )
    table = summary.summarize(
        pd.DataFrame(rows),
        baseline="base",
        pairs=[["other", "tuned"]],
        boot=Bootstrap(200, 0.95, 0),
    )
    tuned = table[(table["kind"] == "estimate") & (table["experiment"] == "tuned")].iloc[0]
    # seed-averaged items: 20, 20, 30, 50 vs base 10, 20, 30, 40 -> +10, 0, 0, +10
    assert (tuned["improved"], tuned["unchanged"], tuned["regressed"]) == (2, 2, 0)
    assert tuned["diff"] == pytest.approx(5.0)
    assert tuned["n_seeds"] == 2 and tuned["seed_sd"] == pytest.approx(np.std([27.5, 32.5], ddof=1))
    assert json.loads(tuned["seed_means"]) == {"0": 27.5, "1": 32.5}
    other = table[(table["kind"] == "estimate") & (table["experiment"] == "other")].iloc[0]
    assert (
        other["diff"] == 0 and other["diff_ci_method"] == "degenerate" and other["unchanged"] == 4
    )
    pair = table[table["kind"] == "pair"].iloc[0]
    assert (pair["experiment"], pair["reference"], pair["diff"]) == (
        "tuned",
        "other",
        pytest.approx(5.0),
    )
    base = table[(table["kind"] == "estimate") & (table["experiment"] == "base")].iloc[0]
    assert np.isnan(base["diff"]) and base["mean"] == 25.0


def test_direction_of_metrics() -> None:
    assert metrics.direction("safety", "harmful", "refused") == 1
    assert metrics.direction("safety", "xstest_safe", "refused") == -1
    assert metrics.direction("safety", "xstest_unsafe", "refused") == 1
    assert metrics.direction("semantic", "test", "reference_nll") == -1
    assert metrics.direction("efficiency", "batch4", "tokens_per_s") == 1
    assert metrics.direction("loadtest", "c4", "error_rate") == -1  # the served model's
    assert metrics.direction("speculative", "k2", "acceptance") == 1
    assert metrics.direction("efficiency", "batch4", "latency_p95_s") == -1
    assert metrics.direction("benchmarks", "gsm8k", "exact_match") == 1


def test_units_pool_groups_and_retention_but_not_mixed_directions() -> None:
    rows = (
        _rows("base", 0, [1, 0], "benchmarks", "bbh:navigate", "exact_match")
        + _rows("base", 0, [1, 1], "benchmarks", "bbh:web_of_lies", "exact_match")
        + _rows("base", 0, [0, 1], "humaneval", "humaneval", "pass@1")
        + _rows("base", 0, [1, 0], "safety", "harmful", "refused")
        + _rows("base", 0, [0, 0], "safety", "benign", "refused")
    )
    found = {(u[0], u[1], u[2], u[3]): len(u[4]) for u in summary.units(pd.DataFrame(rows))}
    assert found[("benchmarks", "group", "bbh", "exact_match")] == 4
    assert found[("retention", "derived", "all", "score")] == 6
    assert ("safety", "suite", "all", "refused") not in found


# --- tidy assembly -----------------------------------------------------------------------

EXTRA = st.sampled_from(["family", "k", "category", "lang"])
ROW = st.fixed_dictionaries(
    {"benchmark": st.sampled_from(["a", "b:c"]), "item_id": st.text("xyz0123", min_size=1, max_size=4), "metric": st.sampled_from(["acc", "refused"]), "value": st.one_of(st.floats(-1e6, 1e6), st.none(), st.booleans())},
    optional={"family": st.text("abc", max_size=3), "k": st.integers(0, 5)},
)  # fmt: skip


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(files=st.lists(st.lists(ROW, max_size=6), min_size=1, max_size=5))
def test_assembly_keeps_every_row_and_every_extra_column(files, tmp_path: Path) -> None:
    frames, expected_extras = [], set()
    for n, records in enumerate(files):
        path = tmp_path / f"f{n}.jsonl"
        path.write_text("".join(json.dumps({"suite": "s", **r}) + "\n" for r in records))
        expected_extras |= {k for r in records for k in r if k not in tidy.EVAL_KEYS}
        keys = {"study": "t", "experiment": f"e{n % 2}", "method": "lora", "rank": 8, "seed": n}
        frames.append(tidy.eval_frame(path, keys))
    table = tidy.assemble(frames, {"e0": {"learning_rate": 1e-4}, "e1": {"learning_rate": 2e-4}})
    assert len(table) == sum(len(records) for records in files)
    assert list(table.columns[: len(tidy.BASE_COLUMNS)]) == tidy.BASE_COLUMNS
    assert expected_extras <= set(table.columns)
    assert table["value"].dtype == np.float64
    if len(table):
        assert set(table["learning_rate"].dropna()) <= {1e-4, 2e-4}


def test_a_malformed_eval_row_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "adherence.jsonl"
    path.write_text(
        '{"suite": "adherence", "benchmark": "b", "item_id": "1", "metric": "m", "value": 1}\n{"suite": "adherence", "benchmark": "b", "item_id": "2", "value": 1}\n'
    )
    with pytest.raises(
        tidy.ResultsError, match=r"adherence.jsonl:2: missing field\(s\) \['metric'\]"
    ):
        tidy.eval_frame(
            path, {"study": "t", "experiment": "e", "method": "lora", "rank": 8, "seed": 0}
        )
    path.write_text(
        '{"suite": "a", "benchmark": "b", "item_id": "1", "metric": "m", "value": "high"}\n'
    )
    with pytest.raises(tidy.ResultsError, match="adherence.jsonl:1: field 'value'"):
        tidy.eval_frame(
            path, {"study": "t", "experiment": "e", "method": "lora", "rank": 8, "seed": 0}
        )


# --- weight geometry ---------------------------------------------------------------------


def _orthonormal(rng, d, k):
    return np.linalg.qr(rng.normal(size=(d, k)))[0]


def test_subspace_similarity_of_a_subspace_with_itself_is_one_and_with_its_complement_zero() -> (
    None
):
    rng = np.random.default_rng(0)
    basis = _orthonormal(rng, 32, 12)
    u, v = basis[:, :6], basis[:, 6:]
    assert geo.subspace_similarity(u, u, 6, 6) == pytest.approx(1.0)
    assert geo.subspace_similarity(u, v, 6, 6) == pytest.approx(0.0, abs=1e-12)
    assert geo.subspace_similarity(u[:, :2], u, 2, 6) == pytest.approx(1.0)  # contained in
    grid = geo.similarity_grid(u, basis)
    assert grid[5, 5] == pytest.approx(1.0) and grid[2, 4] == pytest.approx(
        geo.subspace_similarity(u, basis, 3, 5)
    )


def test_clustered_items_get_a_wider_interval_resampled_by_cluster() -> None:
    """Instructions of one IFEval response pass or fail together: resampling them one by one
    overstates the information; resampling prompts gives the honest (wider) interval."""
    rng = np.random.default_rng(0)
    prompts = rng.integers(0, 2, 40).astype(float)  # each prompt all right or all wrong
    sizes = rng.integers(1, 5, 40)
    x = np.repeat(prompts, sizes)
    clusters = np.repeat(np.arange(40), sizes)
    boot = Bootstrap(1000, 0.95, 0)
    naive, clustered = stats.mean_ci(x, boot), stats.cluster_mean_ci(x, clusters, boot)
    assert clustered.estimate == pytest.approx(naive.estimate)
    assert clustered.high - clustered.low > 1.3 * (naive.high - naive.low)
    y = np.repeat(rng.integers(0, 2, 40).astype(float), sizes)
    diff = stats.cluster_paired_diff_ci(x, y, clusters, boot)
    assert diff.estimate == pytest.approx((x - y).mean()) and diff.low < diff.estimate < diff.high
    same = stats.cluster_mean_ci(np.ones(6), [0, 0, 1, 1, 2, 2], boot)
    assert same.method == "degenerate" and same.low == same.high == 1.0


def test_lowrank_svd_matches_the_explicit_update_in_mlx_lm_orientation() -> None:
    rng = np.random.default_rng(1)
    a, b, scale = (
        rng.normal(size=(24, 4)),
        rng.normal(size=(4, 16)),
        2.5,
    )  # lora_a (in, r), lora_b (r, out)
    delta = scale * (a @ b).T  # (out, in): y = W x + scale * (x A) B
    u_out, s, v_in = geo.lowrank_svd(a, b, scale)
    assert np.allclose(u_out @ np.diag(s) @ v_in.T, delta)
    assert np.allclose(s, np.linalg.svd(delta, compute_uv=False)[:4])


def test_effective_rank_of_a_rank_k_matrix_is_about_k() -> None:
    rng = np.random.default_rng(2)
    assert geo.effective_rank(np.ones(5)) == pytest.approx(5.0)
    assert geo.effective_rank([3.0, 0, 0]) == pytest.approx(1.0)
    for k in (1, 4, 10):
        m = (
            _orthonormal(rng, 64, k)
            @ np.diag(rng.uniform(0.9, 1.1, k))
            @ _orthonormal(rng, 48, k).T
        )
        s = np.linalg.svd(m, compute_uv=False)
        assert geo.effective_rank(s) == pytest.approx(k, rel=0.02)
        assert math.ceil(0.8 * k) <= geo.energy_rank(s, 0.9) <= k


def _write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int], bytes]]) -> None:
    header, blobs, offset = {}, [], 0
    for name, (dtype, shape, blob) in tensors.items():
        header[name] = {
            "dtype": dtype,
            "shape": shape,
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def test_safetensors_reader_decodes_bfloat16_and_mlx_quantised_weights(tmp_path: Path) -> None:
    values = np.array([[1.5, -2.0], [0.15625, 3.0]], dtype=np.float32)
    bf16 = (values.view(np.uint32) >> 16).astype(np.uint16).tobytes()
    q = np.arange(16, dtype=np.uint32) % 16  # 16 4-bit values: one row, group size 8
    packed = np.array(
        [sum(int(q[w * 8 + i]) << (4 * i) for i in range(8)) for w in range(2)], dtype=np.uint32
    )
    scales, biases = np.array([[0.5, 2.0]], np.float32), np.array([[1.0, -1.0]], np.float32)
    _write_safetensors(tmp_path / "model.safetensors", {
        "w.bf16": ("BF16", [2, 2], bf16),
        "layers.0.q.weight": ("U32", [1, 2], packed.reshape(1, 2).tobytes()),
        "layers.0.q.scales": ("F32", [1, 2], scales.tobytes()),
        "layers.0.q.biases": ("F32", [1, 2], biases.tobytes()),
    })  # fmt: skip
    tensors = geo.SafeTensors.from_dir(tmp_path)
    assert np.array_equal(tensors.get("w.bf16"), values)
    weight = tensors.get("layers.0.q.weight", {"bits": 4, "group_size": 8})
    expected = np.concatenate([q[:8] * 0.5 + 1.0, q[8:] * 2.0 - 1.0]).reshape(1, 16)
    assert np.allclose(weight, expected)


def test_subspace_grid_and_ranks_from_adapter_files(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(3)
    shared = _orthonormal(rng, 20, 2)  # input-side directions both runs learn
    for name, rank in (("r2", 2), ("r4", 4)):
        folder = tmp_path / name
        folder.mkdir()
        a = np.concatenate([shared * 3, rng.normal(0, 0.01, (20, rank - 2))], axis=1).astype(
            np.float32
        )
        b = rng.normal(size=(rank, 12)).astype(np.float32)
        save_file(
            {
                "model.layers.0.self_attn.q_proj.lora_a": a,
                "model.layers.0.self_attn.q_proj.lora_b": b,
            },
            str(folder / "adapters.safetensors"),
        )
        (folder / "adapter_config.json").write_text(
            json.dumps({"lora_parameters": {"rank": rank, "scale": 2.0}})
        )
    grid = geo.subspace_grid(tmp_path / "r2", tmp_path / "r4", sides=("in",))
    top = grid[(grid["layer"] == "0") & (grid["i"] == 2)]["phi"].iloc[0]
    assert top == pytest.approx(1.0, abs=1e-3)
    ranks = geo.delta_ranks(tmp_path / "r4", "lora")
    assert ranks.loc[0, "module"] == "q_proj" and ranks.loc[0, "effective_rank"] <= 4 + 1e-9
    hist = geo.delta_histogram(tmp_path / "r4", "lora", per_module=500)
    assert set(hist["part"]) == {"delta", "lora_a", "lora_b"}


# --- timing ------------------------------------------------------------------------------


def test_timing_table_reads_snakemake_benchmark_files(tmp_path: Path) -> None:
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    (tmp_path / "benchmarks" / "train").mkdir(parents=True)
    (tmp_path / "benchmarks" / "aggregate.tsv").write_text(
        header + "2.5\t0:00:02\t300.5\t1\t1\t1\t0\t0\t10\t2.0\n"
    )
    (tmp_path / "benchmarks" / "train" / "lora-r8-s0.tsv").write_text(
        header + "100.0\t0:01:40\t-\t1\t1\t1\t0\t0\t10\t90\n"
    )
    table = timing.timing_table(tmp_path)
    assert list(table["rule"]) == ["train", "aggregate"]
    assert table.loc[0, "wildcards"] == "lora-r8-s0" and np.isnan(table.loc[0, "max_rss_mb"])
    assert timing.by_rule(table).set_index("rule").loc["aggregate", "max_rss_mb"] == 300.5
    assert "1:40" in timing.render(table) and timing.hms(3725) == "1:02:05"


def test_config_table_states_what_each_run_trained():
    """The setup table carries run.json's `trained` words per arm; the base trains nothing."""
    from mlx_instruct.analysis import tables, tidy
    from mlx_instruct.config import load_config

    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "mistral-7b.yaml")
    meta = tidy.experiments(config)
    full = "all weights of 32/32 blocks; embeddings, output head, final norm frozen; adafactor"
    runs = pd.DataFrame(
        [
            {"experiment": "full", "seed": 0, "trainable_params": 6979584000, "trained": full},
            {"experiment": "lora-r32", "seed": 0, "trainable_params": 83886080,
             "trained": "adapters in 32/32 blocks; embeddings, output head, final norm frozen; adamw"},
        ]
    )  # fmt: skip
    table = tables.config_table(meta, runs).set_index("experiment")
    assert table.loc["full", "trains"] == "all of 32/32, adafactor"
    assert table.loc["lora-r32", "trains"] == "LoRA in 32/32, adamw"
    whole = "all weights of 30/30 blocks; embeddings, final norm trained; output head frozen; adamw"
    assert tables.short_trained(whole) == "all of 30/30 + embeddings, norm, adamw"
    assert table.loc["base", "trains"] == ""
