"""Shared fixtures: small real images that ship with scikit-image."""

from __future__ import annotations

import os

import pytest
import torch

from aseqdip.io import load_image

# Under pytest-xdist (./dev test runs one worker per core) each worker gets its share of the cores, so
# the workers' torch thread pools do not fight over them; the suite's tensors are too small to gain
# from intra-op threads anyway.
# The suite's numbers must not depend on whether this CPU has bf16 units (AVX512-BF16/AMX), where
# --precision auto would pick bf16: pin auto to fp32 (subprocesses inherit it).
os.environ["ASEQDIP_AUTO_PRECISION"] = "fp32"

if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))


@pytest.fixture(scope="session")
def astronaut64() -> torch.Tensor:
    return load_image("skimage:astronaut", size=64)


@pytest.fixture(scope="session")
def camera48() -> torch.Tensor:
    return load_image("skimage:camera", size=48)
