"""Feature stores: one Zarr store per (dataset, model) holding the pooled output of every layer.

Layout, opened with ``xr.open_zarr(path)``::

    features (layer, sample, dim)   float32 or float16, chunked (1, chunk, dim)
    width    (layer,)               the true width of each layer; entries beyond it are zero
    mask     (sample, token)        only for features read from the authors' files: their attention masks
    attrs                           layer_names and provenance (model, dataset fingerprint, versions)

Layers of one model can differ in width (CNN blocks); they share one array, zero-padded to the widest
layer. Padding is stored as zeros, which compress to almost nothing, and readers slice it away with
``width`` (``read_layers``), so no metric ever sees it.

Writes stream: ``FeatureWriter`` buffers one chunk of samples, appends it, and only renames the store to
its final path once the last sample is in, so a partial store is never mistaken for a complete one.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import zarr

STORAGE_DTYPES = ("float32", "float16")


class FeatureWriter:
    """Stream per-layer batches ``[(B, D_l), ...]`` into a features store at ``path``."""

    def __init__(
        self,
        path: str | Path,
        n_samples: int,
        *,
        dtype: str = "float32",
        chunk: int = 256,
        attrs: dict | None = None,
        extras: dict | None = None,
    ):
        if dtype not in STORAGE_DTYPES:
            raise ValueError(f"storage dtype '{dtype}' is not one of {STORAGE_DTYPES}")
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.n_samples, self.dtype, self.chunk = n_samples, np.dtype(dtype), chunk
        self.attrs = dict(attrs or {})
        self.extras = dict(extras or {})  # name -> (dims, array): per-sample arrays kept beside the features
        self.widths: list[int] | None = None
        self._buffer: list[list[np.ndarray]] = []
        self._buffered = 0
        self._written = 0

    def __enter__(self) -> FeatureWriter:
        shutil.rmtree(self.partial, ignore_errors=True)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.close()
        finally:
            shutil.rmtree(self.partial, ignore_errors=True)  # gone after the rename; else discarded

    def write(self, layers: list[np.ndarray]) -> None:
        """Add one batch: a list with one (B, D_l) array per layer, samples in dataset order."""
        widths = [int(a.shape[1]) for a in layers]
        if self.widths is None:
            self.widths = widths
        elif widths != self.widths:
            raise ValueError(f"layer widths changed between batches: {self.widths} then {widths}")
        self._buffer.append(layers)
        self._buffered += layers[0].shape[0]
        while self._buffered >= self.chunk:
            self._flush(self.chunk)

    def _flush(self, n: int) -> None:
        stacked = [np.concatenate([batch[i] for batch in self._buffer]) for i in range(len(self.widths))]
        head, tail = [a[:n] for a in stacked], [a[n:] for a in stacked]
        self._buffer = [tail] if len(tail[0]) else []
        self._buffered -= n
        block = np.zeros((len(self.widths), n, max(self.widths)), dtype=self.dtype)
        for i, a in enumerate(head):
            block[i, :, : a.shape[1]] = a
        import xarray as xr

        ds = xr.Dataset(
            {"features": (("layer", "sample", "dim"), block)},
            coords={"layer": np.arange(len(self.widths)), "sample": np.arange(self._written, self._written + n)},
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "consolidated metadata is not in the v3 spec"
            if self._written == 0:
                ds = ds.assign_coords(width=("layer", np.asarray(self.widths, dtype=np.int64)))
                chunks = (1, self.chunk, block.shape[2])
                ds.to_zarr(self.partial, mode="w", zarr_format=3, encoding={"features": {"chunks": chunks}})
            else:
                ds.to_zarr(self.partial, append_dim="sample")
        self._written += n

    def close(self) -> None:
        if self._buffered:
            self._flush(self._buffered)
        if self._written != self.n_samples:
            raise ValueError(f"{self.path}: wrote {self._written} samples, expected {self.n_samples}")
        for name, (dims, values) in self.extras.items():
            zarr.create_array(str(self.partial), name=name, data=np.asarray(values), dimension_names=dims)
        # Attributes last: xarray's appends reset them, and a store with its attrs is a finished one.
        zarr.open_group(str(self.partial), mode="r+").attrs.update(self.attrs)
        if self.extras:  # xarray's consolidated listing predates them
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                zarr.consolidate_metadata(str(self.partial))
        shutil.rmtree(self.path, ignore_errors=True)
        self.partial.rename(self.path)


class FeatureStoreError(ValueError):
    """A features or state store is missing, incomplete, damaged, holds non-finite values, or does not match
    its dataset; the message names the store (and the array, layer and sample where it applies) and what to do."""


DAMAGED = "the store is damaged (a truncated or corrupt chunk): delete it and rerun the job that writes it"


def read_array(path: str | Path, array, name: str, selection=...) -> np.ndarray:
    """``array[selection]`` of the store at ``path``, or one ``FeatureStoreError`` naming the store, the array
    and what to do (zarr's own error, a codec's "Zstd decompression error", names neither)."""
    try:
        return array[selection]
    except Exception as err:
        raise FeatureStoreError(
            f"{path}: array '{name}' cannot be read ({err.__class__.__name__}: {err}); {DAMAGED}"
        ) from None


def open_features(path: str | Path):
    """Open a features store lazily as an ``xarray.Dataset``. A store without the attributes written last
    (``model``) was never finished and is refused."""
    import xarray as xr

    store_attrs(path)  # a clear error for a missing, unreadable or unfinished store
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return xr.open_zarr(path, consolidated=None)


def _open_group(path: str | Path) -> zarr.Group:
    """The store's Zarr group; refused when it cannot be opened or was never finished. Read with zarr alone,
    so jobs that only read features (states, pairs) do not import xarray and pandas."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            group = zarr.open_group(str(path), mode="r")
    except Exception as err:
        message = f"{path}: cannot be opened as a features store ({err.__class__.__name__}: {err})"
        raise FeatureStoreError(message) from None
    if "model" not in group.attrs:
        raise FeatureStoreError(f"{path}: incomplete features store (its final attributes are missing); rerun its job")
    return group


def _array(path: str | Path, group, name: str):
    """The group's array ``name`` (its metadata read), or one ``FeatureStoreError`` naming store and array."""
    try:
        return group[name]
    except Exception as err:
        raise FeatureStoreError(
            f"{path}: array '{name}' cannot be opened ({err.__class__.__name__}: {err}); {DAMAGED}"
        ) from None


def store_attrs(path: str | Path) -> dict:
    """The attributes (provenance, layer names) of a finished features store, plus its ``n_samples``."""
    group = _open_group(path)
    return dict(group.attrs) | {"n_samples": int(_array(path, group, "features").shape[1])}


def store_dtype(path: str | Path) -> np.dtype:
    """The dtype a store holds its features in (float32 or float16): the precision they can resolve."""
    return np.dtype(_array(path, _open_group(path), "features").dtype)


def read_layers(path: str | Path, dtype=np.float64) -> list[np.ndarray]:
    """Every layer of a store as a list of (N, D_l) arrays, padding removed, cast to ``dtype``. Raises
    ``FeatureStoreError`` for a store that cannot be read or holds NaN/Inf (naming layer and sample)."""
    group = _open_group(path)
    widths, data = (read_array(path, _array(path, group, name), name) for name in ("width", "features"))
    layers = [np.ascontiguousarray(data[i, :, :w], dtype=dtype) for i, w in enumerate(widths)]
    for i, layer in enumerate(layers):
        finite = np.isfinite(layer).all(axis=1)
        if not finite.all():
            names = json.loads(group.attrs.get("layer_names", "[]")) or [str(j) for j in range(len(layers))]
            raise FeatureStoreError(
                f"{path}: layer {i} ({names[i]}) has NaN or Inf at sample {int(np.flatnonzero(~finite)[0])} "
                f"({int((~finite).sum())} samples in all)"
            )
    return layers


def layer_reader(path: str | Path):
    """Read one layer, or a range of its samples, at a time: ``read(i, start=0, stop=None)`` gives a (rows, D_i)
    array in the stored dtype, padding removed. Returns ``(read, widths, n_samples)``."""
    group = _open_group(path)
    features = _array(path, group, "features")
    widths = [int(w) for w in read_array(path, _array(path, group, "width"), "width")]

    def read(i: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        return np.ascontiguousarray(
            read_array(path, features, "features", (i, slice(start, stop), slice(0, widths[i])))
        )

    return read, widths, int(features.shape[1])


def check_store(path: str | Path, record: dict, dataset: str) -> dict:
    """Check that a store belongs to the dataset of ``record`` (its ``dataset.json``): same number of
    samples, same fingerprint. Returns the store's attributes (``store_attrs``)."""
    attrs = store_attrs(path)
    n = attrs["n_samples"]
    if n != record["size"]:
        raise FeatureStoreError(f"{path}: {n} samples, but dataset '{dataset}' has {record['size']}; rerun its job")
    if attrs.get("dataset_fingerprint") != record["fingerprint"]:
        raise FeatureStoreError(f"{path}: computed on another version of dataset '{dataset}'; rerun its job")
    return attrs
