"""`python -m mlx_instruct.deploy export`: one run (or the base) as deployable model directories.

    python -m mlx_instruct.deploy export --config <study.yaml> --experiment E --seed S \\
        --model results/S/models/base [--run results/S/runs/E/sK] --bits 8 4 --group-size 64 \\
        --out results/S/deploy/E/sK

writes <out>/fused (the run merged into the base: `mlx_lm fuse --dequantize` semantics, in
the run's training dtype), <out>/q<bits> per --bits (the fused model through `mlx_lm convert
-q`, so the bytes are what mlx_lm itself would write), a provenance.json in each, and
<out>/export.json last. Every variant is an mlx_lm model directory: `mlx_lm generate --model`
and `mlx_lm.server --model` open it unchanged, and so does the evaluate CLI's --model.

Bits and group size are checked against the installed MLX (by asking mx.quantize, so a newer
MLX's wider support is taken as it comes) and against every quantizable layer's input width
before anything heavy: mlx_lm would otherwise skip a layer whose width does not split into
groups and leave it silently unquantized. Errors: one line naming the flag or key, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_unflatten

from mlx_instruct.config import ConfigError, experiment_settings, fingerprint, load_config
from mlx_instruct.deploy.settings import DEFAULTS, FUSED, variant_name
from mlx_instruct.io import atomic_dir, write_json
from mlx_instruct.provenance import MODEL_PACKAGES, git_state, package_versions, python_version
from mlx_instruct.sources import load_model, read_source
from mlx_instruct.train.outputs import ADAPTER_CONFIG, load_trained

EXIT_USAGE = 2
QUANT_MODE = "affine"  # mlx_lm convert's default; the modes with scales+biases per group


class ExportError(ValueError):
    """An export setting or input that cannot be honoured (names the flag, key or file)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mlx_instruct.deploy export", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--config", required=True, help="resolved study YAML")
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--model", required=True, help="prepared base model directory")
    parser.add_argument("--run", default=None, help="training run dir (none for the base)")
    parser.add_argument(
        "--bits", type=int, nargs="*", default=DEFAULTS["quantize"], help="quantized variants"
    )
    parser.add_argument(
        "--group-size", type=int, default=DEFAULTS["group_size"], help="quantization group size"
    )
    parser.add_argument("--out", required=True, help="export directory to write")
    return parser


def check_quantization(bits: list[int], group_size: int) -> None:
    """Refuse settings the installed MLX cannot quantize with, in MLX's own words."""
    if len(set(bits)) != len(bits):
        raise ExportError(f"--bits: {bits} repeats a value; each names one variant")
    if group_size < 1:  # MLX divides by it before validating: a crash (SIGFPE), not an error
        raise ExportError(f"--group-size {group_size}: expected a positive integer")
    for value in bits:
        try:
            mx.quantize(mx.zeros((1, group_size)), group_size=group_size, bits=value)
        except ValueError as error:
            flag = "--group-size" if "group size" in str(error) else "--bits"
            shown = group_size if flag == "--group-size" else value
            message = str(error).removeprefix("[quantize] ")
            raise ExportError(f"{flag} {shown}: {message}") from None


def check_group_divides(model: nn.Module, group_size: int) -> None:
    """Every layer mlx_lm would quantize must split into groups of `group_size`."""
    for path, module in model.named_modules():
        if not hasattr(module, "to_quantized") or not hasattr(module, "weight"):
            continue
        width = module.weight.shape[-1]
        if width % group_size:
            raise ExportError(
                f"--group-size {group_size}: does not divide the input width {width} of "
                f"layer {path}; choose a group size that divides it"
            )


def _method(config: dict[str, Any], args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """(method, settings) of the experiment, with --run present exactly when it trains."""
    if args.experiment not in config["experiments"]:
        raise ConfigError(
            f"{args.config}: experiments: no experiment {args.experiment!r}; "
            f"known: {sorted(config['experiments'])}"
        )
    settings = experiment_settings(config, args.experiment)
    method = settings["method"]
    if method == "none" and args.run is not None:
        raise ExportError(
            f"--run {args.run}: experiments.{args.experiment} is the untuned base (method: none)"
        )
    if method != "none" and args.run is None:
        raise ExportError(f"--run: experiments.{args.experiment} trains ({method}); name its run")
    return method, settings


def _check_dirs(model_dir: Path, run: Path | None) -> None:
    if not (model_dir / "config.json").is_file():
        raise ExportError(f"--model {model_dir}: not a prepared model directory (no config.json)")
    if run is None:
        return
    if not (run / ADAPTER_CONFIG).is_file() and not (run / "config.json").is_file():
        raise ExportError(
            f"--run {run}: neither {ADAPTER_CONFIG} (adapters) nor config.json (full model)"
        )


def fuse(model: nn.Module) -> nn.Module:
    """Merge every adapter layer into its base weight, as `mlx_lm fuse --dequantize` does: a
    qlora run's fused model is its dequantized base plus its deltas, what it trained on."""
    from mlx_lm.utils import dequantize_model

    fused = [(n, m.fuse(dequantize=True)) for n, m in model.named_modules() if hasattr(m, "fuse")]
    if fused:
        model.update_modules(tree_unflatten(fused))
    return dequantize_model(model)


def float_dtype(model: nn.Module) -> str:
    """The floating dtype of the model's weights, as mlx_lm convert's --dtype names it."""
    for _, value in tree_flatten(model.parameters()):
        if mx.issubdtype(value.dtype, mx.floating):
            return str(value.dtype).removeprefix("mlx.core.")
    raise ExportError("the model has no floating-point weights to export")


def _model_config(model_dir: Path, run: Path | None) -> dict[str, Any]:
    """The config.json to save with the fused model (a full run carries its own)."""
    from mlx_lm.utils import load_config as load_model_config

    source = run if run is not None and (run / "config.json").is_file() else model_dir
    config = load_model_config(source)
    config.pop("quantization", None)  # fused weights are dequantized
    config.pop("quantization_config", None)
    return config


def write_fused(
    out: Path, model_dir: Path, run: Path | None, dtype: str | None, stamp: dict[str, Any]
) -> Path:
    """<out>/fused: the run merged into the base, saved by mlx_lm's own `save`."""
    from mlx_lm.utils import save

    from mlx_instruct.train.methods import cast_model

    model, tokenizer = load_trained(model_dir, run)
    model = fuse(model)
    if dtype is not None:
        cast_model(model, dtype)
    mx.eval(model.parameters())
    target = out / FUSED
    with atomic_dir(target) as tmp:
        save(tmp, model_dir, model, tokenizer, _model_config(model_dir, run), donate_model=False)
        write_json(tmp / "provenance.json", {**stamp, "variant": FUSED, "quantization": None})
    return target


def write_quantized(
    out: Path, fused: Path, bits: int, group_size: int, stamp: dict[str, Any]
) -> Path:
    """<out>/q<bits>: `mlx_lm convert -q` of the fused directory."""
    from mlx_lm.convert import convert

    dtype = float_dtype(load_model(fused, lazy=True)[0])
    target = out / variant_name(bits)
    quantization = {"bits": bits, "group_size": group_size, "mode": QUANT_MODE}
    with atomic_dir(target) as tmp:
        tmp.rmdir()  # convert refuses an existing directory; atomic_dir still swaps it in
        convert(
            str(fused),
            str(tmp),
            quantize=True,
            q_group_size=group_size,
            q_bits=bits,
            q_mode=QUANT_MODE,
            dtype=dtype,
        )
        variant = {**stamp, "variant": variant_name(bits), "quantization": quantization}
        write_json(tmp / "provenance.json", variant)
    return target


def describe(variant: Path) -> dict[str, Any]:
    """export.json's entry of a written variant: opening it also proves mlx_lm loads it."""
    from mlx_lm.utils import compute_bits_per_weight, get_total_parameters

    model, _ = load_model(variant, lazy=True)
    quant = json.loads((variant / "config.json").read_text()).get("quantization") or {}
    files = [p for p in variant.iterdir() if p.is_file()]
    return {
        "dir": str(variant),
        "bits": quant.get("bits"),
        "group_size": quant.get("group_size"),
        "dtype": float_dtype(model),
        "parameters": int(get_total_parameters(model)),
        "bits_per_weight": round(float(compute_bits_per_weight(model)), 4),
        "weights_bytes": sum(p.stat().st_size for p in files if p.suffix == ".safetensors"),
        "bytes_on_disk": sum(p.stat().st_size for p in files),
    }


def provenance(
    args: argparse.Namespace, config: dict[str, Any], method: str, run: Path | None
) -> dict[str, Any]:
    """What each variant came from: the run's own run.json where it has one."""
    record: dict[str, Any] = {}
    if run is not None and (run / "run.json").is_file():
        record = json.loads((run / "run.json").read_text())
    data = record.get("data") or {}
    return {
        "study": config["study"],
        "experiment": args.experiment,
        "seed": args.seed,
        "method": method,
        "run": str(run) if run is not None else None,
        "run_fingerprint": record.get("fingerprint"),
        "base_model": {"dir": str(args.model), "source": read_source(args.model)},
        "data_fingerprint": data.get("fingerprint"),
        "config": {"file": str(args.config), "fingerprint": fingerprint(config)},
        "settings": record.get("settings") or experiment_settings(config, args.experiment),
        "versions": {"python": python_version(), **package_versions(MODEL_PACKAGES)},
        "git": git_state(),
    }


def export(args: argparse.Namespace) -> dict[str, Any]:
    """Validate everything, then write fused, each quantized variant and export.json."""
    config = load_config(args.config)
    method, settings = _method(config, args)
    model_dir, run = Path(args.model), Path(args.run) if args.run else None
    _check_dirs(model_dir, run)
    check_quantization(args.bits, args.group_size)
    check_group_divides(load_model(model_dir, lazy=True)[0], args.group_size)
    out = Path(args.out)
    stamp = provenance(args, config, method, run)
    dtype = settings["dtype"] if method != "none" else None
    fused = write_fused(out, model_dir, run, dtype, stamp)
    variants = {FUSED: describe(fused)}
    for bits in args.bits:
        variants[variant_name(bits)] = describe(
            write_quantized(out, fused, bits, args.group_size, stamp)
        )
    summary = {
        "study": config["study"],
        "experiment": args.experiment,
        "seed": args.seed,
        "method": method,
        "variants": variants,
    }
    write_json(out / "export.json", summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        summary = export(args)
    except (ConfigError, ExportError, FileNotFoundError) as error:
        text = "; ".join(part.strip() for part in str(error).splitlines() if part.strip())
        print(f"error: {text}", file=sys.stderr)
        return EXIT_USAGE
    for name, variant in summary["variants"].items():
        print(
            f"export: {name}: {variant['parameters']:,} parameters, "
            f"{variant['bits_per_weight']:.2f} bits/weight, {variant['weights_bytes']:,} bytes"
        )
    return 0
