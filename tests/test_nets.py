"""The networks: the authors' parameter counts, any size and channel count, the initialisation."""

from __future__ import annotations

import pytest
import torch

from aseqdip.nets import NETWORKS, medium_unet, shallow_unet, skip_net


def count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(("factory", "channels", "expected"), [
    (medium_unet, 1, 4_283_201),
    (medium_unet, 2, 4_283_842),
    (shallow_unet, 3, 1_036_995),
])
def test_parameter_counts_match_the_authors_networks(factory, channels, expected):
    assert count(factory(channels)) == expected


@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize(("height", "width"), [(37, 53), (64, 64), (5, 7), (1, 1), (65, 31)])
def test_any_image_size_comes_back_the_same_size(name, height, width):
    net = NETWORKS[name](2, 3, generator=torch.Generator().manual_seed(0))
    out = net(torch.rand(1, 2, height, width))
    assert out.shape == (1, 3, height, width)
    assert torch.isfinite(out).all()


def test_skip_network_ends_in_a_sigmoid():
    out = skip_net(3)(torch.randn(1, 3, 40, 40) * 10)
    assert out.min() >= 0 and out.max() <= 1


def test_initialisation_follows_the_authors_and_is_seeded():
    a = medium_unet(1, generator=torch.Generator().manual_seed(3))
    b = medium_unet(1, generator=torch.Generator().manual_seed(3))
    c = medium_unet(1, generator=torch.Generator().manual_seed(4))
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(pa, pb), name
    assert not torch.equal(next(a.parameters()), next(c.parameters()))
    convs = [m for m in a.modules() if isinstance(m, torch.nn.Conv2d)]
    bns = [m for m in a.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    weights = torch.cat([m.weight.flatten() for m in convs])
    assert abs(weights.std().item() - 0.02) < 0.001 and abs(weights.mean().item()) < 0.001
    assert all(torch.count_nonzero(m.bias) == 0 for m in convs)
    bn_w = torch.cat([m.weight for m in bns])
    assert abs(bn_w.mean().item() - 1.0) < 0.005 and 0.015 < bn_w.std().item() < 0.025
