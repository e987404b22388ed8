"""Blur operators: seeded kernels, deepinv's linear blur, and a saturating camera-shake model.

The non-linear model is the image formation of Whyte, Sivic and Zisserman, "Deblurring shaken and
partially saturated images" (IJCV 110, 2014) with a gamma camera response: the sensor integrates the
scene's *linear* radiance x through the blur, clips it at its white level, and the camera response
maps it to the stored (display) image:

    y = g( c_w( k * x ) ) + n,     n ~ N(0, sigma^2)

- x in [0, 1] is the sharp scene radiance (a given image is taken as linear radiance);
- k * . is a 2-D convolution with reflect padding (same size as x), one kernel for every channel;
- c_w(u) = u - softplus(a (u - w)) / a is a smooth clip at the white level w (default 0.9, so the
  brightest tenth of the range saturates), the differentiable form of min(u, w) that Whyte et al.
  use for saturated pixels (sharpness a = 50 / w);
- g(u) = sign(u) ((|u| + e)^{1/gamma} - t) / s is a gamma curve (gamma 2.2) with a small linear toe
  (e = 1e-3, t = e^{1/gamma}, s such that g(1) = 1) so that its slope stays finite at 0; the odd
  extension keeps negative network outputs differentiable.

Blurring the linear radiance is what keeps the problem well posed for DIP-type methods: we tried
the alternative g(c_w(k * g^{-1}(x))) on display images, and aSeqDIP stalled near 9 dB on it, since
dark pixels then barely reach the measurement (the slope of x^gamma vanishes at 0).

The pixel-wise inverse of the response, g^{-1} on y clipped to [0, g(w)], is the operator's simple
reconstruction (``first_estimate``): the blurred image back on the radiance scale. It is the
baseline the tasks report and aSeqDIP's z_0, as y is for a linear blur.

Nothing here is learned: the operator needs no weights, is differentiable everywhere, and is
non-linear (gamma curve and saturation), so it is a deepinv ``Physics``, not a ``LinearPhysics``.
"""

from __future__ import annotations

import deepinv as dinv
import torch
import torch.nn.functional as F
from deepinv.physics.functional import conv2d

from ..errors import UserInputError
from .defaults import first_estimate

KERNELS = ("motion", "gaussian")


def gaussian_sigma(kernel_size: int) -> float:
    """Default Gaussian std in pixels for a kernel size: the kernel then spans about +-4 sigma."""
    return kernel_size / 8.0


def blur_kernel(kind: str, size: int, generator: torch.Generator, sigma: float | None = None) -> torch.Tensor:
    """A (1, 1, size, size) blur kernel summing to 1, drawn with deepinv's generators.

    ``motion``: a random camera-shake trajectory (Gaussian-process paths, Schuler et al. 2016), drawn
    from ``generator``; ``gaussian``: an isotropic Gaussian of std ``sigma`` pixels (default
    :func:`gaussian_sigma`).
    """
    if size < 1:
        raise UserInputError(f"kernel size must be at least 1 pixel, got {size}")
    if kind == "motion":
        gen = dinv.physics.generator.MotionBlurGenerator((size, size), rng=generator)
        k = gen.step(batch_size=1)["filter"]
    elif kind == "gaussian":
        s = gaussian_sigma(size) if sigma is None else sigma
        if s <= 0:
            raise UserInputError(f"Gaussian blur std must be positive, got {s:g}")
        gen = dinv.physics.generator.GaussianBlurGenerator((size, size), sigma_min=s, sigma_max=s, rng=generator)
        k = gen.step(batch_size=1)["filter"]
    else:
        raise UserInputError(f"unknown blur kernel {kind!r}; choose from {', '.join(KERNELS)}")
    k = k.float().clamp_min(0)
    return k / k.sum().clamp_min(1e-12)


def check_kernel_fits(kernel: torch.Tensor, height: int, width: int) -> None:
    """Reject a kernel larger than the image (reflect padding needs half a kernel inside the image)."""
    kh, kw = kernel.shape[-2:]
    if kh > height or kw > width:
        raise UserInputError(f"blur kernel ({kh}x{kw}) is larger than the image ({height}x{width}); "
                             f"use a smaller --kernel-size or a larger image")


def same_size_padding(kernel: torch.Tensor, padding: str = "reflect") -> str:
    """``padding``, or ``valid`` for a 1x1 kernel (same size; deepinv's reflect adjoint fails on 1x1)."""
    return "valid" if tuple(kernel.shape[-2:]) == (1, 1) else padding


def linear_blur(kernel: torch.Tensor, img_size: tuple[int, int, int], sigma: float = 0.0,
                padding: str = "reflect", rng: torch.Generator | None = None) -> dinv.physics.LinearPhysics:
    """deepinv's linear blur y = k * x + n: ``Blur`` (reflect/replicate padding) or ``BlurFFT`` (circular)."""
    check_kernel_fits(kernel, *img_size[-2:])
    noise = {"noise_model": dinv.physics.GaussianNoise(sigma, rng=rng)} if sigma > 0 else {}
    if padding == "circular":
        return dinv.physics.BlurFFT(img_size=img_size, filter=kernel, **noise)
    return dinv.physics.Blur(filter=kernel, padding=same_size_padding(kernel, padding), **noise)


def smooth_clip(u: torch.Tensor, white: float, sharpness: float) -> torch.Tensor:
    """Differentiable min(u, white): u - softplus(a (u - white)) / a (Whyte et al. 2014)."""
    return u - F.softplus(sharpness * (u - white)) / sharpness


TOE = 1e-3  # linear-toe offset of the gamma curve (see the module docstring)


def _toe_constants(gamma: float, toe: float) -> tuple[float, float]:
    t = toe ** (1.0 / gamma)
    return t, (1.0 + toe) ** (1.0 / gamma) - t


def gamma_encode(u: torch.Tensor, gamma: float, toe: float = TOE) -> torch.Tensor:
    """Linear -> display: sign(u) ((|u| + e)^(1/gamma) - t) / s; g(0) = 0, g(1) = 1, finite slope at 0."""
    t, s = _toe_constants(gamma, toe)
    return torch.sign(u) * ((u.abs() + toe).pow(1.0 / gamma) - t) / s


def gamma_decode(v: torch.Tensor, gamma: float, toe: float = TOE) -> torch.Tensor:
    """Display -> linear, the exact inverse of :func:`gamma_encode`."""
    t, s = _toe_constants(gamma, toe)
    return torch.sign(v) * ((s * v.abs() + t).pow(gamma) - toe)


class SaturatedBlur(dinv.physics.Physics):
    """Camera shake with a saturating camera response (module docstring has the model).

    ``filter`` is a (1, 1, k, k) buffer, so it follows ``.to(device)`` and ``state_dict``; change it
    with ``update_parameters(filter=...)``. ``sigma`` is the noise std on the [0, 1] image scale.
    """

    def __init__(self, filter: torch.Tensor, gamma: float = 2.2, white_level: float = 0.9,
                 sigma: float = 0.0, rng: torch.Generator | None = None) -> None:
        if gamma <= 0:
            raise UserInputError(f"gamma must be positive, got {gamma:g}")
        if white_level <= 0:
            raise UserInputError(f"white level must be positive, got {white_level:g}")
        if sigma < 0:
            raise UserInputError(f"noise std must be >= 0, got {sigma:g}")
        noise = dinv.physics.GaussianNoise(sigma, rng=rng) if sigma > 0 else None
        super().__init__(noise_model=noise)
        self.register_buffer("filter", filter.float())
        self.gamma = gamma
        self.white_level = white_level
        self.sharpness = 50.0 / white_level
        self.sigma = sigma

    @property
    def saturated_value(self) -> float:
        """The display value of a fully saturated pixel: g(white level)."""
        return float(gamma_encode(torch.tensor(self.white_level), self.gamma))

    def A(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        self.update_parameters(**kwargs)
        blurred = conv2d(x, self.filter, padding=same_size_padding(self.filter))
        return gamma_encode(smooth_clip(blurred, self.white_level, self.sharpness), self.gamma)

    def inverse_response(self, y: torch.Tensor) -> torch.Tensor:
        """g^{-1}(y) with y clipped to [0, g(w)]: the blurred radiance, saturated pixels at the white level."""
        return gamma_decode(y.clamp(0.0, self.saturated_value), self.gamma).clamp(0.0, self.white_level)

    def extra_repr(self) -> str:
        k = self.filter.shape[-1]
        return f"kernel={k}x{k}, gamma={self.gamma}, white_level={self.white_level}, sigma={self.sigma:g}"


@first_estimate.register(SaturatedBlur)
def _saturated_blur_first_estimate(physics: SaturatedBlur, y: torch.Tensor) -> torch.Tensor:
    return physics.inverse_response(y)


def saturated_blur(kernel: torch.Tensor, img_size: tuple[int, int, int], sigma: float = 0.0,
                   gamma: float = 2.2, white_level: float = 0.9,
                   rng: torch.Generator | None = None) -> SaturatedBlur:
    """:class:`SaturatedBlur` after checking that the kernel fits the image."""
    check_kernel_fits(kernel, *img_size[-2:])
    return SaturatedBlur(kernel, gamma=gamma, white_level=white_level, sigma=sigma, rng=rng)


__all__ = ["KERNELS", "SaturatedBlur", "blur_kernel", "check_kernel_fits", "gamma_decode", "gamma_encode",
           "gaussian_sigma", "linear_blur", "saturated_blur", "smooth_clip"]
