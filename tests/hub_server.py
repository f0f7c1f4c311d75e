"""A local stand-in for the Hugging Face Hub, for tests with the real ``huggingface_hub`` client.

It speaks the part of the Hub's HTTP protocol that ``huggingface_hub`` 2.4 uses to
download and publish model repositories:

* ``HEAD/GET /{repo}/resolve/{revision}/{path}``: regular files answer 200 with ``ETag``
  (git blob id), ``X-Repo-Commit`` and ``Content-Length``; LFS files (``*.safetensors``)
  answer 302 to a second server standing for the CDN, with ``X-Linked-Etag`` (sha256) and
  ``X-Linked-Size``. Missing repo, revision or file answer 404 with the ``X-Error-Code``
  (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``) the client maps to its errors.
* ``GET /api/models/{repo}[/revision/{revision}]``: model info with the commit sha and the
  files (``siblings``, with size, blob id and LFS sha256 when ``blobs=True``).
* Publishing: ``POST /api/repos/create``, ``/api/validate-yaml``,
  ``/api/models/{repo}/preupload/{revision}``, the LFS batch API
  (``/{repo}.git/info/lfs/objects/batch``, upload ``PUT`` on the CDN, verify) and the
  ndjson ``/api/models/{repo}/commit/{revision}``. Writes need ``Authorization: Bearer``
  with :attr:`FakeHub.token`.

Every request is recorded in :attr:`FakeHub.requests`; :meth:`FakeHub.break_file` makes
the server corrupt a file's bytes or drop the connection in the middle of it.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

#: Files stored with Git LFS, as the Hub's default ``.gitattributes`` does for weights.
LFS_SUFFIXES = (".safetensors",)

Fault = Literal["corrupt", "drop"]


def git_blob_id(content: bytes) -> str:
    """The git object id of a file's content."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass(frozen=True)
class StoredFile:
    """One file of one commit."""

    content: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def pointer(self) -> bytes:
        """The git LFS pointer file git stores in place of an LFS file."""
        return (
            f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {len(self.content)}\n"
        ).encode()

    @property
    def blob_id(self) -> str:
        return git_blob_id(self.pointer if self.lfs else self.content)

    def sibling(self, path: str, with_metadata: bool) -> dict:
        """The file as the model info API lists it."""
        entry: dict = {"rfilename": path}
        if with_metadata:
            entry.update(size=len(self.content), blobId=self.blob_id)
            if self.lfs:
                entry["lfs"] = {"sha256": self.sha256, "size": len(self.content), "pointerSize": len(self.pointer)}
        return entry


@dataclass
class Repo:
    """A model repository: commits (sha -> files) and branches (name -> sha)."""

    commits: dict[str, dict[str, StoredFile]] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> str | None:
        """The commit sha a branch name or a full sha designates, or None."""
        return self.branches.get(revision) or (revision if revision in self.commits else None)


class HubHTTPError(Exception):
    """An error answer: status, ``X-Error-Code`` and message."""

    def __init__(self, status: int, code: str, message: str, commit: str | None = None, **body: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.commit = status, code, message, commit
        self.body = {"error": message, **body}


class FakeHub:
    """The Hub on 127.0.0.1 (two ephemeral ports: API and CDN), served by threads.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, token: str = "hf_test_write_token") -> None:
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.faults: dict[str, Fault] = {}
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self._servers: list[ThreadingHTTPServer] = []

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> FakeHub:
        for handler in (_ApiHandler, _CdnHandler):
            server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
            server.daemon_threads = True
            server.hub = self  # type: ignore[attr-defined]
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
            self._servers.append(server)
        return self

    def stop(self) -> None:
        """Shut both servers down; later requests fail to connect."""
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """The value for ``HF_ENDPOINT``."""
        return f"http://127.0.0.1:{self._servers[0].server_address[1]}"

    @property
    def cdn(self) -> str:
        return f"http://127.0.0.1:{self._servers[1].server_address[1]}"

    # -- test helpers -----------------------------------------------------------------

    def add_commit(self, repo_id: str, files: Mapping[str, bytes], branch: str = "main") -> str:
        """Commit ``files`` (path -> content) on ``branch``, creating the repo if needed."""
        with self._lock:
            repo = self.repos.setdefault(repo_id, Repo())
            parent = repo.branches.get(branch)
            tree = dict(repo.commits[parent]) if parent else {}
            for path, content in files.items():
                tree[path] = StoredFile(content, lfs=path.endswith(LFS_SUFFIXES))
                if tree[path].lfs:
                    self.lfs_objects[tree[path].sha256] = content
            sha = hashlib.sha1(f"{repo_id}:{parent}:{next(self._counter)}".encode()).hexdigest()
            repo.commits[sha] = tree
            repo.branches[branch] = sha
            return sha

    def add_folder(self, repo_id: str, folder: Path, branch: str = "main") -> str:
        """Commit every file of ``folder`` on ``branch``."""
        return self.add_commit(repo_id, {path.name: path.read_bytes() for path in sorted(folder.iterdir())}, branch)

    def client_env(self, home: Path) -> dict[str, str]:
        """Environment pointing ``huggingface_hub`` (and ``sep``) here, with its cache in ``home``."""
        return {
            "HF_ENDPOINT": self.endpoint,
            "HF_HOME": str(home),
            "HF_TOKEN": self.token,
            "HF_HUB_DISABLE_XET": "1",  # this server speaks LFS, not the Xet protocol
            "HF_HUB_DISABLE_TELEMETRY": "1",
        }

    def break_file(self, repo_id: str, path: str, fault: Fault | None, revision: str = "main") -> None:
        """Serve the file's bytes corrupted (same size), or drop the connection halfway
        through it (every time); ``None`` repairs it."""
        repo = self.repos[repo_id]
        sha256 = repo.commits[repo.resolve(revision)][path].sha256
        if fault is None:
            self.faults.pop(sha256, None)
        else:
            self.faults[sha256] = fault

    def count(self, method: str, fragment: str = "") -> int:
        """How many ``method`` requests had ``fragment`` in their path."""
        return sum(1 for m, path in self.requests if m == method and fragment in path)

    # -- protocol ---------------------------------------------------------------------

    def locate(self, repo_id: str, revision: str) -> tuple[Repo, str]:
        repo = self._require_repo(repo_id)
        commit = repo.resolve(revision)
        if commit is None:
            raise HubHTTPError(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return repo, commit

    def file(self, repo_id: str, revision: str, path: str) -> tuple[str, StoredFile]:
        repo, commit = self.locate(repo_id, revision)
        stored = repo.commits[commit].get(path)
        if stored is None:
            raise HubHTTPError(404, "EntryNotFound", f"{path} does not exist on \"{revision}\"", commit)
        return commit, stored

    def model_info(self, repo_id: str, revision: str, with_metadata: bool) -> dict:
        repo, commit = self.locate(repo_id, revision)
        siblings = [stored.sibling(path, with_metadata) for path, stored in sorted(repo.commits[commit].items())]
        return {"id": repo_id, "modelId": repo_id, "sha": commit, "private": False, "siblings": siblings}

    def create_repo(self, payload: dict) -> dict:
        repo_id = f"{payload['organization']}/{payload['name']}" if payload.get("organization") else payload["name"]
        with self._lock:
            if repo_id in self.repos:
                # Like the Hub, the conflict answer still names the repo's URL.
                raise HubHTTPError(409, "", "You already created this model repo", url=f"{self.endpoint}/{repo_id}")
            self.repos[repo_id] = Repo()
        return {"url": f"{self.endpoint}/{repo_id}", "name": repo_id}

    def preupload(self, repo_id: str, revision: str, payload: dict) -> dict:
        repo = self._require_repo(repo_id)
        head = repo.commits.get(repo.branches.get(unquote(revision), ""), {})
        answers = []
        for item in payload["files"]:
            path = item["path"]
            lfs = path.endswith(LFS_SUFFIXES)
            existing = head.get(path)
            oid = None if existing is None else existing.sha256 if lfs else git_blob_id(existing.content)
            answers.append({"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
        return {"files": answers}

    def lfs_batch(self, repo_id: str, payload: dict) -> dict:
        self._require_repo(repo_id)
        objects = []
        for item in payload["objects"]:
            answer = {"oid": item["oid"], "size": item["size"], "authenticated": True}
            if item["oid"] not in self.lfs_objects:
                answer["actions"] = {
                    "upload": {"href": f"{self.cdn}/upload/{item['oid']}"},
                    "verify": {"href": f"{self.endpoint}/{repo_id}.git/info/lfs/objects/verify"},
                }
            objects.append(answer)
        return {"transfer": "basic", "objects": objects}

    def commit(self, repo_id: str, revision: str, lines: list[dict]) -> dict:
        repo = self._require_repo(repo_id)
        files: dict[str, bytes] = {}
        for line in lines:
            key, value = line["key"], line["value"]
            parent = value.get("parentCommit") if key == "header" else None
            if parent is not None and parent != repo.resolve(unquote(revision)):
                raise HubHTTPError(412, "", "A commit has happened since. Please refresh and try again.")
            if key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "lfsFile":
                if value["oid"] not in self.lfs_objects:
                    raise HubHTTPError(400, "", f"LFS object {value['oid']} was not uploaded")
                files[value["path"]] = self.lfs_objects[value["oid"]]
        sha = self.add_commit(repo_id, files, branch=unquote(revision))
        return {"commitUrl": f"{self.endpoint}/{repo_id}/commit/{sha}", "commitOid": sha, "pullRequestUrl": None}

    def _require_repo(self, repo_id: str) -> Repo:
        repo = self.repos.get(repo_id)
        if repo is None:
            raise HubHTTPError(404, "RepoNotFound", "Repository not found")
        return repo


class _Handler(BaseHTTPRequestHandler):
    """Shared plumbing: keep-alive HTTP/1.1, request log, JSON and error answers, bodies."""

    protocol_version = "HTTP/1.1"

    @property
    def hub(self) -> FakeHub:
        return self.server.hub  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _dispatch(self) -> None:
        self.hub.requests.append((self.command, urlsplit(self.path).path))
        try:
            self.route()
        except HubHTTPError as error:
            headers = {"X-Error-Message": error.message}
            if error.code:
                headers["X-Error-Code"] = error.code
            if error.commit:
                headers["X-Repo-Commit"] = error.commit
            self.send_json(error.body, status=error.status, headers=headers)

    do_GET = do_HEAD = do_POST = do_PUT = _dispatch

    def route(self) -> None:
        raise NotImplementedError

    def send_json(self, data: object, status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def read_json(self) -> dict:
        return json.loads(self.read_body() or b"{}")

    def require_token(self) -> None:
        if self.headers.get("Authorization") != f"Bearer {self.hub.token}":
            raise HubHTTPError(401, "", "Invalid username or password.")

    def send_content(self, content: bytes, headers: Mapping[str, str]) -> None:
        """Send a file (whole: ``Range`` is not supported, as a server may), with its fault."""
        fault = self.hub.faults.get(hashlib.sha256(content).hexdigest())
        if fault == "corrupt":
            content = bytes(byte ^ 0xFF for byte in content[:16]) + content[16:]
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if fault == "drop":
            # The first half of the file, then the connection closes.
            self.wfile.write(content[: len(content) // 2])
            self.close_connection = True
            return
        self.wfile.write(content)


class _ApiHandler(_Handler):
    def route(self) -> None:
        url = urlsplit(self.path)
        parts = [unquote(part) for part in url.path.strip("/").split("/")]
        query = parse_qs(url.query)
        method = self.command
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            repo_id, rest = "/".join(parts[2:4]), parts[4:]
            if method == "GET" and not rest:
                return self.send_json(self.hub.model_info(repo_id, "main", "blobs" in query))
            if method == "GET" and len(rest) == 2 and rest[0] == "revision":
                return self.send_json(self.hub.model_info(repo_id, rest[1], "blobs" in query))
            if method == "POST" and len(rest) == 2 and rest[0] == "preupload":
                self.require_token()
                return self.send_json(self.hub.preupload(repo_id, rest[1], self.read_json()))
            if method == "POST" and len(rest) == 2 and rest[0] == "commit":
                self.require_token()
                lines = [json.loads(line) for line in self.read_body().splitlines() if line.strip()]
                return self.send_json(self.hub.commit(repo_id, rest[1], lines))
        if method == "POST" and parts == ["api", "repos", "create"]:
            self.require_token()
            return self.send_json(self.hub.create_repo(self.read_json()))
        if method == "POST" and parts == ["api", "validate-yaml"]:
            self.read_body()
            return self.send_json({"errors": [], "warnings": []})
        is_lfs_api = len(parts) >= 6 and parts[1].endswith(".git") and parts[2:5] == ["info", "lfs", "objects"]
        if method == "POST" and is_lfs_api:
            repo_id = f"{parts[0]}/{parts[1][:-len('.git')]}"
            self.require_token()
            payload = self.read_json()
            if parts[5] == "batch":
                return self.send_json(self.hub.lfs_batch(repo_id, payload))
            if parts[5] == "verify" and payload.get("oid") in self.hub.lfs_objects:
                return self.send_json({})
        if method in ("GET", "HEAD") and len(parts) >= 5 and parts[2] == "resolve":
            return self.resolve("/".join(parts[:2]), parts[3], "/".join(parts[4:]))
        raise HubHTTPError(404, "", f"no route for {method} {url.path}")

    def resolve(self, repo_id: str, revision: str, path: str) -> None:
        commit, stored = self.hub.file(repo_id, revision, path)
        if stored.lfs:
            self.send_response(302)
            headers = {
                "Location": f"{self.hub.cdn}/lfs/{stored.sha256}",
                "X-Repo-Commit": commit,
                "ETag": f'"{stored.blob_id}"',
                "X-Linked-Etag": f'"{stored.sha256}"',
                "X-Linked-Size": str(len(stored.content)),
                "Content-Length": "0",
            }
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            return
        self.send_content(stored.content, {"X-Repo-Commit": commit, "ETag": f'"{stored.blob_id}"'})


class _CdnHandler(_Handler):
    """The storage behind LFS redirects: ``GET /lfs/{sha256}`` and ``PUT /upload/{sha256}``."""

    def route(self) -> None:
        parts = urlsplit(self.path).path.strip("/").split("/")
        stored = len(parts) == 2 and parts[0] == "lfs" and parts[1] in self.hub.lfs_objects
        if self.command in ("GET", "HEAD") and stored:
            return self.send_content(self.hub.lfs_objects[parts[1]], {"ETag": f'"{parts[1]}"'})
        if self.command == "PUT" and len(parts) == 2 and parts[0] == "upload":
            content = self.read_body()
            if hashlib.sha256(content).hexdigest() != parts[1]:
                raise HubHTTPError(400, "", "uploaded content does not match its oid")
            self.hub.lfs_objects[parts[1]] = content
            return self.send_json({})
        raise HubHTTPError(404, "", "NoSuchKey")
