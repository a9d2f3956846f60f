"""Embedding stage: run one model once over one dataset and stream every layer into a features store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from prh.data.store import open_images, read_captions, read_record
from prh.io.features import FeatureWriter
from prh.io.provenance import as_attrs, package_versions
from prh.models.loading import load_backbone


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
    provenance: dict | None = None,
) -> Path:
    """Embed ``dataset_dir`` with the model ``spec`` into ``out_path`` (see ``prh.io.features``)."""
    return embed_datasets(
        spec,
        [dataset_dir],
        [out_path],
        dataset_names=[dataset_name],
        chunk=chunk,
        threads=threads,
        device=device,
        provenance=provenance,
    )[0]


def embed_datasets(
    spec: dict,
    dataset_dirs: list[str | Path],
    out_paths: list[str | Path],
    *,
    dataset_names: list[str],
    chunk: int = 256,
    threads: int | None = None,
    device: str = "auto",
    provenance: dict | None = None,
) -> list[Path]:
    """Embed several datasets with one model, loaded once: for small datasets (the probe tasks) the start-up
    of a job and the model load cost more than the forward passes."""
    if threads:
        torch.set_num_threads(threads)
    backbone = load_backbone(spec, device)
    return [
        write_embeddings(backbone, spec, folder, out, dataset_name=name, chunk=chunk, provenance=provenance)
        for folder, out, name in zip(dataset_dirs, out_paths, dataset_names, strict=True)
    ]


def _is_out_of_memory(err: BaseException) -> bool:
    if isinstance(err, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def storage_layers(backbone, layers: list[torch.Tensor], dtype: str, start: int) -> list[np.ndarray]:
    """The batch's layers as ``dtype`` arrays; NaN or Inf (e.g. a float16 overflow past 65504) stops the
    job naming the model, the layer and the sample."""
    arrays = []
    for i, tensor in enumerate(layers):
        values = tensor.float().cpu().numpy()
        with np.errstate(over="ignore"):
            stored = values.astype(dtype)
        bad = ~np.isfinite(stored).all(axis=1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            what = "overflows float16" if dtype == "float16" and np.isfinite(values[row]).all() else "gives NaN or Inf"
            hint = " (store float32: `dtype: float32`)" if what == "overflows float16" else ""
            raise FloatingPointError(
                f"model '{backbone.name}': layer {i} ({backbone.layer_names[i]}) {what} at sample {start + row}{hint}"
            )
        arrays.append(stored)
    return arrays


def write_embeddings(
    backbone,
    spec: dict,
    dataset_dir: str | Path,
    out_path: str | Path,
    *,
    dataset_name: str,
    chunk: int = 256,
    provenance: dict | None = None,
) -> Path:
    """Run ``backbone`` over the dataset and stream every layer into a features store at ``out_path``.

    Batches stream to the store, so memory holds one model, one batch and one chunk of features. Running
    out of memory stops the job with one message that names the model and what to change."""
    record = read_record(dataset_dir)
    inputs = load_inputs(dataset_dir, spec["modality"])
    n = inputs.shape[0] if hasattr(inputs, "shape") else len(inputs)
    if n != record["size"]:
        raise ValueError(f"dataset '{dataset_name}': {n} inputs but its record says {record['size']}")
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
        **(provenance or {}),
    }
    batch_size = spec["batch_size"]
    parameters = backbone.module.parameters() if backbone.module is not None else iter(())  # wordllama: none
    device = next(parameters, torch.empty(0)).device.type
    with FeatureWriter(out_path, n, dtype=spec["dtype"], chunk=chunk, attrs=as_attrs(attrs)) as writer:
        with torch.inference_mode():
            for start in tqdm(range(0, n, batch_size), desc=f"{spec['name']} on {dataset_name}", unit="batch"):
                try:
                    layers = backbone.embed(inputs[start : start + batch_size])
                except Exception as err:
                    if _is_out_of_memory(err):
                        raise MemoryError(
                            f"model '{spec['name']}' ran out of memory on {device} at batch size {batch_size} "
                            f"(samples {start}-{min(start + batch_size, n) - 1}): lower `batch_size` in its config "
                            f"entry, or use `compute_dtype: float16`, or `device_map: auto` for a model larger "
                            f"than one device"
                        ) from err
                    raise
                if len(layers) != len(backbone.layer_names):
                    raise RuntimeError(
                        f"model '{spec['name']}' returned {len(layers)} layers, expected {len(backbone.layer_names)}"
                    )
                writer.write(storage_layers(backbone, layers, spec["dtype"], start))
    return Path(out_path)
