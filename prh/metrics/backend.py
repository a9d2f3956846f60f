"""Where the heavy matrix products of the alignment engine run: numpy on the CPU, or torch on a GPU.

Only the O(N^2 D) and O(L N^2 L') products move to the device (Gram matrices, similarity matrices, the
products of flattened Gram stacks); everything else stays in numpy, so both paths share one
implementation. Products are float64 on every device (float32 where only an order is wanted: the neighbour
search's candidates); a GPU sums in a different order, so results agree
with the CPU path to rounding (about 1e-12 here), not bit for bit.

torch is imported only when a non-CPU device is asked for, keeping CPU jobs free of its start-up cost.
"""

from __future__ import annotations

import os
import shutil

import numpy as np

DEVICES = ("auto", "cpu", "cuda", "mps", "torch-cpu")


def resolve_device(device: str = "auto") -> str:
    """``auto``: ``cuda`` when an NVIDIA GPU and a CUDA build of torch are present, ``mps`` on Apple
    silicon, else ``cpu`` (numpy). ``torch-cpu`` runs the torch path on the CPU (for tests)."""
    if device not in DEVICES:
        raise ValueError(f"device '{device}' is not one of {', '.join(DEVICES)}")
    if device != "auto":
        return device
    if shutil.which("nvidia-smi") or os.path.exists("/proc/driver/nvidia/version"):
        import torch

        if torch.cuda.is_available():
            return "cuda"
    if os.uname().sysname == "Darwin":
        import torch

        if torch.backends.mps.is_available():
            return "mps"
    return "cpu"


def _torch(device: str):
    import torch

    return torch, ("cpu" if device == "torch-cpu" else device)


def products(A: np.ndarray, B: np.ndarray, device: str = "cpu", dtype=np.float64) -> np.ndarray:
    """``A @ B.T`` for A (m, d) and B (n, d), in ``dtype`` (float64, or float32 where only an order is
    wanted: the neighbour search's candidates), on ``device``."""
    if device == "cpu":
        return A.astype(dtype, copy=False) @ B.astype(dtype, copy=False).T
    torch, where = _torch(device)
    wide = dtype == np.float64 and where != "mps"  # MPS has no float64
    kind = torch.float64 if wide else torch.float32
    a = torch.as_tensor(np.ascontiguousarray(A), dtype=kind, device=where)
    b = a if B is A else torch.as_tensor(np.ascontiguousarray(B), dtype=kind, device=where)
    out = (a @ b.T).cpu().numpy()
    return out.astype(dtype, copy=False)


def gram(X: np.ndarray, device: str = "cpu") -> np.ndarray:
    """The linear Gram matrix ``X @ X.T``."""
    return products(X, X, device)
