"""A plain file server over real HTTP for the downloads of ``source: features`` models, with the failures a
real server has: a missing file (404), a body cut short of its ``Content-Length`` (a dropped connection), and
counters of what it served, so a test can tell a cached file from a downloaded one.

Routes: ``GET``/``HEAD /{name}`` serves ``folder/name``; ``/truncated/{name}`` declares the file's full size
and sends half of it.

Fixture files in the PRH authors' layout (``write_authors_files``): synthetic features with a shared latent
structure, so that alignment varies between models the way real features' does (models with more of the
latent signal align more).
"""

from __future__ import annotations

import threading
from collections import Counter
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np


def _handler(folder: Path, served: Counter):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _serve(self, body: bool) -> None:
            path = unquote(urlparse(self.path).path).lstrip("/")
            truncated = path.startswith("truncated/")
            file = folder / path.removeprefix("truncated/")
            if not file.is_file():
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = file.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                served[path] += 1
                self.wfile.write(data[: len(data) // 2] if truncated else data)

        def do_HEAD(self):  # noqa: N802 (http.server's name)
            self._serve(body=False)

        def do_GET(self):  # noqa: N802
            self._serve(body=True)

    return Handler


@contextmanager
def file_server(folder: str | Path):
    """Serve ``folder`` on localhost; yields ``(base URL, Counter of GETs per path)``."""
    served: Counter = Counter()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(Path(folder), served))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served
    finally:
        server.shutdown()
        server.server_close()


def synthetic_layers(n: int, n_layers: int, width: int, signal: float, seed: int, latent_seed: int = 0):
    """``n_layers`` (n, width) float32 layers: a shared latent (n, 8) seen through a random map, its weight
    growing over depth up to ``signal``, plus noise of the model's own."""
    latent = np.random.default_rng(latent_seed).normal(size=(n, 8))
    rng = np.random.default_rng(seed)
    layers = []
    for i in range(n_layers):
        weight = signal * (i + 1) / n_layers
        layers.append((weight * latent @ rng.normal(size=(8, width)) + rng.normal(size=(n, width))).astype(np.float32))
    return layers


def write_authors_files(folder: str | Path, models: list[dict], n: int) -> dict[str, Path]:
    """One ``.pt`` per model entry (``file``, ``modality``, ``layers``, ``width``, ``signal``, ``seed``) in the
    authors' layout: vision ``{"feats": (N, L, D), "num_params"}``; language as a list of layers (N, D) with
    ``mask``, ``loss`` and ``bpb``."""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for m in models:
        layers = synthetic_layers(n, m["layers"], m["width"], m["signal"], m["seed"])
        content = {"num_params": int(m.get("num_params", 1000 * (m["seed"] + 1)))}
        if m["modality"] == "vision":
            content["feats"] = torch.from_numpy(np.stack(layers, axis=1))
        else:
            content["feats"] = [torch.from_numpy(layer) for layer in layers]
            content["mask"] = torch.ones((n, 12), dtype=torch.long)
            content["loss"] = torch.tensor(2.0 + m["seed"] / 10)
            content["bpb"] = torch.tensor(m.get("bpb", 1.0 - m["signal"] / 10))
        torch.save(content, folder / m["file"])
        paths[m["name"]] = folder / m["file"]
    return paths
