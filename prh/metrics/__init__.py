"""Alignment metrics (paper, App. A–B): reference definitions on (N, D) arrays, and ``layer_scores`` for
every layer pair of two layer stacks at once. See ``definitions`` and ``layerwise``."""

from prh.metrics.calibration import calibrate_layers
from prh.metrics.definitions import (
    cka,
    cknna,
    clamp_quantile,
    cycle_knn,
    edit_distance_knn,
    hsic,
    hsic_unbiased,
    knn_indices,
    l2_normalize,
    lcs_knn,
    mutual_knn,
    prepare_stack,
    svcca,
    unbiased_cka,
)
from prh.metrics.layerwise import (
    METRICS,
    LayerStates,
    best_of,
    get_metric,
    layer_scores,
    permutation_null,
    resolve_params,
    tie_errors,
)
from prh.metrics.resampling import (
    half_sample_best,
    half_sample_counts,
    half_sample_interval,
    half_sample_values,
    half_samples,
)

__all__ = [
    "METRICS",
    "LayerStates",
    "best_of",
    "calibrate_layers",
    "half_sample_best",
    "half_sample_counts",
    "half_sample_interval",
    "half_sample_values",
    "half_samples",
    "cka",
    "cknna",
    "clamp_quantile",
    "cycle_knn",
    "edit_distance_knn",
    "get_metric",
    "hsic",
    "hsic_unbiased",
    "knn_indices",
    "l2_normalize",
    "layer_scores",
    "lcs_knn",
    "mutual_knn",
    "permutation_null",
    "prepare_stack",
    "resolve_params",
    "svcca",
    "tie_errors",
    "unbiased_cka",
]
