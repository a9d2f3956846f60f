"""The shapes world: scenes of coloured shapes sampled from a seed, rendered to images and captioned, each scene's
latent Z kept with it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from prh.data.store import CHUNK_SCENES, write_dataset

GENERATOR = "shapes-world/1"


IMAGE_SIZE = 224


SUPERSAMPLE = 4  # draw at 4x and box-filter down: anti-aliased edges, deterministic


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
