"""The dataset layout every stage reads: ``images.zarr``, ``samples.parquet`` and ``dataset.json`` in one folder."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import zarr

CHUNK_SCENES = 64


def write_dataset(out_dir: str | Path, size: int, image_size: int, chunks, record: dict) -> dict:
    """Write a dataset into ``out_dir``: ``images.zarr`` (N, S, S, 3) uint8 chunked along samples,
    ``samples.parquet`` (one row per sample: ``caption`` and/or labels and attributes) and ``dataset.json``
    (``record`` plus the fingerprint: sha256 over image bytes and each row as canonical JSON, in order).

    ``chunks`` yields ``(images (n, S, S, 3) uint8, rows)`` in sample order, one chunk at a time, so memory
    holds one chunk. The image store is renamed into place only when complete."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    images_path, tmp_path = out_dir / "images.zarr", out_dir / "images.zarr.partial"
    shutil.rmtree(tmp_path, ignore_errors=True)
    images = zarr.create_array(
        store=str(tmp_path),
        shape=(size, image_size, image_size, 3),
        chunks=(CHUNK_SCENES, image_size, image_size, 3),
        dtype="uint8",
        dimension_names=("sample", "height", "width", "channel"),
        fill_value=0,
    )
    digest, rows, start = hashlib.sha256(), [], 0
    for block, block_rows in chunks:
        images[start : start + len(block)] = block
        digest.update(block.tobytes())
        for row in block_rows:
            digest.update(json.dumps(row, sort_keys=True).encode() + b"\n")
        rows += [{"sample": start + i} | row for i, row in enumerate(block_rows)]
        start += len(block)
    if start != size:
        raise ValueError(f"{out_dir}: {start} samples written, expected {size}")
    record = record | {"size": size, "image_size": image_size, "fingerprint": "sha256:" + digest.hexdigest()}
    images.attrs.update(record)
    shutil.rmtree(images_path, ignore_errors=True)
    tmp_path.rename(images_path)
    import polars as pl  # imported where used: pair jobs read dataset records without it

    pl.DataFrame(rows).write_parquet(out_dir / "samples.parquet", statistics=False)
    (out_dir / "dataset.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def has_captions(kind: str) -> bool:
    """Whether datasets of ``kind`` pair each image with a caption (Places-365 has class labels only)."""
    return kind != "places365"


def open_images(dataset_dir: str | Path) -> zarr.Array:
    """The dataset's image array (N, H, W, 3) uint8, opened lazily."""
    return zarr.open_array(str(Path(dataset_dir) / "images.zarr"), mode="r")


def read_captions(dataset_dir: str | Path) -> list[str]:
    """The dataset's captions, in sample order."""
    import polars as pl

    return pl.read_parquet(Path(dataset_dir) / "samples.parquet", columns=["caption"])["caption"].to_list()


def write_text_set(out_dir: str | Path, table, record: dict, provenance: dict | None = None, basis: str = "") -> dict:
    """A text set that only language models read (a caption-density level, a colour set's sentences) in
    ``out_dir``: ``samples.parquet`` (``table``, with a ``caption`` column) and ``dataset.json`` (``record``
    with its size and a fingerprint over ``basis``, e.g. the parent dataset's fingerprint, and every caption).
    Both are written atomically. Returns the record."""
    from prh.io.workflow import atomic_path, write_table

    digest = hashlib.sha256(basis.encode())
    for caption in table["caption"]:
        digest.update(caption.encode() + b"\n")
    record = record | {"size": len(table), "fingerprint": "sha256:" + digest.hexdigest()}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_table(table, out_dir / "samples.parquet", provenance)
    with atomic_path(out_dir / "dataset.json") as tmp:
        tmp.write_text(json.dumps(record | {"provenance": provenance or {}}, indent=2, sort_keys=True) + "\n")
    return record


def read_record(dataset_dir: str | Path) -> dict:
    """The dataset's record: kind, size, seed and fingerprint."""
    return json.loads((Path(dataset_dir) / "dataset.json").read_text())
