"""Shared fixtures: the repository's copies of the reference vectors."""

import json
import pathlib

import pytest

REPOSITORY = pathlib.Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def trust_vectors():
    path = REPOSITORY / "crates" / "trust" / "tests" / "data" / "vectors.json"
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def guard_vectors():
    path = REPOSITORY / "crates" / "guard" / "tests" / "data" / "vectors.json"
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def tessera_cli():
    """The built ``tessera`` binary (debug or release), or one on PATH, or None."""
    import shutil

    for profile in ("debug", "release"):
        candidate = REPOSITORY / "target" / profile / "tessera"
        if candidate.exists():
            return candidate
    found = shutil.which("tessera")
    return pathlib.Path(found) if found else None
