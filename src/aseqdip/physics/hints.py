"""What the caller knows about a measurement beyond y and the operator, as typed fields.

The noise level's estimators (:mod:`aseqdip.physics.noise_level`) and ``auto``'s choice of where the noise
level comes from (:func:`aseqdip.auto.noise_source`) read these; a task fills them in when it builds a
:class:`~aseqdip.tasks.base.Problem`, and ``aseqdip volume`` adds what it knows about a slice. None of
them is the ground truth or the simulation's noise level.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class SharedNoise:
    """One estimated noise level for every slice of a volume: the median of some slices' own estimates."""

    sigma: float
    how: str
    slices: dict[str, float] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MeasurementHints:
    """Acquisition settings and context a noise estimator or ``auto`` may use.

    ``photons`` and ``attenuation_per_pixel``: a CT acquisition's incident photon count I0 and the
    attenuation of one pixel of unit image value (they give the post-log noise model). ``noise_sigma``
    and ``noise_source``: a raw scanner file's own noise level (its noise scan or k-space background), in
    data units. ``shared_noise``: the volume's one estimate for all its slices. ``warm_slice``: the slice
    starts from its neighbour's fitted network (``aseqdip volume``). ``fitted_start``: the run starts from a
    fitted network given by the user (``--init``: an earlier run's weights or a prior, ``aseqdip.prior``).
    """

    photons: float | None = None
    attenuation_per_pixel: float | None = None
    noise_sigma: float | None = None
    noise_source: str = ""
    shared_noise: SharedNoise | None = None
    warm_slice: bool = False
    fitted_start: bool = False

    @property
    def noise_known(self) -> bool:
        """True when the acquisition fixes the noise level (a photon count, or the file's own level)."""
        return bool(self.photons) or bool(self.noise_sigma)
