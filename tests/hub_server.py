"""A stand-in for the Hugging Face hub's metadata API that serves recorded repo metadata over real HTTP, so
``huggingface_hub.HfApi`` runs its own code path offline: URL building, headers, ``hf_raise_for_status``
mapping ``X-Error-Code`` to ``RepositoryNotFoundError`` / ``RevisionNotFoundError`` / ``GatedRepoError``, and
``ModelInfo`` / ``DatasetInfo`` parsing.

Each repo is one JSON file, ``fixtures/hub/{models,datasets}/{owner}/{name}.json``: ``refs`` (branch → commit),
``gated`` (false, "auto" or "manual"), ``granted`` (tokens whose holders accepted the licence) and ``info``
(the rest of the API's answer). File names, sizes, gating, splits and features follow the public cards; the
commit hashes are fixture values, not the hub's.

Routes: ``GET /api/{models,datasets}/{repo}/revision/{rev}`` and ``GET /api/{models,datasets}/{repo}/auth-check``.
"""

from __future__ import annotations

import json
import re
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

FIXTURES = Path(__file__).parent / "fixtures" / "hub"
ROUTE = re.compile(r"^/api/(models|datasets)/(.+?)(?:/revision/([^/]+)|/(auth-check))$")


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, body: dict | None = None, error: str | None = None) -> None:
        data = json.dumps(body or {"error": error or ""}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if error:
            self.send_header("X-Error-Code", error)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 (http.server's name)
        match = ROUTE.match(urlparse(self.path).path)
        if not match:
            return self._send(404, error="EntryNotFound")
        kind, repo, revision, auth = match.groups()
        path = FIXTURES / kind / f"{repo}.json"
        if not path.is_file():
            return self._send(404, error="RepoNotFound")
        entry = json.loads(path.read_text())
        if auth:
            token = self.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if entry["gated"] and token not in entry.get("granted", []):
                return self._send(403, error="GatedRepo")
            return self._send(200, {})
        revision = unquote(revision)
        sha = entry["refs"].get(revision) or (revision if revision in entry["refs"].values() else None)
        if sha is None:
            return self._send(404, error="RevisionNotFound")
        self._send(
            200, {"_id": repo, "id": repo, "sha": sha, "gated": entry["gated"], "private": False} | entry["info"]
        )


@contextmanager
def recorded_hub():
    """Serve the recorded hub on localhost; yields its endpoint URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
