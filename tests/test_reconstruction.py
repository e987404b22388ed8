"""aSeqDIP and DIP on real images: they must actually improve on the measurement."""

from __future__ import annotations

import pytest
import torch

from aseqdip.errors import UserInputError
from aseqdip.io import load_image
from aseqdip.methods import METHODS, ASeqDIP
from aseqdip.tasks import Denoise, Inpaint


def test_aseqdip_denoises_a_real_image_by_3db(astronaut64):
    problem = Denoise(25).simulate(astronaut64, seed=0)
    noisy = problem.metrics(problem.y)["psnr"]
    x = ASeqDIP(iterations=400, precision="fp32")(problem.y, problem.physics)  # paper's N, lambda, lr
    gained = problem.metrics(x)["psnr"] - noisy
    assert gained >= 3.0, f"aSeqDIP gained only {gained:.2f} dB over the noisy input ({noisy:.2f} dB)"


def test_aseqdip_fills_a_box_hole_better_than_the_masked_input():
    problem = Inpaint(mask="box", hiar=0.1).simulate(load_image("skimage:astronaut", size=48), seed=0)
    hole = problem.physics.mask[0, 0] == 0
    x = ASeqDIP(iterations=100, precision="fp32")(problem.y, problem.physics)
    truth = problem.x_true

    def hole_mse(img: torch.Tensor) -> float:
        return (img.clamp(0, 1) - truth)[..., hole].square().mean().item()

    # measured at 100 steps (48 px, AMD EPYC): hole MSE 0.205 -> 0.104, whole-image PSNR 16.98 -> 19.02 dB
    assert hole_mse(x) < 0.8 * hole_mse(problem.y)
    assert problem.metrics(x)["psnr"] > problem.metrics(problem.y)["psnr"] + 0.2


def test_the_biharmonic_baseline_keeps_the_measured_pixels_and_fills_the_hole_smoothly(astronaut64):
    """The classical inpainting reference: y where measured, the biharmonic interpolation in the box hole, in no
    steps; on this photo and hole (HIAR 0.25) it measured 17.90 dB against the masked input's 10.98."""
    problem = Inpaint(mask="box", hiar=0.25).simulate(astronaut64, seed=0)
    measured = problem.physics.mask[0, 0] != 0
    result = METHODS["biharmonic"]().reconstruct(problem.y, problem.physics)
    assert result.iterations == 0 and result.rule == "closed form"
    assert torch.equal(result.image[..., measured], problem.y[..., measured])
    assert torch.isfinite(result.image).all() and float(result.image[..., ~measured].std()) > 0.01  # not a flat fill
    assert problem.metrics(result.image)["psnr"] > problem.metrics(problem.y)["psnr"] + 5
    denoising = Denoise(25).simulate(astronaut64, seed=0)
    with pytest.raises(UserInputError, match="method biharmonic fills the holes of an inpainting mask"):
        METHODS["biharmonic"]().reconstruct(denoising.y, denoising.physics)
