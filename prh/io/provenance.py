"""Provenance records attached to every artifact: what made it, from what, with which software."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
from pathlib import Path

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


def config_hash(config: dict) -> str:
    """sha256 of the validated config (defaults filled in), keys sorted."""
    return "sha256:" + hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


GIT_STATE_VARIABLE = "PRH_GIT_STATE"


def git_state(folder: str | Path) -> dict:
    """The commit checked out in ``folder`` and whether tracked files differ from it ("unknown" outside git).
    A Snakemake run asks git once, at start-up, and hands the answer to its jobs in ``$PRH_GIT_STATE``
    (``share_git_state``): two git processes per job cost 0.1 s each."""
    shared = json.loads(os.environ.get(GIT_STATE_VARIABLE, "{}"))
    if shared.get("folder") == str(Path(folder).resolve()):
        return {"git_commit": shared["git_commit"], "git_dirty": shared["git_dirty"]}
    try:
        commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True)
        status = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        )
    except OSError:
        return {"git_commit": "unknown", "git_dirty": None}
    if commit.returncode != 0:
        return {"git_commit": "unknown", "git_dirty": None}
    return {"git_commit": commit.stdout.strip(), "git_dirty": bool(status.stdout.strip())}


def share_git_state(folder: str | Path) -> None:
    """Record ``git_state(folder)`` in the environment, where the jobs this process starts read it."""
    os.environ.pop(GIT_STATE_VARIABLE, None)
    os.environ[GIT_STATE_VARIABLE] = json.dumps({"folder": str(Path(folder).resolve()), **git_state(folder)})


def run_provenance(config: dict, workflow_dir: str | Path) -> dict:
    """What every artifact records about the run that made it: the config hash, the workflow's git commit
    and package versions."""
    return {"config_hash": config_hash(config), **git_state(workflow_dir), "versions": package_versions()}


def script_provenance(smk) -> dict:
    """``run_provenance`` from inside a Snakemake ``script:`` (its ``snakemake`` object); the workflow is the
    folder above the script's that holds the ``Snakefile`` (scripts live in ``scripts/<topic>/``)."""
    return run_provenance(dict(smk.config), workflow_dir(smk.scriptdir)) | {"rule": smk.rule}


def workflow_dir(folder: str | Path) -> Path:
    """The nearest folder at or above ``folder`` that holds a ``Snakefile``."""
    folder = Path(folder).resolve()
    return next((p for p in (folder, *folder.parents) if (p / "Snakefile").is_file()), folder)


def add_provenance(record_path: str | Path, provenance: dict) -> dict:
    """Add ``provenance`` to a dataset's ``dataset.json`` (its fingerprint covers the contents only)."""
    from prh.io.workflow import atomic_path

    record = json.loads(Path(record_path).read_text()) | {"provenance": provenance}
    with atomic_path(record_path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record
