"""Provenance records attached to every artifact: what made it, from what, with which software."""

from __future__ import annotations

import importlib.metadata
import json
import platform

import prh

TRACKED_PACKAGES = ("numpy", "torch", "timm", "transformers", "zarr", "xarray", "polars", "scikit-learn")


def package_versions(names=TRACKED_PACKAGES) -> dict[str, str]:
    """Installed version of each distribution in ``names`` ("absent" when it is not installed)."""
    versions = {"python": platform.python_version(), "prh": prh.__version__}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def as_attrs(record: dict) -> dict:
    """Flatten a provenance record into netCDF/Zarr-safe attributes: nested values become JSON strings."""
    flat = {}
    for key, value in record.items():
        if isinstance(value, (dict, list, tuple)) or value is None or isinstance(value, bool):
            flat[key] = json.dumps(value, sort_keys=True)
        else:
            flat[key] = value
    return flat
