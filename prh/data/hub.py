"""Hub datasets imported into the dataset layout: image-text tables from the Hugging Face hub, Places-365 from its
files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from prh.data.store import CHUNK_SCENES, write_dataset


def square_image(image: Image.Image, size: int) -> np.ndarray:
    """RGB, short side resized to ``size`` (bicubic, anti-aliased), centre-cropped to size × size."""
    image = image.convert("RGB")
    scale = size / min(image.size)
    width, height = max(size, round(image.width * scale)), max(size, round(image.height * scale))
    image = image.resize((width, height), Image.Resampling.BICUBIC)
    left, top = (width - size) // 2, (height - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)


def fetched_dataset(repo_id: str, revision: str, split: str | None = None) -> tuple[Path, list[str]] | None:
    """The snapshot of a hub dataset the workflow's fetch stage put in the hub cache and the files of
    ``split`` in it (all data files when the repository names no split), found without any network call; None
    when it is not there and the hub may be asked (outside the workflow). Workflow jobs run with
    ``HF_HUB_OFFLINE=1``: there a missing snapshot is an error saying how to fetch it."""
    from huggingface_hub import DatasetCard, constants

    from prh.io.fetch import CARD_FILES, snapshot_folder, split_files

    try:
        folder = snapshot_folder(repo_id, revision, "dataset")
    except FileNotFoundError:
        if constants.HF_HUB_OFFLINE:
            raise
        return None
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name not in CARD_FILES)
    card = DatasetCard.load(folder / "README.md").data.to_dict() if (folder / "README.md").is_file() else {}
    by_split = split_files(names, card)
    return folder, (by_split.get(split, []) if by_split and split else names)


def load_hf_table(spec: dict, split: str, what: str):
    """One split of a Hugging Face dataset: from the hub (``id`` at ``revision``) or from a folder written by
    ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk`` (``path``). Failing to load raises one error that
    names ``what`` and says how to get the data offline."""
    try:
        import datasets
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError("importing a hub dataset needs the `datasets` package") from err
    where = spec.get("path") or f"{spec['id']}@{spec['revision']}"
    try:
        if spec.get("path"):
            table = datasets.load_from_disk(spec["path"])
        elif (fetched := fetched_dataset(spec["id"], spec["revision"], split)) is not None:
            folder, files = fetched
            table = datasets.load_dataset(str(folder), data_files={split: files}, split=split)
        else:
            table = datasets.load_dataset(spec["id"], revision=spec["revision"], split=split)
        if isinstance(table, datasets.DatasetDict):
            table = table[split]
    except Exception as err:
        raise RuntimeError(
            f"{what}: cannot load split '{split}' of {where} ({err.__class__.__name__}: {err}). With internet "
            f"it downloads from the hub; offline, save it once with `datasets.load_dataset(...).save_to_disk("
            f"folder)` and set `path: folder`."
        ) from err
    return table


def hf_subset(table, spec: dict):
    """The rows of a hub table that the dataset ``spec`` holds: all, or a seeded subset of ``size`` in table
    order (the caption-density levels of a hub dataset read the same rows)."""
    where = spec.get("path") or f"{spec['id']}@{spec['revision']}"
    size = spec.get("size") or len(table)
    if size > len(table):
        raise ValueError(f"dataset '{spec['name']}': size {size} exceeds the {len(table)} samples of {where}")
    if size < len(table):
        indices = np.sort(np.random.default_rng(spec["seed"]).choice(len(table), size, replace=False))
        table = table.select(indices.tolist())
    return table


def import_hf_dataset(out_dir: str | Path, spec: dict) -> dict:
    """Import an image–caption dataset from the Hugging Face hub (``id`` at ``revision``) or from a folder
    written by ``Dataset.save_to_disk`` (``path``): images are squared to ``image_size``, the caption is
    ``text[caption_index]`` when the text column holds a list (WIT-1024 as the authors publish it:
    ``minhuh/prh``, revision ``wit_1024``), and ``size`` takes a seeded subset."""
    where = spec.get("path") or f"{spec['id']}@{spec['revision']}"
    table = hf_subset(load_hf_table(spec, spec["split"], f"dataset '{spec['name']}'"), spec)
    size = len(table)
    image_column, text_column, image_size = spec["image_column"], spec["text_column"], spec["image_size"]

    def caption(value) -> str:
        return str(value[spec["caption_index"]] if isinstance(value, (list, tuple)) else value)

    def chunks():
        for start in range(0, size, CHUNK_SCENES):
            batch = table[start : min(start + CHUNK_SCENES, size)]
            block = np.stack([square_image(image, image_size) for image in batch[image_column]])
            yield block, [{"caption": caption(text)} for text in batch[text_column]]

    record = {"kind": spec["kind"], "source": where, "split": spec["split"], "seed": spec["seed"]}
    return write_dataset(out_dir, size, image_size, chunks(), record | {"caption_index": spec["caption_index"]})


PLACES365_URL = "http://data.csail.mit.edu/places/places365/"


def import_places365(out_dir: str | Path, spec: dict) -> dict:
    """Import a seeded subset of Places-365 (Zhou et al., 2017), the paper's vision–vision set (App. C.1:
    1,000 validation images), from its official layout in ``root``: ``categories_places365.txt``,
    ``places365_val.txt`` and ``val_256/`` (``small``) or ``val_large/``. When they are missing and
    ``download`` is on, torchvision fetches them from the authors' server (md5-checked; in the workflow, its fetch
    stage, before this job, which runs offline). Images are squared to
    ``image_size``; ``samples.parquet`` holds each image's ``label``, ``class`` and ``file``."""
    root, split = Path(spec["root"]), spec["split"]
    categories = root / "categories_places365.txt"
    listing = root / f"places365_{split}.txt"
    images_dir = root / f"{split}_{'256' if spec['small'] else 'large'}"
    from huggingface_hub import constants

    # In the workflow the fetch stage downloaded it and jobs run offline: only a library call downloads here.
    missing = not (categories.is_file() and listing.is_file() and images_dir.is_dir())
    if missing and spec["download"] and not constants.HF_HUB_OFFLINE:
        try:
            from prh.io.fetch import fetch_places365

            fetch_places365(spec)
        except Exception as err:  # no network, a refused connection, a bad checksum
            spec = spec | {"download_error": f"{err.__class__.__name__}: {err}"}
    if not (categories.is_file() and listing.is_file() and images_dir.is_dir()):
        tried = f" Downloading failed: {spec['download_error']}." if "download_error" in spec else ""
        raise RuntimeError(
            f"dataset '{spec['name']}': Places-365 {split} is not in {root} (it needs {categories.name}, "
            f"{listing.name} and {images_dir.name}/).{tried} With internet, `download: true` fetches it; "
            f"offline, download filelist_places365-standard.tar and {images_dir.name}.tar from {PLACES365_URL} "
            f"and unpack both into {root}."
        )
    names = {}
    for line in categories.read_text().splitlines():
        category, index = line.split()
        names[int(index)] = category[3:]  # "/a/airfield" -> "airfield"
    entries = [line.split() for line in listing.read_text().splitlines() if line.strip()]
    size = spec.get("size") or len(entries)
    if size > len(entries):
        raise ValueError(f"dataset '{spec['name']}': size {size} exceeds the {len(entries)} images of {listing}")
    chosen = np.sort(np.random.default_rng(spec["seed"]).choice(len(entries), size, replace=False))
    entries = [entries[i] for i in chosen]

    def chunks():
        for start in range(0, size, CHUNK_SCENES):
            block_entries = entries[start : start + CHUNK_SCENES]
            block = []
            for file, _ in block_entries:
                try:
                    with Image.open(images_dir / file) as image:
                        block.append(square_image(image, spec["image_size"]))
                except OSError as err:
                    raise RuntimeError(f"dataset '{spec['name']}': cannot decode {images_dir / file}: {err}") from err
            rows = [{"label": int(label), "class": names[int(label)], "file": file} for file, label in block_entries]
            yield np.stack(block), rows

    record = {"kind": "places365", "source": f"{PLACES365_URL}{images_dir.name}", "split": split, "seed": spec["seed"]}
    return write_dataset(out_dir, size, spec["image_size"], chunks(), record)
