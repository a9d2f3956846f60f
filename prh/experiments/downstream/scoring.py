"""Fig. 4's scoring job: a model entry loaded and scored on a multiple-choice task
(``prh.experiments.downstream.tasks``'s rule), apart from the task code so that building a task never
depends on the model code."""

from __future__ import annotations

from prh.analysis.lm_score import is_causal_lm
from prh.experiments.downstream.tasks import evaluate


def score_downstream(spec: dict, task: str, table, device: str = "auto", batch_size: int = 32):
    """One row of the downstream table for a model entry; encoders (no causal LM head) are not applicable."""
    import polars as pl

    from prh.models.loading import load_hf_model, load_tokenizer, max_positions, pick_device

    row = {"model": spec["name"], "task": task, "applicable": False, "items": len(table), "acc": None,
           "acc_norm": None, "chance": None, "parameters": None}  # fmt: skip
    if is_causal_lm(spec):
        from transformers import AutoModelForCausalLM

        model, _ = load_hf_model(spec, AutoModelForCausalLM, pick_device(device))
        limit = max_positions(model.config)
        row |= {"applicable": True, **evaluate(model, load_tokenizer(spec), table, batch_size, limit)}
        row["parameters"] = int(sum(p.numel() for p in model.parameters()))
    schema = {"acc": pl.Float64, "acc_norm": pl.Float64, "chance": pl.Float64, "parameters": pl.Int64}
    return pl.DataFrame([row], schema_overrides=schema)
