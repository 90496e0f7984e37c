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
