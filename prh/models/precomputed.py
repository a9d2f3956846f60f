"""Precomputed features as a model source (``source: features``): one model's representations of a dataset,
computed elsewhere (the PRH authors' published WIT-1024 features, another framework, an API, another cluster),
brought into the same features store an embedded model writes, so states, pairs, trends and figures treat
it like any other model.

``import_features`` fetches the entry's ``url`` (``prh.io.download``: cached once, sha256 and size checked) or
reads its ``path``, reads the file (``prh.io.representations``), checks that every layer holds one finite row
per sample of the dataset, and writes the store with its provenance: where the file came from, its sha256 and
size, and its own fields (``num_params`` becomes the model's parameter count; ``bpb`` and ``loss`` are kept for
the language-model score, ``prh.analysis.lm_score``).

``export_features`` goes the other way: a run's features store written in the authors' layout and file name.
"""

from __future__ import annotations

import json
from pathlib import Path

from prh.data.store import read_record
from prh.io.download import fetch
from prh.io.features import FeatureWriter, layer_reader, store_attrs
from prh.io.provenance import as_attrs, package_versions
from prh.io.representations import (
    RepresentationError,
    authors_file_name,
    check_representations,
    read_representations,
    write_authors_pt,
)

STORED_FIELDS = ("bpb", "loss")


def import_features(
    spec: dict,
    dataset_dir: str | Path,
    out_path: str | Path,
    *,
    dataset_name: str,
    cache: str | Path,
    chunk: int = 256,
    retries: int = 2,
    provenance: dict | None = None,
) -> Path:
    """Write the features store of the ``source: features`` model ``spec`` for the dataset in ``dataset_dir``.

    Raises ``DownloadError`` (a URL that cannot be fetched, a sha256 or size mismatch) or
    ``RepresentationError`` (a file that cannot be read, a wrong number of samples, NaN or Inf), each naming
    the model's file; nothing is written then."""
    record = read_record(dataset_dir)
    location = spec.get("url") or spec["path"]
    got = fetch(location, cache, spec.get("sha256"), retries=retries)
    reps = read_representations(got["path"])
    check_representations(spec["name"], location, reps, record["size"])
    if spec.get("layer_names") and len(spec["layer_names"]) != len(reps.layers):
        raise RepresentationError(f"model '{spec['name']}': layer_names has {len(spec['layer_names'])} names, "
                                  f"{location} holds {len(reps.layers)} layers")  # fmt: skip
    dtype = "float16" if all(layer.dtype.name == "float16" for layer in reps.layers) else "float32"
    fields = {k: v for k, v in reps.fields.items() if k not in ("num_params",)}
    attrs = {
        "model": spec["name"],
        "modality": spec["modality"],
        "layer_names": spec.get("layer_names") or reps.layer_names,
        "dataset": dataset_name,
        "dataset_fingerprint": record["fingerprint"],
        "storage_dtype": dtype,
        "versions": package_versions(("numpy", "torch", "zarr")),
        "model_spec": spec,
        "model_source": "features",
        "model_id": spec.get("id") or spec["name"],
        "model_revision": f"file sha256:{got['sha256']}",
        "model_pooling": features_pooling(spec),
        # -1: unknown (as the figures read a missing count)
        "model_parameters": int(reps.fields.get("num_params") or spec.get("params") or -1),
        "model_file": {"url": location, "sha256": got["sha256"], "bytes": got["bytes"], "format": reps.format},
        "model_file_fields": fields,
        **{f"model_{k}": fields[k] for k in STORED_FIELDS if k in fields},
        **(provenance or {}),
    }
    extras = {"mask": (("sample", "token"), reps.mask)} if reps.mask is not None else None
    n = record["size"]
    with FeatureWriter(out_path, n, dtype=dtype, chunk=chunk, attrs=as_attrs(attrs), extras=extras) as writer:
        writer.write([layer.astype(dtype, copy=False) for layer in reps.layers])
    return Path(out_path)


def features_pooling(spec: dict) -> str:
    """How a file's features were pooled, as its entry says; ``auto`` means the authors' way (the CLS token of
    a vision model, the mean over a caption's tokens of a language model)."""
    pooling = spec.get("pooling", "auto")
    return pooling if pooling != "auto" else ("cls" if spec["modality"] == "vision" else "mean")


def stored_fields(path: str | Path) -> dict:
    """The fields a features model's file carried (``bpb``, ``loss``), from its features store; {} otherwise."""
    attrs = store_attrs(path)
    value = attrs.get("model_file_fields")
    return json.loads(value) if isinstance(value, str) else (value or {})


def export_features(store: str | Path, out_dir: str | Path, bpb: float | None = None) -> Path:
    """Write one features store in the authors' layout into ``out_dir`` under their file name (the model's hub
    id and pooling). ``bpb``: the model's bits-per-byte, for a causal language model (else the store's own,
    when it was read from such a file). Returns the file's path."""
    attrs = store_attrs(store)
    read, widths, _ = layer_reader(store)
    layers = [read(i) for i in range(len(widths))]
    stored = stored_fields(store)
    name = authors_file_name(str(attrs.get("model_id") or attrs["model"]), str(attrs.get("model_pooling", "avg")))
    parameters = int(attrs.get("model_parameters", -1))
    parameters = None if parameters < 0 else parameters
    bpb = bpb if bpb is not None else stored.get("bpb")
    return write_authors_pt(Path(out_dir) / name, layers, parameters, bpb=bpb, loss=stored.get("loss"))


def export_run(stores: list[str | Path], lm_scores: str | Path | None, corpus: str, out_dir: str | Path) -> list[Path]:
    """``export_features`` for every store of a dataset into the folder ``out_dir`` (written whole, then renamed
    into place), each causal LM with its bits-per-byte on ``corpus`` from the run's ``lm_scores`` table."""
    from prh.io.workflow import atomic_path

    bpb = {}
    if lm_scores is not None:
        import polars as pl

        table = pl.read_parquet(lm_scores)
        rows = table.filter((table["corpus"] == corpus) & table["applicable"]).to_dicts()
        bpb = {row["model"]: row["bits_per_byte"] for row in rows}
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        written = [export_features(store, tmp, bpb.get(store_attrs(store)["model"])) for store in stores]
        names = [path.name for path in written]
        if len(set(names)) != len(names):
            raise ValueError(f"two models of {out_dir} share an export file name: {sorted(names)}")
    return [Path(out_dir) / name for name in names]
