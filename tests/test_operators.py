"""Every operator the tasks build, through one suite: each linear one passes deepinv's adjointness test,
and each maps the task's image to a measurement of the simulated y's shape, the same way every time.

The CT and MRI files keep their float64 dot-product tests (sizes and coil counts this suite does not
sweep) and what is particular to those operators (the detector count, SENSE-normalised coil maps).
"""

from __future__ import annotations

import deepinv as dinv
import pytest
import torch

from aseqdip.tasks import CT, MRI, Deblur, Denoise, Inpaint

# every operator a task builds, as the task builds it (paper defaults, small images)
CASES = {
    "denoise": lambda: Denoise(sigma=25),
    "inpaint box": lambda: Inpaint(mask="box", hiar=0.25),
    "inpaint random pixels": lambda: Inpaint(mask="random", missing=0.5),
    "inpaint noisy": lambda: Inpaint(mask="box", hiar=0.1, sigma=10),
    "deblur, non-linear": lambda: Deblur(blur="nonlinear", kernel_size=9),
    "deblur, linear motion": lambda: Deblur(blur="motion", kernel_size=9),
    "deblur, linear gaussian": lambda: Deblur(blur="gaussian", kernel_size=9),
    "mri 4x random": lambda: MRI(acceleration=4, coils=4),
    "mri 8x equispaced": lambda: MRI(acceleration=8, coils=3, sampling="equispaced"),
    "ct 18 views": lambda: CT(views=18),
    "ct 30 views, photon noise": lambda: CT(views=30, photons=1e5),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def built(request):
    task = CASES[request.param]()
    x = task.load("skimage:camera" if task.grayscale else "skimage:astronaut", size=32)
    return request.param, task.simulate(x, seed=0)


def test_linear_operators_pass_deepinvs_adjointness_test(built):
    name, problem = built
    physics = problem.physics
    if not isinstance(physics, dinv.physics.LinearPhysics):
        pytest.skip(f"{name}: {type(physics).__name__} is not linear; it has no adjoint to test")
    torch.manual_seed(0)  # the test draws its random vectors from torch's global generator
    error = float(physics.adjointness_test(problem.x0, num_samples=4))
    assert error < 1e-5, f"{name}: relative adjoint error {error:.2e}"


def test_every_operator_maps_the_image_to_its_measurement(built):
    name, problem = built
    physics, x = problem.physics, problem.x_true
    with torch.no_grad():
        first, second = physics.A(x), physics.A(x)
    assert first.shape == problem.y.shape and first.dtype == problem.y.dtype, name
    assert torch.equal(first, second), f"{name}: A is not deterministic"
    # the measurement is A x plus the task's noise: their gap is no bigger than the noise the task drew
    gap = float((problem.y - first).abs().square().mean().sqrt())
    scale = float(first.abs().square().mean().sqrt())
    assert gap < 0.5 * scale, f"{name}: y is far from A x ({gap:.3g} against {scale:.3g})"
