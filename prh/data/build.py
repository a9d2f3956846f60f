"""The dataset job: one configured dataset built into ``data/{name}``, whatever its kind."""

from __future__ import annotations

from pathlib import Path

from prh.data.hub import import_hf_dataset, import_places365
from prh.data.shapes import generate_shapes_world


def build_dataset(out_dir: str | Path, spec: dict) -> dict:
    """The dataset stage for one validated config entry: generate the shapes world or import a dataset."""
    if spec["kind"] == "shapes":
        return generate_shapes_world(out_dir, spec["size"], spec["seed"])
    if spec["kind"] == "places365":
        return import_places365(out_dir, spec)
    return import_hf_dataset(out_dir, spec)
