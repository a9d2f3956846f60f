"""How much of an embedding job is the kernel handing out memory: EfficientNet-Lite0 over 256 probe-sized
images (64 px, batch 32, one thread), in a fresh process with glibc's default malloc and in one with
``prh.io.workflow.reuse_freed_memory`` (which every job's ``logged`` block calls). Prints each process's wall,
user and system time per image, its minor page faults and peak memory, the ratio, and whether the features
are bit for bit the same.

    python benchmarks/allocation_bench.py
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
from prh.io.workflow import reuse_freed_memory
from prh.models.loading import load_backbone

torch.set_num_threads(1)
reused = reuse_freed_memory() if sys.argv[1] == "reuse" else False
spec = {"name": "efficientnet-lite0", "modality": "vision", "source": "efficientnet_lite", "id": "efficientnet-lite0",
        "pretrained": True, "seed": 0, "pooling": "auto", "compute_dtype": "float32"}
backbone = load_backbone(spec, "cpu")
images = np.random.default_rng(0).integers(0, 256, (256, 64, 64, 3), dtype=np.uint8)
with torch.inference_mode():
    backbone.embed(images[:32])  # warm-up: oneDNN primitives
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    last = [backbone.embed(images[s : s + 32])[-1] for s in range(0, 256, 32)]
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
np.save(sys.argv[2], torch.cat(last).numpy())
print(json.dumps({"reused": reused, "wall": wall, "user": after.ru_utime - before.ru_utime,
                  "system": after.ru_stime - before.ru_stime, "faults": after.ru_minflt - before.ru_minflt,
                  "peak_mb": after.ru_maxrss / 1024}))
"""


def run(mode: str, out: str) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, mode, out], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        rows = {mode: run(mode, str(Path(tmp) / f"{mode}.npy")) for mode in ("default", "reuse")}
        same = np.array_equal(np.load(Path(tmp) / "default.npy"), np.load(Path(tmp) / "reuse.npy"))
    print("allocator           wall ms/img  user ms/img  system ms/img  minor faults  peak MB")
    for r in rows.values():
        label = "reuse_freed_memory" if r["reused"] else "glibc default"
        print(
            f"{label:<19} {r['wall'] / 0.256:>11.1f}  {r['user'] / 0.256:>11.1f}  {r['system'] / 0.256:>13.1f}"
            f"  {r['faults']:>12,}  {r['peak_mb']:>7.0f}"
        )
    ratio = rows["default"]["wall"] / rows["reuse"]["wall"]
    print(f"default / reuse wall time: {ratio:.2f}x; features identical: {same}")


if __name__ == "__main__":
    main()
