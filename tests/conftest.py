"""Fixtures for every kind of test."""

from __future__ import annotations

from typing import Iterator

import pytest

from pyro4compat.configuration import config


@pytest.fixture(autouse=True)
def restore_config() -> Iterator[None]:
    """Every test may change the global config; put it back afterwards."""
    saved = config.asDict()
    yield
    for item, value in saved.items():
        setattr(config, item, value)
