"""Blur: camera-shake motion blur, Gaussian blur and defocus (disk) blur.

All three are spatially invariant kernels applied per channel (depthwise) with reflect padding;
the Gaussian is applied separably, large kernels (> 15×15) through the FFT.

Motion kernels follow the random camera-shake trajectories of Boracchi & Foi 2012 ("Modeling
the performance of image restoration from motion blur"), in the form popularised by the
DeblurGAN kernel generator (Kupyn et al. 2018): a constant-speed 2-D random walk whose velocity
is perturbed by Gaussian shake, pulled back towards the origin (centripetal term) and, rarely,
jerked back ("big shakes"). The trajectory is drawn at DeblurGAN's scale (path length 60 px over
2000 steps), rescaled to the requested path length, centred on its centroid (so the blurred
image stays registered with the sharp one, as GoPro's blur is the mean of frames around the
sharp one) and rasterised with bilinear splatting, which is exact to sub-pixel accuracy.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import torch
import torch.nn.functional as F

from aioir.degradations.base import Degradation, register_degradation, uniform

__all__ = [
    "DefocusBlur",
    "GaussianBlur",
    "MotionBlur",
    "apply_kernel",
    "disk_kernel",
    "gaussian_kernel1d",
    "motion_kernel",
]

_FFT_MIN_TAPS = 15 * 15  # direct convolution below this many taps, FFT above
_TRAJ_STEPS = 2000  # DeblurGAN's `iters`
_TRAJ_LENGTH = 60.0  # DeblurGAN's `max_len` (pixels)
MAX_MOTION_LENGTH = 28.0  # path length at severity 1; kernel size 2·⌈L/2⌉+3 ≤ 31


def _pad(images: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
    """Reflect padding (replicate when the image is too small to reflect)."""
    h, w = images.shape[-2:]
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(images, (pw, pw, ph, ph), mode=mode)


def apply_kernel(images: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Convolve every channel of a B×C×H×W batch with one odd-sized 2-D kernel (reflect padded).

    This is a true convolution (the kernel is flipped), so a motion kernel's trajectory and the
    blur streaks have the same orientation. Kernels with more than 15×15 taps go through the FFT.
    """
    kh, kw = kernel.shape
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"kernel sides must be odd, got {tuple(kernel.shape)}")
    _, c, h, w = images.shape
    k = kernel.to(device=images.device, dtype=images.dtype).flip(0, 1)
    padded = _pad(images, kh // 2, kw // 2)
    if kh * kw <= _FFT_MIN_TAPS:
        return F.conv2d(padded, k.expand(c, 1, kh, kw), groups=c)
    ph, pw = padded.shape[-2:]
    spec = torch.fft.rfft2(padded.float(), s=(ph, pw))
    kspec = torch.fft.rfft2(k.flip(0, 1).float(), s=(ph, pw))
    full = torch.fft.irfft2(spec * kspec, s=(ph, pw))
    # Circular convolution with the kernel anchored at (0, 0): the valid part ends at the far edge.
    return full[..., kh - 1 : kh - 1 + h, kw - 1 : kw - 1 + w].to(images.dtype)


def gaussian_kernel1d(sigma: float, radius: int | None = None) -> torch.Tensor:
    """A normalised 1-D Gaussian of standard deviation ``sigma`` (radius ⌈3σ⌉ by default)."""
    if sigma <= 0:
        return torch.ones(1)
    r = max(1, math.ceil(3.0 * sigma)) if radius is None else radius
    x = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).float()


def disk_kernel(radius: float, supersample: int = 8) -> torch.Tensor:
    """An anti-aliased uniform disk (pill-box) of ``radius`` pixels, normalised to sum 1.

    Each tap is the fraction of its pixel square covered by the disk, estimated on a
    ``supersample²`` sub-grid; the side is ``2·⌈radius⌉ + 1``.
    """
    if radius <= 0:
        return torch.ones(1, 1)
    r = math.ceil(radius)
    n = 2 * r + 1
    sub = (torch.arange(supersample, dtype=torch.float64) + 0.5) / supersample - 0.5
    centres = torch.arange(-r, r + 1, dtype=torch.float64)
    coords = (centres.view(-1, 1) + sub.view(1, -1)).reshape(-1)  # n·s sample positions
    inside = (coords.view(-1, 1) ** 2 + coords.view(1, -1) ** 2) <= radius**2
    cover = inside.double().view(n, supersample, n, supersample).mean(dim=(1, 3))
    return (cover / cover.sum()).float()


def _trajectory(generator: torch.Generator, anxiety: float) -> torch.Tensor:
    """A Boracchi–Foi / DeblurGAN camera-shake trajectory: complex positions, path length 60."""
    n = _TRAJ_STEPS
    params = torch.rand(4, generator=generator, dtype=torch.float64).tolist()
    centripetal = 0.7 * params[0]
    prob_big_shake = 0.2 * params[1]
    gaussian_shake = 10.0 * params[2]
    init_angle = 2.0 * math.pi * params[3]
    big = torch.rand(n - 1, 2, generator=generator, dtype=torch.float64).tolist()
    shake = torch.randn(n - 1, 2, generator=generator, dtype=torch.float64).tolist()

    step = _TRAJ_LENGTH / (n - 1)
    v = complex(math.cos(init_angle), math.sin(init_angle)) * step
    x = 0j
    points = [x]
    for (u_big, u_ang), (gr, gi) in zip(big, shake):
        dv = anxiety * (gaussian_shake * complex(gr, gi) - centripetal * x) * step
        if u_big < prob_big_shake * anxiety:
            turn = math.pi + (u_ang - 0.5)  # a jerk back, roughly against the motion
            dv += 2.0 * v * complex(math.cos(turn), math.sin(turn))
        v += dv
        v = v / abs(v) * step if v != 0 else complex(step, 0.0)
        x = x + v
        points.append(x)
    pts = torch.tensor([[p.real, p.imag] for p in points], dtype=torch.float64)
    return pts


def motion_kernel(
    size: int,
    generator: torch.Generator,
    length: float | None = None,
    anxiety: float = 0.005,
) -> torch.Tensor:
    """A random camera-shake kernel, ``size×size``, non-negative and summing to 1.

    Parameters
    ----------
    size:
        Odd side of the kernel.
    generator:
        The only source of randomness (trajectory shape and orientation).
    length:
        Path length of the trajectory in pixels (default ``size − 3``). If the centred
        trajectory does not fit into the kernel it is shrunk until it does.
    anxiety:
        Shake intensity (DeblurGAN's ``expl``; 5e-4 – 5e-3 sensible, 0 = straight line).
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"size must be a positive odd integer, got {size}")
    length = float(size - 3) if length is None else float(length)
    pts = _trajectory(generator, anxiety) * (max(length, 0.0) / _TRAJ_LENGTH)
    pts = pts - pts.mean(dim=0)
    c = (size - 1) / 2.0
    extent = float(pts.abs().max())
    if extent > 0.0 and extent > c - 1.0:  # leave one pixel for the bilinear footprint
        pts = pts * (max(c - 1.0, 0.0) / extent)
    px, py = pts[:, 0] + c, pts[:, 1] + c
    x0, y0 = px.floor(), py.floor()
    fx, fy = px - x0, py - y0
    x0, y0 = x0.long(), y0.long()
    kernel = torch.zeros(size * size, dtype=torch.float64)
    for dx, dy, wgt in (
        (0, 0, (1 - fx) * (1 - fy)),
        (1, 0, fx * (1 - fy)),
        (0, 1, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        xi = (x0 + dx).clamp(0, size - 1)
        yi = (y0 + dy).clamp(0, size - 1)
        kernel.index_add_(0, yi * size + xi, wgt)
    kernel = kernel.view(size, size)
    return (kernel / kernel.sum()).float()


@functools.lru_cache(maxsize=512)
def _cached_motion_kernel(size: int, length: float, anxiety: float, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return motion_kernel(size, gen, length=length, anxiety=anxiety)


@register_degradation("motion_blur", task="blur")
@dataclasses.dataclass(frozen=True)
class MotionBlur(Degradation):
    """Camera-shake motion blur from a random Boracchi–Foi trajectory (GoPro-like).

    The kernel is a pure function of the fields (``seed`` seeds the trajectory), so the frozen
    dataclass stays hashable and logs reproduce it exactly; kernels are cached.

    Parameters
    ----------
    length:
        Path length of the shake trajectory in pixels, 0–28 (kernel side ``2·⌈L/2⌉ + 3``,
        at most 31). :meth:`sample` maps severity linearly to 2–28 px (tier midpoints ≈ 6 /
        15 / 24), chosen to resemble GoPro's 7–13-frame averages at 1280×720, whose blur
        extents reach a few tens of pixels (a visual estimate, not a measured fit).
    anxiety:
        Shake intensity (DeblurGAN's ``expl``), 0–0.01; :meth:`sample` draws it
        log-uniformly in [2e-4, 2e-3] (DeblurGAN's default is 5e-3). 0 gives a straight line.
    seed:
        Seed of the trajectory (shape, orientation).
    """

    length: float
    anxiety: float = 0.005
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.length <= 64.0:
            raise ValueError(f"length must lie in [0, 64] pixels, got {self.length}")
        if self.anxiety < 0:
            raise ValueError(f"anxiety must be >= 0, got {self.anxiety}")

    @property
    def kernel_size(self) -> int:
        """Odd kernel side: 2·⌈length/2⌉ + 3."""
        return 2 * math.ceil(self.length / 2.0) + 3

    def kernel(self) -> torch.Tensor:
        """The (cached) normalised blur kernel."""
        return _cached_motion_kernel(
            self.kernel_size, float(self.length), float(self.anxiety), int(self.seed)
        ).clone()

    @classmethod
    def sample(cls, severity: float, generator: torch.Generator) -> MotionBlur:
        """length = 2 + 26·severity; anxiety log-uniform in [2e-4, 2e-3]; a fresh kernel seed."""
        anxiety = math.exp(uniform(generator, math.log(2e-4), math.log(2e-3)))
        seed = int(torch.randint(0, 2**31 - 1, (), generator=generator))
        return cls(length=2.0 + 26.0 * float(severity), anxiety=anxiety, seed=seed)

    def apply(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Blur every image with the same kernel (the generator is not used)."""
        return apply_kernel(images, self.kernel()).clamp(0.0, 1.0)


@register_degradation("gaussian_blur", task="blur")
@dataclasses.dataclass(frozen=True)
class GaussianBlur(Degradation):
    """Isotropic Gaussian blur, applied separably.

    Parameters
    ----------
    sigma:
        Standard deviation in pixels, 0–5 (kernel radius ⌈3σ⌉). :meth:`sample` maps
        severity linearly to 0.5–4 (tier midpoints ≈ 1.1 / 2.3 / 3.4); BSRGAN / Real-ESRGAN
        draw σ in 0.1–3 (isotropic part).
    """

    sigma: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.sigma <= 10.0:
            raise ValueError(f"sigma must lie in [0, 10], got {self.sigma}")

    @classmethod
    def sample(cls, severity: float, generator: torch.Generator) -> GaussianBlur:
        """σ = 0.5 + 3.5·severity (deterministic in severity)."""
        return cls(sigma=0.5 + 3.5 * float(severity))

    def apply(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Blur horizontally then vertically (the generator is not used)."""
        k = gaussian_kernel1d(self.sigma).to(device=images.device, dtype=images.dtype)
        r = k.numel() // 2
        if r == 0:
            return images.clamp(0.0, 1.0)
        c = images.shape[1]
        out = F.conv2d(_pad(images, 0, r), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        out = F.conv2d(_pad(out, r, 0), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
        return out.clamp(0.0, 1.0)


@register_degradation("defocus_blur", task="blur")
@dataclasses.dataclass(frozen=True)
class DefocusBlur(Degradation):
    """Defocus blur: an anti-aliased uniform disk (the geometric-optics circle of confusion).

    A disk is not separable, so it is applied as a 2-D depthwise kernel (FFT when large).

    Parameters
    ----------
    radius:
        Disk radius in pixels, 0–15. :meth:`sample` maps severity linearly to 1–8 (tier
        midpoints ≈ 2.2 / 4.5 / 6.8); DPDD's defocus reaches radii of ~10 px at full size.
    """

    radius: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.radius <= 15.0:
            raise ValueError(f"radius must lie in [0, 15], got {self.radius}")

    @classmethod
    def sample(cls, severity: float, generator: torch.Generator) -> DefocusBlur:
        """radius = 1 + 7·severity (deterministic in severity)."""
        return cls(radius=1.0 + 7.0 * float(severity))

    def apply(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Blur every image with the disk (the generator is not used)."""
        return apply_kernel(images, disk_kernel(self.radius)).clamp(0.0, 1.0)
