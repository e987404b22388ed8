"""Deblurring: the saturating camera-shake operator, the learned-blur wrapper, the task and its CLI."""

from __future__ import annotations

import argparse
import json

import deepinv as dinv
import pytest
import torch

from aseqdip.cli import main
from aseqdip.errors import UserInputError
from aseqdip.io import load_image
from aseqdip.methods import ASeqDIP
from aseqdip.physics.bkse import BKSEConfig, KernelWizard
from aseqdip.physics.blur import SaturatedBlur, blur_kernel, linear_blur, saturated_blur
from aseqdip.physics.learned_blur import learned_blur, load_blur_network, save_torchscript
from aseqdip.tasks import TASKS, Deblur

TINY = BKSEConfig(nf=4, kernel_dim=32, front_blocks=1, back_blocks=1, extractor_blocks=1, recon_nf=8)


def _kernel(kind: str = "motion", size: int = 7, seed: int = 0) -> torch.Tensor:
    return blur_kernel(kind, size, torch.Generator().manual_seed(seed))


# ---- the built-in non-linear operator --------------------------------------------------------
def test_saturated_blur_is_truly_nonlinear():
    physics = SaturatedBlur(_kernel())
    gen = torch.Generator().manual_seed(1)
    a, b = 0.45 * torch.rand(1, 3, 24, 24, generator=gen), 0.45 * torch.rand(1, 3, 24, 24, generator=gen)
    gap = (physics.A(a + b) - (physics.A(a) + physics.A(b))).abs().mean()
    assert gap > 0.01, f"A(a+b) and A(a)+A(b) differ by only {gap:.4f} on average"
    lin = linear_blur(_kernel(), (3, 24, 24))  # the same kernel without the camera response is linear
    assert (lin.A(a + b) - (lin.A(a) + lin.A(b))).abs().mean() < 1e-6
    assert not isinstance(physics, dinv.physics.LinearPhysics)


def test_saturated_blur_is_differentiable():
    physics = SaturatedBlur(_kernel(size=3)).to(torch.float64)
    x = (0.1 + 0.8 * torch.rand(1, 1, 6, 6, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(physics.A, (x,), eps=1e-6, atol=1e-5)
    big = torch.rand(1, 3, 16, 16, requires_grad=True)  # negative and saturated pixels too
    (physics.to(torch.float32).A(3 * big - 1).square().sum()).backward()
    assert torch.isfinite(big.grad).all() and big.grad.abs().sum() > 0


def test_saturation_clips_at_the_white_level():
    physics = SaturatedBlur(torch.ones(1, 1, 1, 1), white_level=0.5)  # no blur: the response alone
    top = physics.saturated_value
    bright = torch.tensor([1.0, 1.5, 3.0]).view(1, 1, 1, 3).expand(1, 3, 4, 3).contiguous().requires_grad_()
    out = physics.A(bright)
    assert out.max() <= top + 1e-6, "saturated pixels exceed the white level"
    assert (out - top).abs().max() < 0.01, "pixels far above the white level should sit at it"
    out.sum().backward()
    assert bright.grad.abs().max() < 1e-3, "above the white level the measurement no longer depends on x"
    mid = torch.full((1, 3, 4, 4), 0.3)  # below the white level the response is invertible
    assert torch.allclose(physics.inverse_response(physics.A(mid)), mid, atol=1e-4)
    assert physics.A(mid).mean() > 0.5  # ... and it is a gamma curve: 0.3 is stored near 0.58
    # the blur acts before the clip: a bright line saturates only where the blur keeps it bright
    line = torch.zeros(1, 1, 9, 9).index_fill_(3, torch.tensor([4]), 3.0)
    blurred = SaturatedBlur(_kernel("gaussian", 5), white_level=0.5).A(line)
    assert (blurred[..., 4] - top).abs().max() < 0.01 and blurred[..., 2].max() < top - 0.05
    assert blurred[..., 0].max() < 1e-3


def test_kernels_are_seeded_buffers_and_linear_blur_is_deepinv():
    assert torch.equal(_kernel(seed=3), _kernel(seed=3)) and not torch.equal(_kernel(seed=3), _kernel(seed=4))
    for kind in ("motion", "gaussian"):
        k = _kernel(kind, 9)
        assert k.shape == (1, 1, 9, 9) and abs(k.sum().item() - 1) < 1e-5
    physics = saturated_blur(_kernel(size=9), (3, 32, 32))
    assert "filter" in physics.state_dict()
    assert physics.to(torch.float64).filter.dtype == torch.float64
    lin = linear_blur(_kernel("gaussian", 5), (3, 16, 16))
    assert isinstance(lin, dinv.physics.Blur)  # its adjoint: tests/test_operators.py, with every task's operator


# ---- BKSE and the learned-blur wrapper --------------------------------------------------------
def test_kernel_wizard_has_bkses_gopro_wvae_layout():
    with torch.device("meta"):
        sd = KernelWizard().state_dict()
    assert len(sd) == 159
    expected = {  # names and shapes read from the public BKSE code (GOPRO_wVAE options)
        "feature_extractor.0.weight": (64, 3, 3, 3),
        "feature_extractor.15.conv2.bias": (64,),
        "kernel_extractor.model.1.weight": (64, 128, 7, 7),
        "kernel_extractor.model.16.weight": (1024, 1024, 3, 3),
        "kernel_extractor.model.22.conv_block.5.weight": (1024, 1024, 3, 3),
        "adapter.model.down.0.weight": (64, 64, 4, 4),
        "adapter.model.up.1.bias": (64,),
        "adapter.model.submodule.submodule.submodule.submodule.up.1.weight": (1024, 512, 4, 4),
        "recon_trunk.19.conv1.weight": (64, 64, 3, 3),
        "recon_trunk.23.weight": (256, 64, 3, 3),
        "recon_trunk.28.bias": (3,),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key


def test_learned_blur_round_trips_a_saved_checkpoint(tmp_path):
    torch.manual_seed(0)
    net = KernelWizard(TINY)
    torch.save(net.state_dict(), tmp_path / "tiny.pth")
    save_torchscript(net, tmp_path / "tiny.pt")
    x = torch.rand(1, 3, 40, 56, requires_grad=True)  # any size: padded to 128 inside, cropped back
    ref = learned_blur(net, (3, 40, 56), torch.Generator().manual_seed(5))
    y_ref = ref.A(x)
    assert y_ref.shape == x.shape and ref.code.shape == (1, 32, 1, 1)
    loaded, meta = load_blur_network(tmp_path / "tiny.pth", architecture=KernelWizard(TINY))
    scripted, smeta = load_blur_network(tmp_path / "tiny.pt")
    for other, m in ((loaded, meta), (scripted, smeta)):
        y = learned_blur(other, (3, 40, 56), torch.Generator().manual_seed(5), meta=m).A(x)
        assert torch.allclose(y, y_ref, atol=1e-5)
    y_ref.sum().backward()
    assert x.grad.abs().sum() > 0 and all(not p.requires_grad for p in ref.net.parameters())


def test_learned_blur_rejects_a_mismatched_checkpoint(tmp_path):
    state = KernelWizard(TINY).state_dict()
    torch.save(state, tmp_path / "tiny.pth")
    wider = KernelWizard(BKSEConfig(nf=8, kernel_dim=64, front_blocks=1, back_blocks=1, extractor_blocks=1, recon_nf=8))
    with pytest.raises(UserInputError, match="'feature_extractor.0.weight' has shape"):
        load_blur_network(tmp_path / "tiny.pth", architecture=wider)
    state["feature_extractor.0.weights"] = state.pop("feature_extractor.0.weight")
    torch.save(state, tmp_path / "renamed.pth")
    with pytest.raises(UserInputError, match="key 'feature_extractor.0.weight' is missing"):
        load_blur_network(tmp_path / "renamed.pth", architecture=KernelWizard(TINY))


# ---- the task --------------------------------------------------------------------------------
def test_deblur_is_registered_and_documents_its_noise_scale():
    task = TASKS["deblur"]()
    assert task.network == "shallow_unet" and task.grayscale is False
    assert task.settings()["sigma_01"] == pytest.approx(0.025)


def test_aseqdip_deblurs_a_real_image():
    # the paper's N=2, lambda=1, lr 1e-4, after a ramp of 250 steps at 3e-4 (the method's option; auto ramps
    # 100): +1.74 dB over the blurred input at step 500 here (+0.19 at step 250), where the paper's lr alone
    # takes 750 steps to pass +0.5 (seed 0, CPU fp32, AMD EPYC)
    x = load_image("skimage:astronaut", size=32)
    problem = Deblur(kernel_size=7).simulate(x, seed=0)  # saturating camera, motion kernel, noise 0.05
    blurred = problem.metrics(problem.x0)["psnr"]
    out = ASeqDIP(iterations=500, ramp=250, precision="fp32")(problem.y, problem.physics)
    gained = problem.metrics(out)["psnr"] - blurred
    assert gained > 0.5, f"aSeqDIP gained {gained:.2f} dB over the blurred input ({blurred:.2f} dB)"


# ---- the CLI ---------------------------------------------------------------------------------
def _run(tmp_path, *extra: str) -> list[str]:
    return ["run", "--task", "deblur", "--image", "skimage:astronaut", "--size", "32", "--iterations", "4",
            "--no-progress", "--out", str(tmp_path / "out"), *extra]


def test_cli_runs_the_builtin_and_a_torchscript_blur(tmp_path, capsys):
    assert main(_run(tmp_path, "--kernel-size", "5")) == 0
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["task"] == "deblur" and m["task_settings"]["operator"] == "saturated camera shake"
    save_torchscript(KernelWizard(TINY), tmp_path / "tiny.pt")
    assert main(_run(tmp_path, "--blur-model", str(tmp_path / "tiny.pt"), "--method", "dip", "--overwrite")) == 0
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["task_settings"]["operator"] == "learned" and m["task_settings"]["network_code_channels"] == 32


@pytest.mark.parametrize("case", ["mismatch", "not_a_checkpoint", "pickled_object", "kernel_too_big"])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys, case):
    if case == "mismatch":
        torch.save(KernelWizard(TINY).state_dict(), tmp_path / "m.pth")
        args, expect = ["--blur-model", str(tmp_path / "m.pth")], "'feature_extractor.0.weight' has shape (4, 3, 3, 3)"
    elif case == "not_a_checkpoint":
        (tmp_path / "m.pth").write_text("not a checkpoint")
        args, expect = ["--blur-model", str(tmp_path / "m.pth")], "not a PyTorch checkpoint"
    elif case == "pickled_object":
        torch.save({"net": argparse.Namespace(depth=3)}, tmp_path / "m.pth")  # a Python object
        args, expect = ["--blur-model", str(tmp_path / "m.pth")], "refused"
    else:
        args, expect = ["--kernel-size", "33"], "blur kernel (33x33) is larger than the image (32x32)"
    assert main(_run(tmp_path, *args)) == 2
    err = capsys.readouterr().err.strip()
    assert expect in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()
