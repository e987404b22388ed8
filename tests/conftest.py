"""Shared fixtures: small real images that ship with scikit-image."""

from __future__ import annotations

import pytest
import torch

from aseqdip.io import load_image


@pytest.fixture(scope="session")
def astronaut64() -> torch.Tensor:
    return load_image("skimage:astronaut", size=64)


@pytest.fixture(scope="session")
def camera48() -> torch.Tensor:
    return load_image("skimage:camera", size=48)
