"""Colour (the paper's Fig. 8, Section 4.2 and App. D): representations of a set of colour words from pixel
co-occurrence and from language models, each put in 3-D by MDS and fitted to CIELAB.

* Colours: names of the XKCD colour survey with their sRGB values (``matplotlib.colors.XKCD_COLORS``),
  converted to CIELAB (D65, ``srgb_to_lab``).
* Vision: pixel colours quantised on a grid in RGB space (``bins`` per channel); ``pairs`` pixel pairs at
  most ``radius`` pixels apart, drawn uniformly over the images (seeded), give a table of co-occurrence
  counts and its PMI (``cooccurrence``, ``pmi``). A colour's row is its grid cell's. Dissimilarity:
  ``c − K_PMI`` with ``c`` the largest K_PMI among the colours (App. D), 0 on the diagonal. Cells that never
  co-occur get a pseudo-count (``smoothing``, added to every cell) so that K_PMI is finite.
* Language: each colour word in three template sentences ("The color <col>.", "This color is <col>.",
  "The color of this thing is <col>."), each sentence's last four layers (mean-pooled over tokens)
  concatenated, the three sentences averaged; dissimilarity: Euclidean distance (App. D).
* Every dissimilarity matrix goes through metric MDS to 3-D (``mds``: the best of ``fits`` seeded fits),
  then a Kabsch–Umeyama similarity fit (rotation, scale, translation, reflection allowed) onto the colours'
  CIELAB coordinates (``kabsch_umeyama``). Numbers per representation: the Procrustes disparity of that fit
  (the residual over the CIELAB points' spread, ``procrustes_disparity``) and the RSA Spearman ρ between its
  dissimilarities and CIELAB distances, each with a permutation p-value over the colour labels.
"""

from __future__ import annotations

import numpy as np

TEMPLATES = ("The color {}.", "This color is {}.", "The color of this thing is {}.")
# Photographs that ship inside scikit-learn, scikit-image and matplotlib (no download): the offline vision side.
PHOTOGRAPHS = ("china.jpg", "flower.jpg", "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg",
               "motorcycle_left.png", "grace_hopper.jpg")  # fmt: skip


def xkcd_rgb(names) -> np.ndarray:
    """sRGB (n, 3) in [0, 1] of XKCD colour names; unknown names raise one error naming all of them."""
    from matplotlib.colors import XKCD_COLORS, to_rgb

    unknown = [name for name in names if f"xkcd:{name}" not in XKCD_COLORS]
    if unknown:
        raise ValueError(f"not XKCD colour names: {', '.join(map(repr, unknown))}")
    return np.array([to_rgb(XKCD_COLORS[f"xkcd:{name}"]) for name in names])


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (L*, a*, b*) of sRGB values in [0, 1] (IEC 61966-2-1 decoding, D65 white, CIE 1976)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    to_xyz = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                       [0.0193339, 0.1191920, 0.9503041]])  # fmt: skip
    white = np.array([0.95047, 1.0, 1.08883])
    t = linear @ to_xyz.T / white
    delta = 6 / 29
    f = np.where(t > delta**3, np.cbrt(t), t / (3 * delta**2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def quantise(rgb: np.ndarray, bins: int) -> np.ndarray:
    """Grid cell (0 .. bins³ − 1) of uint8 RGB values (..., 3): each channel in ``bins`` equal steps."""
    cell = np.asarray(rgb, dtype=np.int64) * bins // 256
    return (cell[..., 0] * bins + cell[..., 1]) * bins + cell[..., 2]


def colour_cells(rgb: np.ndarray, bins: int) -> np.ndarray:
    """The grid cells of colours given as sRGB in [0, 1]."""
    return quantise(np.round(np.asarray(rgb) * 255), bins)


def photographs() -> list[np.ndarray]:
    """The natural photographs of ``PHOTOGRAPHS``, RGB uint8."""
    from pathlib import Path

    import matplotlib
    import skimage.data
    import sklearn.datasets
    from PIL import Image

    folders = [Path(sklearn.datasets.__file__).parent / "images", Path(skimage.data.__file__).parent,
               Path(matplotlib.get_data_path()) / "sample_data"]  # fmt: skip
    paths = [next(f / name for f in folders if (f / name).is_file()) for name in PHOTOGRAPHS]
    return [np.asarray(Image.open(path).convert("RGB")) for path in paths]


def disc_offsets(radius: int) -> np.ndarray:
    """Integer offsets (dy, dx) with 0 < dy² + dx² ≤ radius²."""
    r = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(r, r, indexing="ij")
    keep = (dy**2 + dx**2 <= radius**2) & ((dy != 0) | (dx != 0))
    return np.stack([dy[keep], dx[keep]], axis=1)


def cooccurrence(images, bins: int, radius: int, pairs: int, seed: int) -> np.ndarray:
    """Symmetric counts (bins³, bins³) of the cells of ``pairs`` pixel pairs: a pixel drawn uniformly over all
    images' pixels, its partner uniformly among the pixels at most ``radius`` away (inside the image); each
    pair counted in both orders."""
    rng = np.random.default_rng(seed)
    sizes = np.array([im.shape[0] * im.shape[1] for im in images])
    offsets = disc_offsets(radius)
    cells = [quantise(im, bins) for im in images]
    n = bins**3
    counts = np.zeros(n * n, dtype=np.int64)
    drawn = 0
    while drawn < pairs:
        m = pairs - drawn
        which = rng.choice(len(images), size=m, p=sizes / sizes.sum())
        flat = rng.integers(0, sizes[which])
        offset = offsets[rng.integers(0, len(offsets), size=m)]
        for i in np.unique(which):
            take = which == i
            h, w = images[i].shape[:2]
            y, x = np.divmod(flat[take], w)
            y2, x2 = y + offset[take, 0], x + offset[take, 1]
            inside = (y2 >= 0) & (y2 < h) & (x2 >= 0) & (x2 < w)
            a, b = cells[i][y[inside], x[inside]], cells[i][y2[inside], x2[inside]]
            counts += np.bincount(a * n + b, minlength=n * n) + np.bincount(b * n + a, minlength=n * n)
            drawn += int(inside.sum())
    return counts.reshape(n, n)


def pmi(counts: np.ndarray, smoothing: float = 0.0) -> np.ndarray:
    """K_PMI(a, b) = log p(a, b) − log p(a) − log p(b) of a symmetric count table, ``smoothing`` added to
    every cell first (−inf where a smoothed count is 0)."""
    joint = counts.astype(np.float64) + smoothing
    joint /= joint.sum()
    marginal = joint.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(joint) - np.log(marginal)[:, None] - np.log(marginal)[None, :]


def vision_dissimilarity(counts: np.ndarray, rgb: np.ndarray, bins: int, smoothing: float) -> np.ndarray:
    """``c − K_PMI`` among the colours' grid cells, ``c`` the largest K_PMI among them, 0 on the diagonal."""
    cells = colour_cells(rgb, bins)
    k = pmi(counts, smoothing)[np.ix_(cells, cells)]
    d = k.max() - k
    np.fill_diagonal(d, 0.0)
    return d


def language_dissimilarity(layers: list[np.ndarray], colour_of_row: np.ndarray, n_colours: int, last: int = 4):
    """Euclidean distances between colours: each sentence's last ``last`` layers concatenated (the store's
    layers are mean-pooled over tokens), the sentences of each colour averaged."""
    x = np.concatenate([np.asarray(a, dtype=np.float64) for a in layers[-last:]], axis=1)
    means = np.stack([x[colour_of_row == c].mean(axis=0) for c in range(n_colours)])
    return np.sqrt(np.maximum(((means[:, None, :] - means[None, :, :]) ** 2).sum(-1), 0.0))


def stress(points: np.ndarray, dissimilarity: np.ndarray) -> np.ndarray:
    """Raw stress Σ_{i<j} (‖x_i − x_j‖ − δ_ij)² of configurations ``points`` (..., n, dims)."""
    d = np.sqrt(((points[..., :, None, :] - points[..., None, :, :]) ** 2).sum(-1))
    return ((d - dissimilarity) ** 2).sum(axis=(-2, -1)) / 2


def mds(dissimilarity: np.ndarray, fits: int, seed: int, dims: int = 3, iterations: int = 300) -> np.ndarray:
    """Metric MDS of a dissimilarity matrix to ``dims`` dimensions: the lowest-stress of ``fits`` SMACOF fits
    (de Leeuw's majorisation, the algorithm of ``sklearn.manifold.MDS``) from seeded uniform random starts,
    all fits iterated together as one batch of ``iterations`` Guttman transforms."""
    delta = np.asarray(dissimilarity, dtype=np.float64)
    n = len(delta)
    x = np.random.default_rng(seed).uniform(size=(fits, n, dims))
    diagonal = np.arange(n)
    for _ in range(iterations):
        squared = (x**2).sum(-1)
        d = np.sqrt(np.maximum(squared[:, :, None] + squared[:, None, :] - 2 * x @ x.transpose(0, 2, 1), 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            b = np.where(d > 1e-12, -delta / d, 0.0)
        b[:, diagonal, diagonal] = 0.0
        b[:, diagonal, diagonal] = -b.sum(axis=2)
        x = b @ x / n  # the Guttman transform: each fit's stress never rises
    best = int(np.argmin(stress(x, delta)))
    return x[best]


def kabsch_umeyama(source: np.ndarray, target: np.ndarray, reflection: bool = True):
    """The similarity transform ``target ≈ scale * source @ rotation.T + translation`` of least squares
    (Umeyama, 1991). ``reflection=True`` lets ``rotation`` be any orthogonal matrix: the paper runs Kabsch on
    z and on −z and keeps the better fit, which is the same. Returns (scale, rotation, translation)."""
    source, target = np.asarray(source, dtype=np.float64), np.asarray(target, dtype=np.float64)
    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    s, t = source - mu_s, target - mu_t
    u, sigma, vt = np.linalg.svd(t.T @ s / len(source))
    signs = np.ones(len(sigma))
    if not reflection and np.linalg.det(u) * np.linalg.det(vt) < 0:
        signs[-1] = -1.0
    rotation = (u * signs) @ vt
    scale = float((sigma * signs).sum() / (s**2).sum(axis=1).mean())
    return scale, rotation, mu_t - scale * mu_s @ rotation.T


def fitted(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``source`` moved onto ``target`` by ``kabsch_umeyama`` (reflection allowed)."""
    scale, rotation, translation = kabsch_umeyama(source, target)
    return scale * np.asarray(source) @ rotation.T + translation


def procrustes_disparity(source: np.ndarray, target: np.ndarray) -> float:
    """Residual of the Kabsch–Umeyama fit over the spread of ``target``: ‖fit − target‖² / ‖target − mean‖²
    (0: the same shape; 1: nothing in common). Equals ``scipy.spatial.procrustes``'s disparity."""
    target = np.asarray(target, dtype=np.float64)
    residual = ((fitted(source, target) - target) ** 2).sum()
    return float(residual / ((target - target.mean(axis=0)) ** 2).sum())


def _upper(d: np.ndarray) -> np.ndarray:
    return d[np.triu_indices(len(d), 1)]


def rsa_spearman(dissimilarity: np.ndarray, reference: np.ndarray) -> float:
    """Spearman ρ between the upper triangles of two dissimilarity matrices."""
    from scipy.stats import spearmanr

    return float(spearmanr(_upper(dissimilarity), _upper(reference))[0])


def euclidean(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    return np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1))


def colour_scores(embedding: np.ndarray, dissimilarity: np.ndarray, lab: np.ndarray, permutations: int, seed: int):
    """Procrustes disparity of the 3-D ``embedding`` to CIELAB and RSA ρ of ``dissimilarity`` against CIELAB
    distances, each with its permutation p-value: (1 + #{permuted labels at least as good}) / (1 +
    ``permutations``), the same seeded permutations for both."""
    reference = euclidean(lab)
    disparity, rho = procrustes_disparity(embedding, lab), rsa_spearman(dissimilarity, reference)
    rng = np.random.default_rng(seed)
    as_good = np.zeros(2, dtype=np.int64)
    for _ in range(permutations):
        perm = rng.permutation(len(lab))
        as_good[0] += procrustes_disparity(embedding[perm], lab) <= disparity
        as_good[1] += rsa_spearman(dissimilarity[np.ix_(perm, perm)], reference) >= rho
    p = (1 + as_good) / (1 + permutations)
    return {"disparity": disparity, "disparity_p": float(p[0]), "rsa": rho, "rsa_p": float(p[1])}


def analyse(representations: dict[str, np.ndarray], lab: np.ndarray, fits: int, permutations: int, seed: int):
    """Each representation's dissimilarity matrix through MDS to 3-D and the fit onto CIELAB: a row of numbers
    per representation (``colour_scores`` plus the MDS stress), and the fitted coordinates (name -> (n, 3))."""
    rows, points = [], {}
    for name, d in representations.items():
        z = mds(d, fits, seed)
        points[name] = fitted(z, lab)
        rows.append(
            {"representation": name, "stress": float(stress(z, d))} | colour_scores(z, d, lab, permutations, seed)
        )
    return rows, points


def colour_images(spec: dict) -> list[np.ndarray]:
    """The vision side's images (RGB uint8): the packaged ``photographs`` or a hub table's image column
    (CIFAR-10 in the paper: ``uoft-cs/cifar10``, column ``img``), its first ``size`` rows when given."""
    if spec["kind"] == "photographs":
        return photographs()
    from prh.data.hub import load_hf_table

    table = load_hf_table(spec, spec["split"], "colour.images")
    if spec.get("size"):
        table = table.select(range(min(spec["size"], len(table))))
    return [np.asarray(image.convert("RGB")) for image in table[spec["image_column"]]]


def images_fingerprint(images) -> str:
    import hashlib

    digest = hashlib.sha256()
    for image in images:
        digest.update(str(image.shape).encode() + image.tobytes())
    return "sha256:" + digest.hexdigest()


def write_sentences(names, out_dir, provenance: dict | None = None) -> dict:
    """The colour set's template sentences as a text set (``samples.parquet``: caption, colour, template;
    ``dataset.json``), in colour order, each colour's three sentences together."""
    import polars as pl

    from prh.data.store import write_text_set

    xkcd_rgb(names)  # unknown names: one error before anything is written
    rows = [{"sample": i * len(TEMPLATES) + t, "caption": template.format(name), "colour": name,
             "template": t} for i, name in enumerate(names) for t, template in enumerate(TEMPLATES)]  # fmt: skip
    record = {"kind": "colour-sentences", "colours": list(names), "templates": list(TEMPLATES)}
    return write_text_set(out_dir, pl.DataFrame(rows), record, provenance)


def cooccurrence_table(images: dict, bins: int, radius: int, pairs: int, seed: int):
    """The vision side's counts as a Dataset: ``counts`` (cell_a, cell_b) with the images' fingerprint;
    ``images`` is the config's ``colour.images`` (where the photographs come from)."""
    import xarray as xr

    from prh.io.provenance import as_attrs

    spec, images = images, colour_images(images)
    counts = cooccurrence(images, bins, radius, pairs, seed)
    attrs = {"images": spec, "n_images": len(images), "images_fingerprint": images_fingerprint(images),
             "bins": bins, "radius": radius, "pairs": pairs, "seed": seed}  # fmt: skip
    return xr.Dataset({"counts": (("cell_a", "cell_b"), counts)}, attrs=as_attrs(attrs))


def colour_set_analysis(cooccurrence_ds, sentences_dir, language: dict, *, smoothing: float, last_layers: int,
                        fits: int, permutations: int, seed: int):  # fmt: skip
    """Fig. 8 for one colour set: CIELAB itself, the pixel-PMI representation and each language model's
    (name -> its features store of the set's sentences). Returns the table of numbers (one row per
    representation, with each colour's pixel support on the vision row) and the fitted CIELAB-space points as
    a Dataset (representation, colour, axis)."""
    from pathlib import Path

    import polars as pl
    import xarray as xr

    from prh.data.store import read_record
    from prh.io.features import check_store, read_layers

    record = read_record(sentences_dir)
    names = record["colours"]
    rgb = xkcd_rgb(names)
    lab = srgb_to_lab(rgb)
    bins = int(cooccurrence_ds.attrs["bins"])
    counts = cooccurrence_ds["counts"].values
    representations = {
        "CIELAB": euclidean(lab),
        "vision: pixel PMI": vision_dissimilarity(counts, rgb, bins, smoothing),
    }
    colour_of_row = np.array(
        [names.index(c) for c in pl.read_parquet(Path(sentences_dir) / "samples.parquet")["colour"]]
    )
    for model, path in language.items():
        check_store(path, record, f"colour set {', '.join(names[:3])}, ...")
        layers = read_layers(path)
        representations[f"language: {model}"] = language_dissimilarity(layers, colour_of_row, len(names), last_layers)
    rows, points = analyse(representations, lab, fits, permutations, seed)
    support = counts.sum(axis=1)[colour_cells(rgb, bins)]
    for row in rows:  # the pixel support is the vision row's
        vision = row["representation"] == "vision: pixel PMI"
        row["least_supported"] = names[int(np.argmin(support))] if vision else None
        row["colours_under_100_pixels"] = int((support < 100).sum()) if vision else None
    coords = {"representation": list(points), "colour": names, "axis": ["L*", "a*", "b*"]}
    ds = xr.Dataset({"points": (("representation", "colour", "axis"), np.stack(list(points.values()))),
                     "rgb": (("colour", "channel"), rgb), "lab": (("colour", "axis"), lab),
                     "support": (("colour",), support)}, coords=coords)  # fmt: skip
    return pl.DataFrame(rows), ds
