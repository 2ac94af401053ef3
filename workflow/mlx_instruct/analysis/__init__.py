"""analysis: from a study's results folder to its tables, figures and paper.

Stages (each a `python -m mlx_instruct.analysis <command>` a Snakemake rule calls):
aggregate (tidy.py, summary.py, lora_geometry.py) -> figures / tables (figures*.py,
tables*.py, artifacts.py) -> paper (knit.py, paper.py, report.py, narrative.py).
Needs pandas, scipy, matplotlib and seaborn, never MLX.
"""

__version__ = "0.1.0"
