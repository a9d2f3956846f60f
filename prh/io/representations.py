"""Per-layer representations in the files other tools write: read them in, and write this run's features out.

Formats read (``read_representations``), each one model's representation of one dataset, one row per sample in
the dataset's order:

* ``.pt``, the layout of the PRH authors' published features (``minyoungg/platonic-rep``): a ``torch.save``d
  dict whose ``feats`` is a tensor (N, L, D) or a list of L tensors (N, D_l), with ``num_params`` and, for
  language models, ``mask`` (the attention mask of each caption), ``loss`` and ``bpb`` (their mean
  bits-per-byte on the dataset's captions). It is read with ``torch.load(weights_only=True)`` only: a file
  that needs more (arbitrary pickled objects) is refused, never unpickled;
* ``.npy``: one array (L, N, D) or (N, D) (one layer); ``.npz`` and ``.safetensors``: one array (L, N, D), or
  one (N, D_l) array per layer in the order of their names' numbers (``layer_0``, ``layer_1`` …), 0-d arrays
  (``num_params``, ``bpb``) being the file's fields; a safetensors file's metadata adds fields;
* a directory ``*.zarr``: another run's features store (``prh.io.features``).

``write_authors_pt`` writes a run's features store back in the authors' layout and ``authors_file_name``
names the file as they do (``{hub id, / replaced by _}_pool-{pooling}.pt``), so that tools built on their
format read this run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FIELDS = ("num_params", "bpb", "loss")  # the authors' numbers kept beside the features
SUFFIXES = (".pt", ".pth", ".npy", ".npz", ".safetensors", ".zarr")


class RepresentationError(ValueError):
    """A representation file that cannot be read, or whose contents are not one model's layers of the dataset;
    the message names the file."""


@dataclass
class Representations:
    """One model's layers as read from a file: ``layers`` (N, D_l) arrays, float32 or float16; ``fields``
    the file's numbers (``num_params``, ``bpb``, ``loss``); ``mask`` the authors' attention mask, if any."""

    layers: list[np.ndarray]
    layer_names: list[str]
    fields: dict = field(default_factory=dict)
    mask: np.ndarray | None = None
    format: str = ""


def storable(array, where: str) -> np.ndarray:
    """A numpy or torch array as a features store holds it: float16 stays float16 (the stored precision), every
    other float type becomes float32 (bfloat16 has no numpy or Zarr type, float64 no place in a store);
    anything else is refused, naming ``where``."""
    if hasattr(array, "detach"):  # a torch tensor
        import torch

        array = array.detach().cpu()
        array = (array if array.dtype == torch.float16 else array.float()).numpy()
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.floating):
        raise RepresentationError(f"{where}: holds {array.dtype} values, not floating-point features")
    return array if array.dtype == np.float16 else array.astype(np.float32)


def _number(value):
    if hasattr(value, "item"):
        value = value.item()
    return int(value) if isinstance(value, (bool, int, np.integer)) else float(value)


def _layer_order(name: str) -> tuple:
    """Names sorted by the numbers in them (``layer_10`` after ``layer_9``)."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def _from_arrays(arrays: dict, where: str, fmt: str, metadata: dict | None = None) -> Representations:
    """npz and safetensors: one (L, N, D) array, or one array per layer; 0-d arrays are fields."""
    fields = {k: _number(v) for k, v in arrays.items() if np.ndim(v) == 0}
    for key, value in (metadata or {}).items():
        try:
            fields[key] = _number(float(value)) if key != "num_params" else int(float(value))
        except ValueError:
            fields[key] = value
    mask = arrays.get("mask")
    named = {k: v for k, v in arrays.items() if np.ndim(v) > 0 and k != "mask"}
    if len(named) == 1 and np.ndim(next(iter(named.values()))) == 3:
        stack = storable(next(iter(named.values())), where)
        return Representations(list(stack), [f"layer.{i}" for i in range(len(stack))], fields, mask, fmt)
    names = sorted(named, key=_layer_order)
    bad = [k for k in names if np.ndim(named[k]) != 2]
    if bad or not names:
        raise RepresentationError(
            f"{where}: expected one (L, N, D) array or one (N, D) array per layer; found "
            + (", ".join(f"{k} {tuple(np.shape(named[k]))}" for k in named) or "no arrays")
        )
    return Representations([storable(named[k], where) for k in names], names, fields, mask, fmt)


def _read_pt(path: Path) -> Representations:
    import pickle

    import torch

    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise RepresentationError(
            f"{path}: refused: reading it needs more than torch.load(weights_only=True) allows (arbitrary "
            f"pickled objects); it was not unpickled. Save plain tensors, lists and numbers. ({err})"
        ) from None
    except Exception as err:
        raise RepresentationError(f"{path}: not a readable torch file ({err.__class__.__name__}: {err})") from err
    if not isinstance(content, dict) or "feats" not in content:
        found = sorted(content) if isinstance(content, dict) else type(content).__name__
        raise RepresentationError(f"{path}: expected a dict with 'feats' (the authors' layout); found {found}")
    feats = content["feats"]
    if isinstance(feats, (list, tuple)):
        layers = [storable(layer, str(path)) for layer in feats]
    elif hasattr(feats, "ndim") and feats.ndim == 3:  # (N, L, D)
        stack = storable(feats, str(path))
        layers = [np.ascontiguousarray(stack[:, i]) for i in range(stack.shape[1])]
    elif hasattr(feats, "ndim") and feats.ndim == 2:
        layers = [storable(feats, str(path))]
    else:
        raise RepresentationError(f"{path}: 'feats' is neither (N, L, D), (N, D) nor a list of (N, D_l) tensors")
    bad = [i for i, layer in enumerate(layers) if layer.ndim != 2]
    if bad:
        raise RepresentationError(f"{path}: layer {bad[0]} of 'feats' has shape {layers[bad[0]].shape}, not (N, D)")
    fields = {k: _number(content[k]) for k in FIELDS if k in content}
    mask = content.get("mask")
    mask = None if mask is None else np.asarray(mask.cpu().numpy() if hasattr(mask, "cpu") else mask)
    return Representations(layers, [f"layer.{i}" for i in range(len(layers))], fields, mask, "pt")


def _read_zarr(path: Path) -> Representations:
    from prh.io.features import FeatureStoreError, layer_reader, store_attrs

    try:
        attrs = store_attrs(path)
        read, widths, _ = layer_reader(path)
        layers = [read(i) for i in range(len(widths))]
    except FeatureStoreError as err:
        raise RepresentationError(str(err)) from err
    parameters = int(attrs.get("model_parameters", -1))  # -1: unknown
    fields = {"num_params": parameters} if parameters > 0 else {}
    fields |= {"source_dataset_fingerprint": attrs.get("dataset_fingerprint"), "source_model": attrs.get("model")}
    names = json.loads(attrs.get("layer_names", "[]")) or [f"layer.{i}" for i in range(len(layers))]
    return Representations(layers, names, fields, None, "zarr")


def read_representations(path: str | Path) -> Representations:
    """One model's per-layer representations from a file of any format of the module docstring (by suffix).
    Raises ``RepresentationError`` naming the file."""
    path = Path(path)
    suffix = ".zarr" if path.is_dir() else path.suffix.lower()
    if suffix not in SUFFIXES:
        raise RepresentationError(f"{path}: unknown representation format '{suffix}' (read: {', '.join(SUFFIXES)})")
    if suffix in (".pt", ".pth"):
        return _read_pt(path)
    if suffix == ".zarr":
        return _read_zarr(path)
    try:
        if suffix == ".npy":
            array = np.load(path, allow_pickle=False)
            stack = array[None] if array.ndim == 2 else array
            if stack.ndim != 3:
                raise RepresentationError(f"{path}: expected (L, N, D) or (N, D); found {array.shape}")
            stack = storable(stack, str(path))
            return Representations(list(stack), [f"layer.{i}" for i in range(len(stack))], {}, None, "npy")
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                return _from_arrays({k: archive[k] for k in archive.files}, str(path), "npz")
        from safetensors import safe_open
        from safetensors.numpy import load_file

        with safe_open(str(path), framework="numpy") as f:
            metadata = f.metadata() or {}
        return _from_arrays(load_file(str(path)), str(path), "safetensors", metadata)
    except RepresentationError:
        raise
    except Exception as err:  # a truncated archive, pickled objects in an npy, a bad header
        raise RepresentationError(f"{path}: cannot be read as {suffix} ({err.__class__.__name__}: {err})") from err


def check_representations(model: str, where: str, reps: Representations, n_samples: int) -> None:
    """One model's layers must each hold ``n_samples`` rows of finite values; else one ``RepresentationError``
    naming the model, the file, the expected and the found shape (or the first non-finite value)."""
    shapes = [tuple(layer.shape) for layer in reps.layers]
    wrong = [i for i, shape in enumerate(shapes) if shape[0] != n_samples]
    if wrong:
        found = shapes[wrong[0]]
        raise RepresentationError(
            f"model '{model}' ({where}): layer {wrong[0]} has shape {found}, expected ({n_samples}, D): "
            f"{n_samples} samples, one per row of the dataset ({len(shapes)} layers, first {shapes[0]})"
        )
    if reps.mask is not None and len(reps.mask) != n_samples:
        raise RepresentationError(
            f"model '{model}' ({where}): 'mask' has shape {tuple(reps.mask.shape)}, expected ({n_samples}, T)"
        )
    for i, layer in enumerate(reps.layers):
        finite = np.isfinite(layer).all(axis=1)
        if not finite.all():
            rows = np.flatnonzero(~finite)
            raise RepresentationError(
                f"model '{model}' ({where}): layer {i} ({reps.layer_names[i]}) has NaN or Inf at sample "
                f"{int(rows[0])} ({len(rows)} samples in all); shape {shapes[i]}"
            )


AUTHORS_POOLING = {"cls": "cls", "avg": "avg", "mean": "avg", "last": "none"}  # their extract_features names


def authors_file_name(model_id: str, pooling: str) -> str:
    """The authors' name for one model's features: ``{hub id, / replaced by _}_pool-{pooling}.pt``, the
    pooling as they name it (a mean over tokens is ``avg``; the last token, which they take with ``pool
    none``, is ``none``)."""
    return f"{model_id.replace('/', '_')}_pool-{AUTHORS_POOLING.get(pooling, pooling)}.pt"


def write_authors_pt(path: str | Path, layers: list[np.ndarray], num_params: int | None, **fields) -> Path:
    """Write ``layers`` in the authors' layout: ``feats`` a tensor (N, L, D) when every layer has one width,
    else a list of (N, D_l) tensors, in the stored dtype; ``num_params``, and each of ``fields`` that is not
    None (``bpb`` for a causal LM) as a tensor. Written to a temporary file renamed when complete."""
    import torch

    from prh.io.workflow import atomic_path

    tensors = [torch.from_numpy(np.ascontiguousarray(layer)) for layer in layers]
    widths = {t.shape[1] for t in tensors}
    feats = torch.stack(tensors, dim=1) if len(widths) == 1 else tensors
    content = {"feats": feats, "num_params": int(num_params) if num_params is not None else None}
    content |= {k: torch.tensor(v, dtype=torch.float64) for k, v in fields.items() if v is not None}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            torch.save(content, f)
    return Path(path)
