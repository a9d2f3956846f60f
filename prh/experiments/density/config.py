"""Config checks of Fig. 9 (``density``) that its schema cannot express."""

from __future__ import annotations

import math

from prh.experiments.config import model_list_problems
from prh.experiments.density.levels import LEVELS, summary_words


def problems(config: dict) -> list[str]:
    """Fig. 9: a captioned dataset, levels its Z can describe (shapes), metrics and models of this config."""
    density, problems = config["density"], []
    if not density["dataset"]:
        return problems
    datasets = {d["name"]: d for d in config["datasets"]}
    spec = datasets.get(density["dataset"])
    if spec is None or spec["kind"] == "places365":
        what = "is not a dataset of datasets" if spec is None else "has no captions"
        return [f"density.dataset: '{density['dataset']}' {what}"]
    summaries = density["summaries"]
    summarised = [level for level in density["levels"] if summaries and summary_words(level)]
    if spec["kind"] == "shapes":
        problems += [
            f"density.levels[{i}]: '{level}' is beyond what the shapes world's Z describes ({', '.join(LEVELS)}; "
            f"summary_<n> with density.summaries)"
            for i, level in enumerate(density["levels"])
            if level not in LEVELS and level not in summarised
        ]
    if summaries:
        model, dense = summaries["model"], summaries["dense"]
        if not summarised:
            problems.append("density.summaries: no level of density.levels is a summary level (summary_<n>)")
        if model["source"] != "huggingface" or not ({"id", "path", "package"} & set(model)):
            problems.append("density.summaries.model: an instruction-tuned huggingface model (id, path or package)")
        if dense != "caption" and (spec["kind"] != "shapes" or dense not in LEVELS):
            problems.append(
                f"density.summaries.dense: '{dense}' is neither 'caption' nor a level the shapes world's Z describes"
            )
    problems += [
        f"density.metrics[{i}]: '{metric}' is not a metric of alignment.metrics (its parameters come from there)"
        for i, metric in enumerate(density["metrics"])
        if metric not in config["alignment"]["metrics"]
    ]
    n = min(density["size"] or math.inf, spec.get("size") or math.inf)
    problems += [
        f"density.size: {n} samples leave no room for alignment.metrics.{metric}.k = {k} (k must be below n - 1)"
        for metric in density["metrics"]
        if (k := (config["alignment"]["metrics"].get(metric) or {}).get("k")) and k >= n - 1
    ]
    for side in ("vision", "language"):
        problems += model_list_problems(config, f"density.{side}", density[side], side, "Fig. 9")
    return problems
