"""Shared test set-up. Test paths are rootdir-relative (no tests/__init__.py) because
lava-nc installs a top-level ``tests`` package of its own."""

import os

import pytest
import torch
from hypothesis import settings

settings.register_profile("ci", max_examples=30, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=30, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
