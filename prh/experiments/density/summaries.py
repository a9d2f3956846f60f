"""Fig. 9's summaries made by the workflow (App. E): the job that loads an instruction-tuned model and
summarises every dense description of a ``summary_<n>`` level
(``prh.experiments.density.levels.summarise``), kept apart from
``prh.experiments.density.levels`` so that the jobs that only read captions do not load model code."""

from __future__ import annotations

import numpy as np


def write_summaries(dataset_dir, out_path, level: str, spec: dict, summariser: dict, dense: str, size=None,
                    provenance: dict | None = None, device: str = "auto") -> dict:  # fmt: skip
    """Summaries of the dataset's first ``size`` dense descriptions at a ``summary_<n>`` level by the
    ``summariser`` model entry: ``out_path`` (parquet: sample, dense, summary, words) with the word-count
    check and the model's provenance in its metadata. Returns the check."""
    import polars as pl
    from transformers import AutoModelForCausalLM

    from prh.experiments.density.levels import SUMMARY_PROMPT, dense_descriptions, summarise, summary_words, word_counts
    from prh.io.workflow import write_table
    from prh.models.loading import load_hf_model, load_tokenizer, pick_device, resolve_hf_location

    n = summary_words(level)
    spec_m = {"compute_dtype": "float32", "trust_remote_code": False, "pretrained": True, "seed": 0} | summariser
    texts = dense_descriptions(dataset_dir, spec, dense)[:size]
    model, _ = load_hf_model(spec_m, AutoModelForCausalLM, pick_device(device))
    summaries = summarise(model, load_tokenizer(spec_m), texts, n, spec_m.get("batch_size", 8))
    check = word_counts(summaries, n)
    table = pl.DataFrame({"sample": np.arange(len(texts)), "dense": texts, "summary": summaries,
                          "words": check["words"]})  # fmt: skip
    where = summariser.get("id") or summariser.get("package") or summariser.get("path")
    record = {"level": level, "words": n, "dense": dense, "model": summariser["name"], "model_id": where,
              "revision": resolve_hf_location(spec_m)[2], "prompt": SUMMARY_PROMPT.format(n=n), "decoding": "greedy",
              "check": {k: v for k, v in check.items() if k != "words"}}  # fmt: skip
    write_table(table, out_path, (provenance or {}) | {"summaries": record})
    return record
