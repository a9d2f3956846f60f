"""Dataset stage: the generated "shapes world", importers of hub datasets, and readers.

Every dataset is stored the same way: ``images.zarr`` (N, S, S, 3) uint8, ``samples.parquet`` (one row per
sample: its ``caption`` when the dataset has captions, and any labels or latent attributes) and
``dataset.json`` (what it is, and a fingerprint of its contents).

The shapes world is a tiny instance of the paper's Figure 1: a latent scene Z (objects with a shape,
colour, size, position and rotation on a background) is rendered to an image X and described by a
caption Y. Both modalities are projections of the same Z, so a vision model and a language model can
only align through what they recover of Z.

Every scene ``i`` is drawn from its own random stream ``SeedSequence([seed, i])``: the first scenes of a
dataset do not depend on its size, and the same seed gives byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import zarr
from PIL import Image, ImageDraw

GENERATOR = "shapes-world/1"
IMAGE_SIZE = 224
SUPERSAMPLE = 4  # draw at 4x and box-filter down: anti-aliased edges, deterministic
CHUNK_SCENES = 64

SHAPES = ("circle", "square", "triangle", "star", "pentagon", "hexagon", "diamond", "cross")
COLOURS = {
    "red": (214, 39, 40),
    "orange": (245, 133, 24),
    "yellow": (237, 201, 39),
    "green": (44, 160, 44),
    "blue": (31, 84, 200),
    "purple": (128, 52, 168),
    "pink": (240, 110, 170),
    "brown": (128, 78, 36),
    "black": (24, 24, 24),
    "cyan": (23, 190, 207),
}
SIZES = {"small": (13.0, 19.0), "medium": (23.0, 31.0), "large": (36.0, 46.0)}  # radius in pixels
BACKGROUND_COLOURS = {
    "white": (248, 248, 246),
    "light gray": (206, 206, 206),
    "beige": (232, 222, 196),
    "pale blue": (206, 226, 242),
}
TEXTURES = ("plain", "striped", "checkered", "dotted")
NUMBER_WORDS = {1: "a", 2: "two", 3: "three", 4: "four"}
PLURALS = {"cross": "crosses"}


@dataclass(frozen=True)
class SceneObject:
    shape: str
    colour: str
    size: str
    x: float  # centre, pixels from the left edge
    y: float  # centre, pixels from the top edge
    radius: float
    rotation: float  # degrees, counter-clockwise


@dataclass(frozen=True)
class Scene:
    background: str
    texture: str
    objects: tuple[SceneObject, ...]


def sample_scene(seed: int, index: int, stream: int | None = None) -> Scene:
    """Draw latent scene ``index`` of the world with ``seed``: 1–4 non-overlapping objects. A ``stream``
    number gives an independent world with the same seed (the probe tasks use one per attribute)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, index] + ([] if stream is None else [stream])))
    background = str(rng.choice(list(BACKGROUND_COLOURS)))
    texture = str(rng.choice(TEXTURES))
    n_objects = int(rng.integers(1, 5))
    objects: list[SceneObject] = []
    for _ in range(n_objects):
        shape = str(rng.choice(SHAPES))
        colour = str(rng.choice(list(COLOURS)))
        size = str(rng.choice(list(SIZES)))
        radius = float(rng.uniform(*SIZES[size]))
        rotation = float(rng.uniform(0.0, 360.0))
        for _attempt in range(50):  # rejection sampling: fully inside, no overlap
            x, y = rng.uniform(radius + 2, IMAGE_SIZE - radius - 2, size=2)
            if all(math.hypot(x - o.x, y - o.y) > radius + o.radius + 4 for o in objects):
                objects.append(SceneObject(shape, colour, size, float(x), float(y), radius, rotation))
                break
    return Scene(background, texture, tuple(objects))


def _shape_polygon(obj: SceneObject, scale: float) -> list[tuple[float, float]]:
    """Vertices of ``obj`` in supersampled pixel coordinates (circle excluded)."""
    star = [1.0 if i % 2 == 0 else 0.45 for i in range(10)]
    profiles = {  # (radii of the vertices, angle offset in degrees)
        "square": ([1.0] * 4, 45.0),
        "triangle": ([1.0] * 3, 90.0),
        "pentagon": ([1.0] * 5, 90.0),
        "hexagon": ([1.0] * 6, 0.0),
        "star": (star, 90.0),
        "diamond": ([1.0, 0.6, 1.0, 0.6], 90.0),
    }
    cx, cy, r = obj.x * scale, obj.y * scale, obj.radius * scale
    if obj.shape == "cross":
        w = 0.33
        local = [
            (w, 1),
            (w, w),
            (1, w),
            (1, -w),
            (w, -w),
            (w, -1),
            (-w, -1),
            (-w, -w),
            (-1, -w),
            (-1, w),
            (-w, w),
            (-w, 1),
        ]
    else:
        radii, offset = profiles[obj.shape]
        n = len(radii)
        local = [
            (rad * math.cos(math.radians(offset + 360.0 * i / n)), rad * math.sin(math.radians(offset + 360.0 * i / n)))
            for i, rad in enumerate(radii)
        ]
    theta = math.radians(obj.rotation)
    cos, sin = math.cos(theta), math.sin(theta)
    # y grows downwards in image coordinates, so a counter-clockwise turn flips the sign of sin.
    return [(cx + r * (u * cos - v * sin), cy - r * (u * sin + v * cos)) for u, v in local]


def _draw_background(draw: ImageDraw.ImageDraw, scene: Scene, side: int, scale: int) -> None:
    base = np.array(BACKGROUND_COLOURS[scene.background])
    shade = tuple(int(c) for c in np.clip(base - 28, 0, 255))
    draw.rectangle([0, 0, side, side], fill=tuple(int(c) for c in base))
    step = 14 * scale
    if scene.texture == "striped":
        for y0 in range(0, side, 2 * step):
            draw.rectangle([0, y0, side, y0 + step - 1], fill=shade)
    elif scene.texture == "checkered":
        for i, y0 in enumerate(range(0, side, step)):
            for j, x0 in enumerate(range(0, side, step)):
                if (i + j) % 2:
                    draw.rectangle([x0, y0, x0 + step - 1, y0 + step - 1], fill=shade)
    elif scene.texture == "dotted":
        dot = 2 * scale
        for y0 in range(step // 2, side, step):
            for x0 in range(step // 2, side, step):
                draw.ellipse([x0 - dot, y0 - dot, x0 + dot, y0 + dot], fill=shade)


def render_scene(scene: Scene) -> np.ndarray:
    """Render ``scene`` to an RGB uint8 array (224, 224, 3), anti-aliased by supersampling."""
    side = IMAGE_SIZE * SUPERSAMPLE
    image = Image.new("RGB", (side, side))
    draw = ImageDraw.Draw(image)
    _draw_background(draw, scene, side, SUPERSAMPLE)
    for obj in scene.objects:
        fill = COLOURS[obj.colour]
        if obj.shape == "circle":
            cx, cy, r = (v * SUPERSAMPLE for v in (obj.x, obj.y, obj.radius))
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
        else:
            draw.polygon(_shape_polygon(obj, SUPERSAMPLE), fill=fill)
    return np.asarray(image.reduce(SUPERSAMPLE), dtype=np.uint8)


def _group_phrase(count: int, size: str, colour: str, shape: str) -> str:
    noun = shape if count == 1 else PLURALS.get(shape, shape + "s")
    return f"{NUMBER_WORDS[count]} {size} {colour} {noun}"


def _relation(a: tuple[float, float], b: tuple[float, float]) -> str:
    """Where point ``a`` lies relative to point ``b`` along the dominant axis (y grows downwards)."""
    dx, dy = a[0] - b[0], a[1] - b[1]
    if abs(dy) >= abs(dx):
        return "above" if dy < 0 else "below"
    return "to the left of" if dx < 0 else "to the right of"


def caption_scene(scene: Scene) -> str:
    """Describe ``scene`` in English, e.g. "Two small red circles above a large blue square on a ...".

    Identical objects (same size, colour and shape) are counted together; the group holding the largest
    object is the anchor and every other group is placed relative to it ("... above the square") by the
    centroids, along the axis where they differ most.
    """
    groups: dict[tuple[str, str, str], list[SceneObject]] = {}
    for obj in sorted(scene.objects, key=lambda o: -o.radius):
        groups.setdefault((obj.size, obj.colour, obj.shape), []).append(obj)
    phrases, centres = [], []
    for (size, colour, shape), members in groups.items():
        phrases.append(_group_phrase(len(members), size, colour, shape))
        centres.append((np.mean([o.x for o in members]), np.mean([o.y for o in members])))
    clauses = [phrases[0]]
    if len(phrases) > 1:
        (_, _, shape), members = next(iter(groups.items()))
        anchor = f"the {shape}" if len(members) == 1 else f"the {PLURALS.get(shape, shape + 's')}"
        clauses = [f"{phrases[1]} {_relation(centres[1], centres[0])} {phrases[0]}"]
        clauses += [f"{p} {_relation(c, centres[0])} {anchor}" for p, c in zip(phrases[2:], centres[2:])]
    text = clauses[0] if len(clauses) == 1 else ", ".join(clauses[:-1]) + " and " + clauses[-1]
    separator = "," if len(clauses) > 1 else ""
    text += f"{separator} on a {scene.texture} {scene.background} background."
    return text[0].upper() + text[1:]


TRAIN_STREAM = 100  # the ladder's training (and validation) scenes: a stream no evaluation set uses
POSITION_BINS = 4  # the largest object's centre on a 4 x 4 grid

# Scene attributes a vision model can be trained to read from its image: name -> number of classes.
ATTRIBUTES = {
    "count": 4,  # 1-4 objects
    "shape": len(SHAPES),  # of the largest object
    "colour": len(COLOURS),
    "size": len(SIZES),
    "background": len(BACKGROUND_COLOURS) * len(TEXTURES),  # colour x texture
    "position": POSITION_BINS**2,
}


def attribute_label(scene, attribute: str) -> int:
    """The class of ``scene`` for one training head (see ``ATTRIBUTES``)."""
    if attribute == "count":
        return len(scene.objects) - 1
    if attribute == "background":
        return list(BACKGROUND_COLOURS).index(scene.background) * len(TEXTURES) + TEXTURES.index(scene.texture)
    largest = max(scene.objects, key=lambda o: o.radius)
    if attribute == "shape":
        return SHAPES.index(largest.shape)
    if attribute == "colour":
        return list(COLOURS).index(largest.colour)
    if attribute == "size":
        return list(SIZES).index(largest.size)
    if attribute == "position":
        col = min(int(largest.x * POSITION_BINS / IMAGE_SIZE), POSITION_BINS - 1)
        row = min(int(largest.y * POSITION_BINS / IMAGE_SIZE), POSITION_BINS - 1)
        return row * POSITION_BINS + col
    raise ValueError(f"unknown training attribute '{attribute}' (one of {', '.join(ATTRIBUTES)})")


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


def scene_from_row(row: dict) -> Scene:
    """The latent scene stored in a ``samples.parquet`` row of the shapes world."""
    objects = tuple(SceneObject(**obj) for obj in row["objects"])
    return Scene(row["background"], row["texture"], objects)


def generate_shapes_world(out_dir: str | Path, size: int, seed: int, stream: int | None = None) -> dict:
    """Render ``size`` scenes into ``out_dir`` (see ``write_dataset``), with the latent attributes of each
    scene beside its caption. ``stream`` draws an independent world with the same seed (the training set's).
    Returns the dataset record."""

    def chunks():
        for start in range(0, size, CHUNK_SCENES):
            scenes = [sample_scene(seed, i, stream) for i in range(start, min(start + CHUNK_SCENES, size))]
            rows = [
                {
                    "caption": caption_scene(scene),
                    "background": scene.background,
                    "texture": scene.texture,
                    "n_objects": len(scene.objects),
                    "objects": [asdict(o) for o in scene.objects],
                }
                for scene in scenes
            ]
            yield np.stack([render_scene(scene) for scene in scenes]), rows

    record = {"kind": "shapes", "generator": GENERATOR, "seed": seed}
    if stream is not None:
        record["stream"] = stream
    return write_dataset(out_dir, size, IMAGE_SIZE, chunks(), record)


def square_image(image: Image.Image, size: int) -> np.ndarray:
    """RGB, short side resized to ``size`` (bicubic, anti-aliased), centre-cropped to size × size."""
    image = image.convert("RGB")
    scale = size / min(image.size)
    width, height = max(size, round(image.width * scale)), max(size, round(image.height * scale))
    image = image.resize((width, height), Image.Resampling.BICUBIC)
    left, top = (width - size) // 2, (height - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)


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


def has_captions(kind: str) -> bool:
    """Whether datasets of ``kind`` pair each image with a caption (Places-365 has class labels only)."""
    return kind != "places365"


def import_places365(out_dir: str | Path, spec: dict) -> dict:
    """Import a seeded subset of Places-365 (Zhou et al., 2017), the paper's vision–vision set (App. C.1:
    1,000 validation images), from its official layout in ``root``: ``categories_places365.txt``,
    ``places365_val.txt`` and ``val_256/`` (``small``) or ``val_large/``. When they are missing and
    ``download`` is on, torchvision fetches them from the authors' server (md5-checked). Images are squared to
    ``image_size``; ``samples.parquet`` holds each image's ``label``, ``class`` and ``file``."""
    root, split = Path(spec["root"]), spec["split"]
    categories = root / "categories_places365.txt"
    listing = root / f"places365_{split}.txt"
    images_dir = root / f"{split}_{'256' if spec['small'] else 'large'}"
    if not (categories.is_file() and listing.is_file() and images_dir.is_dir()) and spec["download"]:
        try:
            from torchvision.datasets import Places365

            Places365(str(root), split=split, small=spec["small"], download=True)
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
    from prh.workflow import atomic_path, write_table

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


def build_dataset(out_dir: str | Path, spec: dict) -> dict:
    """The dataset stage for one validated config entry: generate the shapes world or import a dataset."""
    if spec["kind"] == "shapes":
        return generate_shapes_world(out_dir, spec["size"], spec["seed"])
    if spec["kind"] == "places365":
        return import_places365(out_dir, spec)
    return import_hf_dataset(out_dir, spec)
