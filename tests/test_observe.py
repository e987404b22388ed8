"""Rules as observers, the noise level in one place, and aSeqDIP's ramp options (issue 18)."""

from __future__ import annotations

import pytest
import torch

from aseqdip import rules
from aseqdip.io import load_image
from aseqdip.methods import ASeqDIP, VanillaDIP
from aseqdip.nets import UNet
from aseqdip.physics.holdout import measured_entries
from aseqdip.physics.noise_level import masked_haar_mad, noise_level, patch_pca_sigma, realised_noise, wavelet_mad
from aseqdip.tasks import Denoise, Inpaint


def small_unet(in_channels: int, out_channels: int, generator: torch.Generator | None = None) -> UNet:
    return UNet(in_channels, out_channels, (16, 32), generator)


def dip(iterations: int = 200) -> VanillaDIP:
    return VanillaDIP(iterations=iterations, lr=1e-2, network=small_unet, precision="fp32", device="cpu", seed=0)


@pytest.fixture(scope="module")
def problem():
    return Denoise(25).simulate(load_image("skimage:camera", size=32), seed=0)


def test_an_observed_rule_picks_the_step_the_same_rule_stops_at(problem):
    sigma = 25 / 255
    halted = rules.reconstruct(dip(), problem.y, problem.physics, rules.OutputRule(stop="discrepancy", sigma=sigma))
    watched = rules.reconstruct(dip(), problem.y, problem.physics,
                                rules.OutputRule(stop="none", sigma=sigma, observe=("discrepancy", "wmv")),
                                monitor=problem.psnr)
    seen = watched.info["observed"]["discrepancy"]
    assert halted.iterations < 200  # the rule stopped the run ...
    assert watched.iterations == 200  # ... while observing it let the run reach the ceiling
    assert seen["stopped"] and seen["steps"] == seen["iteration_returned"] == halted.iteration_returned
    assert seen["psnr"] == pytest.approx(float(problem.psnr(halted.image)), abs=1e-4)
    assert watched.iteration_returned == 200 and watched.rule == "last"  # observers never choose the output


def test_the_residual_curve_gives_the_discrepancy_stop_afterwards(problem):
    """The whole-run residual curve, thresholded afterwards, finds the step the observed rule chose."""
    sigma = 25 / 255
    run = rules.reconstruct(dip(), problem.y, problem.physics,
                            rules.OutputRule(stop="none", sigma=sigma, observe=("discrepancy", "residual")),
                            monitor=problem.psnr)
    curve, steps = run.history["residual"], run.history["residual_iteration"]
    assert len(curve) == 200 and steps[-1] == 200  # recorded to the ceiling, past the rule's stop
    armed = False
    offline = None
    for step, value in zip(steps, curve):
        armed = armed or value > sigma**2
        if armed and value <= sigma**2:
            offline = step
            break
    assert offline is not None and offline == run.info["observed"]["discrepancy"]["iteration_returned"]
    assert "residual" not in run.info["observed"]  # a curve, not a rule: it chooses nothing


@pytest.mark.parametrize("name, sigma", [("camera", 25), ("astronaut", 15)])
def test_the_noise_estimate_is_within_10_percent_on_a_real_image(name, sigma):
    p = Denoise(sigma).simulate(load_image(f"skimage:{name}", size=128), seed=0)
    level = noise_level(p.physics, p.y, prefer="estimate")
    true = realised_noise(p.physics, p.y, p.x_true, measured_entries(p.physics, p.y))
    assert level.source == "estimate"
    assert abs(level.sigma / true - 1) < 0.10


def test_on_a_small_textured_colour_image_the_patch_pca_estimate_holds_where_the_wavelet_mad_does_not():
    # a tuning image (never reported): at 64 px its texture reads as noise to the wavelet MAD
    p = Denoise(15).simulate(load_image("skimage:immunohistochemistry", size=64), seed=0)
    true = realised_noise(p.physics, p.y, p.x_true, measured_entries(p.physics, p.y))
    level = noise_level(p.physics, p.y, prefer="estimate")
    assert level.how.startswith("patch PCA")
    assert abs(level.sigma / true - 1) < 0.05
    assert wavelet_mad(p.y) / true - 1 > 0.10


def test_grey_and_tiny_images_use_the_wavelet_mad():
    grey = Denoise(25).simulate(load_image("skimage:camera", size=64), seed=0)
    assert noise_level(grey.physics, grey.y, prefer="estimate").how.startswith("wavelet MAD")
    assert patch_pca_sigma(torch.rand(1, 3, 12, 12)) is None  # 64 patches for 75 entries: too few


def test_the_masked_estimate_ignores_missing_pixels():
    x = load_image("skimage:camera", size=128)  # on a 64 px astronaut the texture biased it up by 31%
    p = Inpaint(mask="random", missing=0.5, sigma=10).simulate(x, seed=1)
    measured = measured_entries(p.physics, p.y)
    true = realised_noise(p.physics, p.y, p.x_true, measured)
    assert abs(masked_haar_mad(p.y, measured) / true - 1) < 0.15


def test_the_model_is_read_only_when_asked(problem):
    assert noise_level(problem.physics, problem.y).source == "model"
    assert noise_level(problem.physics, problem.y, prefer="estimate").source == "estimate"
    assert noise_level(problem.physics, problem.y, given=0.1).sigma == 0.1


def test_the_ramp_changes_only_the_first_steps_learning_rate(problem):
    method = ASeqDIP(iterations=6, ramp=4, ramp_lr=1e-3, network=small_unet, precision="fp32", device="cpu")
    assert [method.learning_rate(i) for i in (0, 3, 4, 5)] == [1e-3, 1e-3, 1e-4, 1e-4]
    ramped = method.reconstruct(problem.y, problem.physics)
    plain = ASeqDIP(iterations=6, network=small_unet, precision="fp32", device="cpu").reconstruct(
        problem.y, problem.physics)
    assert not torch.equal(ramped.image, plain.image)


def test_auto_resolves_to_the_discrepancy_principle_on_the_estimate(problem):
    from aseqdip.auto import resolve
    from aseqdip.methods import FBP, L1WaveletCS

    _, rule = resolve(VanillaDIP, rules.OutputRule(stop="auto"))
    assert rule.stop == "discrepancy" and rule.noise == "estimate"
    result = rules.reconstruct(dip(), problem.y, problem.physics, rules.OutputRule(stop="auto"))
    assert result.info["noise"]["source"] == "estimate" and result.rule == "discrepancy"
    assert resolve(L1WaveletCS, rules.OutputRule(stop="auto"))[1].stop == "none"
    assert resolve(FBP(), rules.OutputRule(stop="auto"))[1].stop == "none"


def test_auto_ramps_aseqdip_except_on_ct(problem):
    """auto's ramp for aSeqDIP on denoising, none on CT (the API by operator, the CLI by task name);
    an aSeqDIP run under auto on a CT operator records no ramp."""
    import deepinv as dinv

    from aseqdip.auto import method_settings, resolve
    from aseqdip.physics.ct import equispaced_angles, tomography

    assert resolve(ASeqDIP, rules.OutputRule(stop="auto"), problem.physics)[0] == {"ramp": 100}
    ct = tomography(16, equispaced_angles(6))
    assert isinstance(ct, dinv.physics.Tomography)
    assert resolve(ASeqDIP, rules.OutputRule(stop="auto"), ct)[0] == {}
    assert method_settings(ASeqDIP, ct) == {} and method_settings(ASeqDIP, problem.physics) == {"ramp": 100}
    y = ct.A(torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0)))
    method = ASeqDIP(iterations=4, network=small_unet, precision="fp32", device="cpu")
    result = rules.reconstruct(method, y, ct, rules.OutputRule(stop="auto", sigma=1.0))
    assert result.info["stopping"]["auto"]["method"] == {}


def test_auto_takes_ct_without_a_photon_count_as_noise_free():
    """On CT the sinogram's MAD is a floor of its detail, not a noise level: auto uses level 0 there (the
    smallest residual over the budget) unless the photon count or sigma is known."""
    import deepinv as dinv

    from aseqdip.auto import noise_source, resolve
    from aseqdip.physics.ct import equispaced_angles, tomography
    from aseqdip.physics.hints import MeasurementHints

    ct = tomography(16, equispaced_angles(6))
    assert noise_source(ct) == "none" and noise_source(ct, MeasurementHints(photons=None)) == "none"
    assert noise_source(ct, MeasurementHints(photons=1e5)) == "estimate"
    assert noise_source(ct, MeasurementHints(warm_slice=True)) == "estimate"  # volume's warm slices keep the MAD level
    assert resolve(VanillaDIP, rules.OutputRule(stop="auto"), ct, MeasurementHints(photons=1e5))[1].noise == "estimate"
    assert resolve(VanillaDIP, rules.OutputRule(stop="auto", sigma=0.1), ct)[1].noise == "estimate"  # given: used
    assert noise_source(dinv.physics.Denoising()) == "estimate"
    x = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    result = rules.reconstruct(dip(6), ct.A(x), ct)
    assert result.info["noise"]["source"] == "none" and result.info["noise"]["sigma"] == 0.0
    assert result.iterations == 6 and result.rule == "discrepancy, smallest residual"
    assert "fallback" not in result.info["stopping"]["auto"]


def test_run_without_stop_uses_auto(tmp_path):
    """No --stop: auto stops by the discrepancy principle on the estimated sigma, above the noisy input;
    --stop none keeps the fixed budget exactly."""
    import json

    from aseqdip.cli import main

    common = ["run", "--task", "denoise", "--image", "skimage:camera", "--size", "32", "--sigma", "25",
              "--method", "dip", "--iterations", "400", "--no-progress", "--precision", "fp32"]
    assert main([*common, "--out", str(tmp_path / "auto")]) == 0
    auto = json.loads((tmp_path / "auto" / "metrics.json").read_text())
    assert "auto" in auto["stopping"] and auto["stopping"]["stop"] == "discrepancy"
    assert auto["noise"]["source"] == "estimate"  # never the simulation's sigma
    # the noise actually drawn is recorded beside it, as an oracle, so a study can measure the estimate
    assert auto["noise"]["realised_oracle"] == pytest.approx(25 / 255, rel=0.1)
    assert auto["noise"]["realised_oracle"] != auto["noise"]["sigma"]
    assert auto["iterations"] < 400 and auto["psnr"] > auto["psnr_measurement"] + 1.0
    fixed_budget = [a if a != "400" else "60" for a in common]  # what --stop none runs, exactly: a short budget shows it
    assert main([*fixed_budget, "--stop", "none", "--out", str(tmp_path / "fixed")]) == 0
    fixed = json.loads((tmp_path / "fixed" / "metrics.json").read_text())
    assert fixed["iterations"] == fixed["iteration_returned"] == 60 and "auto" not in fixed["stopping"]


def test_the_python_api_defaults_to_auto(problem):
    result = rules.reconstruct(dip(400), problem.y, problem.physics)
    assert result.info["stopping"]["stop"] == "discrepancy" and result.iterations < 400


def test_auto_runs_the_fixed_budget_where_no_noise_level_can_be_found():
    clean = Denoise(25).simulate(torch.full((1, 1, 32, 32), 0.5), seed=0)
    result = rules.reconstruct(dip(5), torch.full_like(clean.y, 0.5), clean.physics)  # noise-free: sigma 0
    assert result.iterations == 5 and "fixed budget" in result.info["stopping"]["auto"]["fallback"]
