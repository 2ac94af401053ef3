"""Training engine: instrumented LoRA, DoRA, hybrid, QLoRA and full fine-tuning on MLX.

`python -m mlx_instruct.train --config S.yaml --experiment E --seed K --model M --data D
--out O [--resume] [--dry-run]` trains one run (see `__main__`). In Python: `Trainer`
(one run on an in-memory model and tokenized examples) and `load_trained` (a base model
with any run's training applied, for evaluation).
"""

from mlx_instruct.train.outputs import load_trained

__all__ = ["Trainer", "load_trained"]


def __getattr__(name: str):
    if name == "Trainer":
        from mlx_instruct.train.trainer import Trainer

        return Trainer
    raise AttributeError(name)
