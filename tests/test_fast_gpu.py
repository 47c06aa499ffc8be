"""GPU path: the LUT through torch (grid_sample) and the direct MLP on CUDA agree with the CPU path.

The torch-on-CPU test always runs (it checks the GPU code's maths); the CUDA ones skip without CUDA."""
from __future__ import annotations

import numpy as np
import pytest

from station.model import lut as L

torch = pytest.importorskip("torch")
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def _lut_and_sample():
    from test_lut_error import RandomMLP

    m = RandomMLP(seed=4, gain=2.0)
    lut = L.bake(m.pixel_fn, m.z_range, 33)
    z = L.dense_sample(m.z_range[0] - 0.1, m.z_range[1] + 0.1, 100_000, seed=9)
    return m, lut, z


def test_torch_lut_matches_cpu_kernel_on_cpu():
    _, lut, z = _lut_and_sample()
    got = lut.apply_torch(torch.from_numpy(z)).numpy()
    np.testing.assert_allclose(got, lut.apply(z, method="trilinear"), atol=2e-5)
    A, b = np.array([0.9, 1.1, 0.8]), np.array([0.05, -0.1, 0.0])
    got = lut.apply_torch(torch.from_numpy(z), A, b).numpy()
    np.testing.assert_allclose(got, lut.apply(z, A=A, b=b, method="trilinear"), atol=2e-5)


@cuda
def test_torch_lut_on_gpu_matches_cpu():
    _, lut, z = _lut_and_sample()
    got = lut.apply_torch(torch.from_numpy(z).cuda()).cpu().numpy()
    assert L.delta_e2000(lut.apply(z, method="trilinear"), got).max() <= 0.05
    np.testing.assert_allclose(got, lut.apply(z, method="trilinear"), atol=1e-4)


@cuda
def test_direct_mlp_on_gpu_matches_cpu():
    m, _, z = _lut_and_sample()
    cpu = m.pixel_fn(z)
    x = torch.from_numpy(z).cuda()
    with torch.inference_mode():
        for i in range(4):
            x = x @ torch.from_numpy(m.weights[f"w{i}"]).cuda() + torch.from_numpy(m.weights[f"b{i}"]).cuda()
            x = torch.nn.functional.silu(x) if i < 3 else torch.sigmoid(x)
    gpu = x.cpu().numpy()
    # TF32 matmuls may be on: a stated tolerance of 0.1 CIEDE2000, 2e-3 per channel
    assert np.abs(gpu - cpu).max() <= 2e-3
    assert L.delta_e2000(cpu, gpu).max() <= 0.1
