"""Embedding stage: run one model once over one dataset and stream every layer into a features store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from prh.datasets import open_images, read_captions, read_record
from prh.features import FeatureWriter
from prh.models import load_backbone
from prh.provenance import as_attrs, package_versions


def load_inputs(dataset_dir: str | Path, modality: str):
    """What a model of ``modality`` sees: the image array (lazy) or the list of captions."""
    return open_images(dataset_dir) if modality == "vision" else read_captions(dataset_dir)


def embed_dataset(
    spec: dict,
    dataset_dir: str | Path,
    out_path: str | Path,
    *,
    dataset_name: str,
    chunk: int = 256,
    threads: int | None = None,
    device: str = "auto",
) -> Path:
    """Embed ``dataset_dir`` with the model ``spec`` into ``out_path`` (see ``prh.features``).

    Batches stream to the store, so memory holds one model, one batch and one chunk of features.
    """
    if threads:
        torch.set_num_threads(threads)
    record = read_record(dataset_dir)
    inputs = load_inputs(dataset_dir, spec["modality"])
    n = inputs.shape[0] if hasattr(inputs, "shape") else len(inputs)
    if n != record["size"]:
        raise ValueError(f"dataset '{dataset_name}': {n} inputs but its record says {record['size']}")
    backbone = load_backbone(spec, device)
    attrs = {
        "model": spec["name"],
        "modality": spec["modality"],
        "layer_names": backbone.layer_names,
        "dataset": dataset_name,
        "dataset_fingerprint": record["fingerprint"],
        "storage_dtype": spec["dtype"],
        "versions": package_versions(),
        "model_spec": spec,
        **{f"model_{k}": v for k, v in backbone.provenance.items()},
    }
    batch_size = spec["batch_size"]
    with FeatureWriter(out_path, n, dtype=spec["dtype"], chunk=chunk, attrs=as_attrs(attrs)) as writer:
        with torch.inference_mode():
            for start in tqdm(range(0, n, batch_size), desc=f"{spec['name']} on {dataset_name}", unit="batch"):
                layers = backbone.embed(inputs[start : start + batch_size])
                if len(layers) != len(backbone.layer_names):
                    raise RuntimeError(
                        f"model '{spec['name']}' returned {len(layers)} layers, expected {len(backbone.layer_names)}"
                    )
                writer.write([np.asarray(t.float().cpu().numpy()) for t in layers])
    return Path(out_path)
