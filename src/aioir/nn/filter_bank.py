"""A bank of fixed linear restoration filters and a per-image choice among them.

Why: a U-Net learns to invert blur slowly (hundreds of thousands of steps in the deblurring
literature), while the best *linear* filter for a given blur is a closed-form least-squares fit.
:class:`FilterBankHead` gives a restorer ``K`` such filters, fitted once on training pairs (one
per blur kernel family and strength, :class:`LeastSquaresFilterFit`), and learns only *which*
candidate each image should get — a recognition problem, not a deconvolution one. The
candidates are the network's output ``y``, the input ``x`` itself (what a blind model should
return for an input it would otherwise damage, a clean photo first of all) and ``hₖ ⋆ x``::

    w = softmax(MLP(standardise(descriptor)))               # B×(K+2), one choice per image
    out = w₀·y + w₁·x + Σₖ wₖ₊₁·(hₖ ⋆ x)

The descriptor pools what the network already knows about the degradation (mean and standard
deviation of a context map — UDAIR's degradation map ``d`` — and of the full-resolution
features), the input's detail profile (:func:`detail_profile`: detail energy at half-octave
scales and its anisotropy), which shows how much fine detail is missing, i.e. how blurred the
image is, and whether along one direction, and how much the network changed the input (log
mean squared change and the change of the detail profile): a network that rewrote the image
has seen rain or noise, one that left it alone has seen a clean or a blurred photo. The last
layer is zero-initialised with a bias that gives ``y`` most of the weight, so a new head
starts close to the network it is added to (for gradient fine-tuning; the closed-form fit of
:func:`aioir.engine.filter_bank.fit_gate` resets it). Filters are buffers (saved with the
weights, never trained by the optimiser); they are applied one at a time, so memory grows by
a few images, not ``K``. Pure PyTorch (padding, ``conv2d``, no FFT): CPU, ONNX and
TorchScript keep working. The choice is a per-image decision (:mod:`aioir.nn.image_statistics`):
the tiles of a tiled restoration share the whole image's.

**Skipping.** At inference the head does not compute candidates that would barely count: the
smallest weights, as long as together they stay within :attr:`FilterBankHead.skip_mass` (1e-3)
for every image of the batch, are dropped and the rest renormalised — an expert at weight 1e-6
costs nothing instead of seconds, and the output moves by at most ``skip_mass`` times the
candidates' spread (under 1/4 of an 8-bit level for images in [0, 1]). Never while gradients
are recorded, nor while tracing, compiling or exporting (the graph computes every candidate);
``skip_mass = 0`` computes them all.

**Experts.** The head may also hold ``E`` restorers of the input (``experts``: a CPU-fast
denoiser trained on one task, or a classical method written as a module): each is one more
candidate, ``eₑ(x)``, chosen by the same gate — the route by which a specialist fixes the task
the all-in-one network is weakest at without retraining it. Their weights, if any, are the
head's (``experts.<e>.*``), trained before the fit and frozen in it.

The shipped default model (since v5) is a UDAIR network with such a head: a noise expert, the dark
channel prior, a haze expert and a camera-shake expert, chosen by a gate that reads a degradation
classifier (``docs/decisions.md``, "Filter bank").
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aioir.nn.dark_channel import dark_channel
from aioir.nn.degradation_classifier import DegradationClassifier, banded_shadow_terms
from aioir.nn.graph_capture import capturing_graph
from aioir.nn.image_statistics import crop_count, image_statistic, pool_crops
from aioir.nn.padding import reflect_pad

__all__ = [
    "GATE_STATISTICS", "GIVEN_CLASS_LOG_FLOOR", "ROUTED_HEADS", "ClassifierFilterBankHead",
    "CompactClassifierFilterBankHead", "FilterBankHead", "InputStatisticsFilterBankHead",
    "LeastSquaresFilterFit",
    "RoutedClassifierFilterBankHead", "RoutedCompactClassifierFilterBankHead",
    "StatisticsRoutedClassifierFilterBankHead", "StatisticsRoutedCompactClassifierFilterBankHead",
    "ToldGate", "apply_filter", "detail_profile", "gate_statistics", "input_statistics",
    "told_routes", "weights_fingerprint",
]  # fmt: skip


def weights_fingerprint(module: nn.Module) -> str:
    """16 hex digits of a SHA-256 over ``module``'s state (names and float32 values, sorted):
    equal for equal weights, whatever file or path they came from."""
    digest = hashlib.sha256()
    for name, value in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def apply_filter(images: Tensor, kernel: Tensor) -> Tensor:
    """Correlate every channel of ``images`` (B×C×H×W) with one odd ``T×T`` ``kernel``.

    Reflect padding (replicate when the image is smaller than the kernel's half-width), the same
    convention :class:`LeastSquaresFilterFit` fits with.
    """
    taps = kernel.shape[-1]
    b, c, h, w = images.shape
    out = F.conv2d(_pad_channels(images, taps), kernel.to(images.dtype).view(1, 1, taps, taps))
    return out.view(b, c, h, w)


def _pad_channels(images: Tensor, taps: int) -> Tensor:
    """B×C×H×W → (B·C)×1×(H+T−1)×(W+T−1), padded for a ``T×T`` filter (:func:`reflect_pad`)."""
    b, c, h, w = images.shape
    r = taps // 2
    return reflect_pad(images.reshape(b * c, 1, h, w), (r, r, r, r))


#: Gaussian scales (px) of :func:`detail_profile`, half an octave apart.
DETAIL_SIGMAS: tuple[float, ...] = (0.5, 0.71, 1.0, 1.41, 2.0, 2.83, 4.0, 5.66, 8.0)


def _gaussian_blur(grey: Tensor, sigma: float) -> Tensor:
    radius = max(1, math.ceil(3.0 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=grey.dtype, device=grey.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    out = F.conv2d(F.pad(grey, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(out, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1))


def detail_profile(images: Tensor, sigmas: tuple[float, ...] = DETAIL_SIGMAS) -> Tensor:
    """How much detail each image has at each scale, and how anisotropic it is: B×(S+2).

    For each Gaussian scale σ, the log mean energy of the grey level minus its σ-blur (the
    detail finer than σ), taken relative to the coarsest scale (so the profile's shape, not the
    image's contrast); a blurred image has little energy at the small scales. Then the absolute
    log ratios of horizontal/vertical and of the two diagonal gradient energies (large for
    motion blur). Convolutions and pooling only (ONNX- and TorchScript-friendly, any size).
    """
    grey = images.float().mean(dim=1, keepdim=True)
    energies = [
        pool_crops((grey - _gaussian_blur(grey, s)).pow(2).mean(dim=(1, 2, 3))) for s in sigmas
    ]
    log_e = torch.stack(energies, dim=1).clamp(min=1e-12).log()
    profile = log_e - log_e[:, -1:]

    def log_energy(d: Tensor) -> Tensor:
        return pool_crops(d.pow(2).mean(dim=(1, 2, 3))).clamp(min=1e-12).log()

    horizontal = log_energy(grey[..., :, 1:] - grey[..., :, :-1])
    vertical = log_energy(grey[..., 1:, :] - grey[..., :-1, :])
    diagonal = log_energy(grey[..., 1:, 1:] - grey[..., :-1, :-1])
    antidiagonal = log_energy(grey[..., 1:, :-1] - grey[..., :-1, 1:])
    anisotropy = torch.stack(
        [(horizontal - vertical).abs(), (diagonal - antidiagonal).abs()], dim=1
    )
    return torch.cat([profile, anisotropy], dim=1)


#: Immerkær's noise-estimation mask (the difference of two Laplacians: blind to planes and ramps)
_NOISE_MASK = ((1.0, -2.0, 1.0), (-2.0, 4.0, -2.0), (1.0, -2.0, 1.0))
#: side (px) of the dark channel's minimum filter, the dark channel prior's patch
DARK_CHANNEL_PATCH = 15
#: what :func:`input_statistics` returns, in order
INPUT_STATISTICS: tuple[str, ...] = (
    "log noise σ (grey)", "log noise σ (red − green)", "log noise σ (blue − yellow)",
    "dark channel (15 px)", "dark channel (pixel)", "log mean brightness", "log contrast",
    "saturation", "highlights (max channel > 0.5)", "mean max channel",
)  # fmt: skip


def input_statistics(images: Tensor) -> Tensor:
    """Classical statistics of each input image that read its degradation directly, B×10
    (:data:`INPUT_STATISTICS`): the noise level by Immerkær's fast estimator (1996: the mean
    absolute response to a mask that cancels planes, × √(π/2)/6) on the grey level and two
    colour-opponent channels (sensor noise is coloured, photo detail mostly is not); the mean
    dark channel over 15-px patches and per pixel (He et al.'s haze evidence: near 0 on a clear
    photo, the airlight's share under haze); log mean brightness and log contrast (grey level's
    standard deviation), mean saturation, the fraction of pixels whose brightest channel
    exceeds 0.5 and that channel's mean (an under-exposed photo has no highlights; a dark photo
    of a bright subject has some). Means over pixels, pooled over an image's crops (tiles share
    the whole image's); convolutions and pooling only (ONNX, TorchScript, any size ≥ 3 px).
    """
    x = images.float().clamp(0.0, 1.0)
    grey = x.mean(dim=1, keepdim=True)
    red_green = x[:, :1] - x[:, 1:2]
    blue_yellow = x[:, 2:3] - 0.5 * (x[:, :1] + x[:, 1:2])
    mask = torch.tensor(_NOISE_MASK, dtype=x.dtype, device=x.device).view(1, 1, 3, 3)

    def mean(t: Tensor) -> Tensor:
        return pool_crops(t.mean(dim=(1, 2, 3)))

    def log_noise(channel: Tensor) -> Tensor:
        sigma = mean(F.conv2d(channel, mask).abs()) * (math.sqrt(math.pi / 2.0) / 6.0)
        return sigma.clamp(min=1e-5).log()

    lowest = x.amin(dim=1, keepdim=True)
    highest = x.amax(dim=1, keepdim=True)
    brightness = mean(grey)
    variance = (mean(grey.pow(2)) - brightness.pow(2)).clamp(min=1e-8)
    saturation = (highest - lowest) / highest.clamp(min=1e-3)
    return torch.stack([
        log_noise(grey), log_noise(red_green), log_noise(blue_yellow),
        mean(dark_channel(x, DARK_CHANNEL_PATCH)), mean(lowest), brightness.clamp(min=1e-4).log(),
        0.5 * variance.log(), mean(saturation), mean((highest > 0.5).to(x.dtype)), mean(highest),
    ], dim=1)  # fmt: skip


#: the banded shadow terms :func:`gate_statistics` adds: their powers and bands
GATE_SHADOW_POWERS, GATE_SHADOW_BANDS = (8.0, 32.0), 3
#: What :func:`gate_statistics` returns, in order.
GATE_STATISTICS: tuple[str, ...] = INPUT_STATISTICS + tuple(
    f"shadows p{p:g}, band {b + 1} of {GATE_SHADOW_BANDS}"
    for b in range(GATE_SHADOW_BANDS)
    for p in GATE_SHADOW_POWERS
)


def gate_statistics(images: Tensor) -> Tensor:
    """B×16 (:data:`GATE_STATISTICS`): :func:`input_statistics` and the shadow terms of three
    horizontal bands, top to bottom
    (:func:`~aioir.nn.degradation_classifier.banded_shadow_terms`, powers 8 and 32: how black
    each band's shadows are). What a statistics-reading gate reads of the input besides its
    classifier's verdict (:class:`StatisticsRoutedClassifierFilterBankHead`)."""
    banded = banded_shadow_terms(images, GATE_SHADOW_POWERS, GATE_SHADOW_BANDS)
    return torch.cat([input_statistics(images), banded], dim=1)


def _mean_std(t: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and (Bessel-corrected) standard deviation over the pixels of B×C×H×W,
    over all crops of an image while recording crops (:mod:`aioir.nn.image_statistics`)."""
    crops = crop_count()
    if crops == 1:
        return t.mean(dim=(2, 3)), t.std(dim=(2, 3))
    n = crops * t.shape[2] * t.shape[3]
    mean = pool_crops(t.mean(dim=(2, 3)))
    square = pool_crops(t.pow(2).mean(dim=(2, 3)))
    variance = (square - mean.pow(2)).clamp_min(0.0) * (n / max(1, n - 1))
    return mean, variance.sqrt()


class FilterBankHead(nn.Module):
    """A per-image softmax choice among the network output, the input, ``K`` linear filters of
    the input and ``E`` expert restorers of it (see the module docstring).

    Args:
        feature_channels: channels of the full-resolution features ``f``.
        context_channels: channels of the per-image context map ``c``.
        filters: ``K``, the number of linear filters.
        taps: filter side ``T`` (odd).
        hidden: width of the gate MLP.
        output_bias: initial logit of the network output (the others start at 0).
        experts: ``E`` restorers of the input (``forward(x)`` of the same shape), candidates
            ``K + 2 … K + E + 1``.

    Buffers: ``filters`` (K×T×T; identity until :meth:`set_filters`), ``fitted`` (whether
    they were set) and the descriptor statistics (:meth:`set_descriptor_stats`) — all saved in
    the weights.
    """

    filters: Tensor
    fitted: Tensor
    descriptor_mean: Tensor
    descriptor_std: Tensor
    gate: nn.Sequential
    #: the choice is a per-image decision (:mod:`aioir.nn.image_statistics`)
    image_statistics = True
    #: size of :meth:`input_terms` (none here; :class:`InputStatisticsFilterBankHead` adds some)
    input_terms_size = 0
    #: at inference, the most summed weight per image left out by not computing the least
    #: weighted candidates (:meth:`kept_candidates`; 0: compute every one)
    skip_mass: float = 1e-3

    def __init__(
        self,
        feature_channels: int,
        context_channels: int,
        filters: int = 12,
        taps: int = 15,
        hidden: int = 64,
        output_bias: float = 5.0,
        experts: Sequence[nn.Module] = (),
    ) -> None:
        super().__init__()
        if filters < 1:
            raise ValueError(f"filters must be at least 1, got {filters}")
        if taps < 1 or taps % 2 == 0:
            raise ValueError(f"taps must be a positive odd number, got {taps}")
        identity = torch.zeros(filters, taps, taps)
        identity[:, taps // 2, taps // 2] = 1.0
        self.register_buffer("filters", identity)
        self.register_buffer("fitted", torch.tensor(False))
        profile = len(DETAIL_SIGMAS) + 2  # detail_profile's size
        network_terms = 2 * context_channels + 2 * feature_channels + 2 * profile + 1
        descriptor = self.descriptor_size(network_terms)
        self.register_buffer("descriptor_mean", torch.zeros(descriptor))
        self.register_buffer("descriptor_std", torch.ones(descriptor))
        self.gate = nn.Sequential(
            nn.Linear(descriptor, hidden), nn.GELU(), nn.Linear(hidden, filters + 2 + len(experts))
        )
        self.experts = nn.ModuleList(experts)
        self.last_weights: Tensor | None = None
        #: the raw descriptors of the last choice (:meth:`weights`), for a told re-choice
        self.last_descriptor: Tensor | None = None
        nn.init.zeros_(self.gate[-1].weight)
        with torch.no_grad():
            self.gate[-1].bias.zero_()
            self.gate[-1].bias[0] = output_bias

    @property
    def num_filters(self) -> int:
        return int(self.filters.shape[0])

    @property
    def num_experts(self) -> int:
        return len(self.experts)

    def expert_fingerprints(self) -> list[str]:
        """Each expert's :func:`weights_fingerprint`, in candidate order."""
        return [weights_fingerprint(expert) for expert in self.experts]

    @property
    def num_candidates(self) -> int:
        """``K + E + 2``: the output, the input, the filters and the experts."""
        return self.num_filters + self.num_experts + 2

    @property
    def taps(self) -> int:
        return int(self.filters.shape[-1])

    @property
    def hidden(self) -> int:
        """Width of the gate MLP."""
        return int(self.gate[0].out_features)

    @torch.no_grad()
    def set_filters(self, filters: Tensor) -> None:
        """Install fitted filters (K×T×T, e.g. from :meth:`LeastSquaresFilterFit.solve`)."""
        if filters.shape != self.filters.shape:
            raise ValueError(
                f"expected filters of shape {tuple(self.filters.shape)}, got {tuple(filters.shape)}"
            )
        self.filters.copy_(filters)
        self.fitted.fill_(True)

    def descriptor(self, y: Tensor, x: Tensor, features: Tensor, context: Tensor) -> Tensor:
        """What the choice is made from, B×D (before normalisation): :meth:`assemble` of
        :meth:`network_terms` and :meth:`input_terms`."""
        terms = self.network_terms(y, x, features, context)
        return self.assemble(terms, self.input_terms(x) if self.input_terms_size else None)

    def descriptor_size(self, network_terms: int) -> int:
        """``D``, the size of :meth:`assemble`'s descriptor from ``network_terms`` of them."""
        return network_terms + self.input_terms_size

    def assemble(self, network_terms: Tensor, input_terms: Tensor | None) -> Tensor:
        """The descriptor (B×D) from its parts: every one of :meth:`network_terms` (as stored
        gate examples hold them), then :meth:`input_terms` (``None`` when there are none)."""
        if not self.input_terms_size:
            return network_terms
        if input_terms is None:
            raise ValueError(f"{type(self).__name__} reads input terms: give them")
        return torch.cat([network_terms, input_terms], dim=1)

    def input_terms_id(self) -> str:
        """What :meth:`input_terms` are, for stored examples (``""``: none; equal ids, equal
        terms of the same crops)."""
        return ""

    def input_terms(self, x: Tensor) -> Tensor:
        """The descriptor's terms read from the input alone, B×:attr:`input_terms_size` (none
        here): a fit computes them from its crops without the network, so stored examples of
        :meth:`network_terms` serve any head's."""
        return x.new_zeros(x.shape[0], 0)

    def network_terms(self, y: Tensor, x: Tensor, features: Tensor, context: Tensor) -> Tensor:
        """The descriptor's terms that need the network: pooled context and features, the
        input's detail profile, and how much the network changed the input (log mean squared
        change, and the change of the detail profile)."""
        c, f = context.float(), features.float()
        x, y = x.float(), y.float()
        profile_x, profile_y = detail_profile(x), detail_profile(y)
        change = pool_crops((y - x).pow(2).mean(dim=(1, 2, 3))).clamp(min=1e-10).log()
        (c_mean, c_std), (f_mean, f_std) = _mean_std(c), _mean_std(f)
        return torch.cat(
            [c_mean, c_std, f_mean, f_std, profile_x, change[:, None], profile_y - profile_x],
            dim=1,
        )

    def weights(self, y: Tensor, x: Tensor, features: Tensor, context: Tensor) -> Tensor:
        """The per-image candidate weights, B×(K+E+2): output, input, filter 1 … K, expert
        1 … E."""

        def choose() -> Tensor:
            descriptor = self.descriptor(y, x, features, context)
            self.last_descriptor = descriptor.detach()
            return self.choose(descriptor)

        return image_statistic(self, y.shape[0], choose)

    def choose(self, descriptor: Tensor) -> Tensor:
        """The candidate weights (B×(K+E+2)) for descriptors as :meth:`assemble` makes them
        (not normalised): the gate's :meth:`mix` of them."""
        return self.mix(self.gate(self.normalize(descriptor)), descriptor)

    def mix(self, logits: Tensor, descriptor: Tensor) -> Tensor:
        """Candidate weights from the gate's ``logits`` (here their softmax; ``descriptor``, the
        raw descriptor, is for heads whose choice also reads it unnormalised)."""
        return logits.softmax(dim=1)

    def log_mix(self, logits: Tensor, descriptor: Tensor) -> Tensor:
        """The logarithm of :meth:`mix` (here ``log_softmax``: exact where a weight is tiny)."""
        return logits.log_softmax(dim=1)

    def normalize(self, descriptor: Tensor) -> Tensor:
        """Standardise a descriptor with the stored statistics (:meth:`set_descriptor_stats`)."""
        return (descriptor - self.descriptor_mean) / self.descriptor_std

    @torch.no_grad()
    def set_descriptor_stats(self, descriptors: Tensor) -> None:
        """Store the mean and standard deviation of example descriptors (N×D)."""
        self.descriptor_mean.copy_(descriptors.mean(dim=0))
        self.descriptor_std.copy_(descriptors.std(dim=0).clamp(min=1e-2))

    def candidate(self, j: int, y: Tensor, x: Tensor) -> Tensor:
        """Candidate ``j``: 0 = the network output, 1 = the input, ``k + 1`` = filter ``k``
        (1 … K), ``K + 1 + e`` = expert ``e`` (1 … E)."""
        if j == 0:
            return y
        if j >= self.num_filters + 2:
            return self.experts[j - self.num_filters - 2](x).to(y.dtype)
        x = x.to(y.dtype)
        return x if j == 1 else apply_filter(x, self.filters[j - 2])

    def forward(self, y: Tensor, x: Tensor, features: Tensor, context: Tensor) -> Tensor:
        """The weighted mix of the candidates for each image (one candidate in memory at a
        time)."""
        weights = self.weights(y, x, features, context)
        self.last_weights = weights.detach()  # the last choice, for --explain
        if _may_skip(self.skip_mass):
            kept = self.kept_candidates(weights, self.skip_mass)
            if len(kept) < self.num_candidates:
                weights = weights[:, kept]
                weights = weights / weights.sum(dim=1, keepdim=True)
        else:
            kept = list(range(self.num_candidates))
        w = weights.to(y.dtype)[:, :, None, None, None]
        out = torch.zeros_like(y)
        for i, j in enumerate(kept):
            out = out + w[:, i] * self.candidate(j, y, x)
        return out

    @staticmethod
    def kept_candidates(weights: Tensor, skip_mass: float) -> list[int]:
        """The candidates worth computing for a batch's ``weights`` (B×N), in order: all but
        the least weighted ones whose summed weight stays within ``skip_mass`` for every image
        (ranked by their largest weight in the batch)."""
        order = weights.amax(dim=0).argsort()
        left_out = weights[:, order].cumsum(dim=1).amax(dim=0) <= skip_mass
        skipped = set(order[left_out].tolist())
        return [j for j in range(weights.shape[1]) if j not in skipped]


def _may_skip(skip_mass: float) -> bool:
    """Whether candidates may be left out now: inference in eager mode only."""
    return skip_mass > 0 and not torch.is_grad_enabled() and not capturing_graph()


class InputStatisticsFilterBankHead(FilterBankHead):
    """A :class:`FilterBankHead` whose gate also reads :func:`input_statistics`: the input's
    noise level, dark channel, exposure and saturation, which name the degradations the
    network's pooled features leave ambiguous (a hazy photo that the network leaves alone looks
    clean to a gate that reads only the network; noise on a dark photo looks like low light).
    Same arguments as :class:`FilterBankHead`."""

    input_terms_size = len(INPUT_STATISTICS)

    def input_terms(self, x: Tensor) -> Tensor:
        return input_statistics(x)

    def input_terms_id(self) -> str:
        return "input_statistics"


#: The log-route a routed gate's :meth:`~RoutedClassifierFilterBankHead.give_classes` gives the
#: classes the input was not said to have: their gates weigh e⁻⁴⁰ of the mix (finite: no NaN).
GIVEN_CLASS_LOG_FLOOR = -40.0


class ClassifierFilterBankHead(FilterBankHead):
    """A :class:`FilterBankHead` whose gate also reads what a
    :class:`~aioir.nn.degradation_classifier.DegradationClassifier` makes of the input (its
    log-probabilities): a classifier trained on many thousands of synthetic crops names the
    degradation where the restoration network's features, trained for something else, place a
    hazy photo among clean ones. Its weights are the head's (``classifier.*``), trained before
    the gate and frozen in it (:mod:`aioir.engine.degradation_classifier`).

    Args: as :class:`FilterBankHead`, and ``classifier``.
    """

    #: input terms read before the classifier's (none here: :class:`_GateStatistics` adds some)
    statistics_terms = 0

    def __init__(self, *args: Any, classifier: DegradationClassifier, **kwargs: Any) -> None:
        # the descriptor's size depends on it: set before the base class sizes the gate
        self.__dict__["input_terms_size"] = self.statistics_terms + classifier.num_classes
        super().__init__(*args, **kwargs)
        self.classifier = classifier

    def input_terms(self, x: Tensor) -> Tensor:
        return self.classifier(x).float().log_softmax(dim=1)

    def input_terms_id(self) -> str:
        return f"classifier:{weights_fingerprint(self.classifier)}"


class CompactClassifierFilterBankHead(ClassifierFilterBankHead):
    """A :class:`ClassifierFilterBankHead` whose gate reads, of the network's terms, only the
    input's detail profile and how much the network changed the input (the blur and change
    terms: ``2·P + 1`` numbers), not its pooled features and context map — a gate of a few
    dozen inputs where a few hundred let it tell its training crops apart by the network's
    features and be sure of itself far from them. Same arguments."""

    @property
    def kept_network_terms(self) -> int:
        """How many of the network terms (their tail) the gate reads."""
        return 2 * (len(DETAIL_SIGMAS) + 2) + 1

    def descriptor_size(self, network_terms: int) -> int:
        return self.kept_network_terms + self.input_terms_size

    def assemble(self, network_terms: Tensor, input_terms: Tensor | None) -> Tensor:
        return super().assemble(network_terms[:, -self.kept_network_terms :], input_terms)


def told_routes(num_classes: int, classes: Sequence[int]) -> Tensor:
    """The log-routes (``num_classes``) of an input said to have ``classes`` (indices): each of
    them ``−log n`` (equal shares), every other class :data:`GIVEN_CLASS_LOG_FLOOR`. What a
    routed gate mixes its class gates by when told (:meth:`_RoutedGate.give_classes`), and the
    classifier terms its told gate is fitted and run with (:class:`ToldGate`). ValueError for
    no class or an index out of range."""
    wanted = sorted({int(c) for c in classes})
    if not wanted or any(not 0 <= c < num_classes for c in wanted):
        raise ValueError(f"class indices must be in [0, {num_classes}), got {list(classes)}")
    routes = torch.full((num_classes,), GIVEN_CLASS_LOG_FLOOR)
    routes[wanted] = -math.log(len(wanted))
    return routes


class ToldGate(nn.Module):
    """The gate a routed head (:class:`_RoutedGate`) uses when the user names the degradation:
    a gate of the head's shape with descriptor statistics of its own, fitted on the gate
    examples with every example's classifier terms replaced by the :func:`told_routes` of its
    true task (``filter_bank.told_gate``, :func:`aioir.engine.filter_bank.fit_told_gate`).

    Why: the blind gate of a class learns from every example the classifier *assigns* to it —
    the haze gate from hazy crops and from the pale clean crops that the classifier also calls
    hazy — and hedges accordingly; told that a photo is hazy, the head should restore it as
    hazy crops are best restored, which is what this gate learnt (from the true tasks alone).

    Args:
        gate: the MLP (``Linear → GELU → Linear``, the head gate's shape).
        descriptor_size: the descriptor's length ``D``.
    """

    descriptor_mean: Tensor
    descriptor_std: Tensor

    def __init__(self, gate: nn.Sequential, descriptor_size: int) -> None:
        super().__init__()
        self.gate = gate
        self.register_buffer("descriptor_mean", torch.zeros(descriptor_size))
        self.register_buffer("descriptor_std", torch.ones(descriptor_size))

    def forward(self, descriptor: Tensor) -> Tensor:
        """The gate's logits for raw descriptors (B×D) whose classifier terms are told routes."""
        return self.gate((descriptor - self.descriptor_mean) / self.descriptor_std)


class _RoutedGate(ClassifierFilterBankHead):
    """The gate of a classifier-reading head as one gate per degradation class, mixed by the
    classifier: ``w = Σ_c p(c|x)·softmax(G_c(descriptor))``. The gate's last layer gives
    ``C × (K+E+2)`` logits, one block per class; ``p(c|x)`` are the classifier's probabilities
    (the descriptor's last ``C`` terms are their logarithms). Fitted on the gate examples with
    the same mixture, each class's gate learns from the examples the classifier assigns to it:
    the noise gate from noisy crops only, so a photo the classifier calls noisy is restored as
    noisy crops were, even where the network's features resemble another task's (a pale photo
    whose features look hazy). Which degradation it is, the classifier decides (trained on tens
    of thousands of crops); what to do about it, the class's gate (its few hundred examples).

    A user who knows what is wrong with a photo can say so (:meth:`give_classes`): the head
    then mixes those classes' gates alone, equally, whatever the classifier says — the blind
    gates reading the classifier's verdict among their terms, as they were fitted, or, when
    the head has one (``told_gate=True``), the :class:`ToldGate` fitted for being told, which
    reads the told routes in the verdict's place."""

    told_gate: ToldGate | None

    def __init__(self, *args: Any, told_gate: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        last = self.gate[-1]
        routed = nn.Linear(last.in_features, self.classifier.num_classes * self.num_candidates)
        nn.init.zeros_(routed.weight)
        with torch.no_grad():  # every class's block starts as the single gate did
            routed.bias.copy_(last.bias.detach().repeat(self.classifier.num_classes))
        self.gate[-1] = routed
        # the routes a user gave (give_classes), log-probabilities; empty: the classifier's
        self.given_routes: Tensor
        self.register_buffer("given_routes", torch.zeros(0), persistent=False)
        size = int(self.descriptor_mean.numel())
        self.told_gate = ToldGate(copy.deepcopy(self.gate), size) if told_gate else None

    @property
    def given_classes(self) -> list[int]:
        """The classes the input was said to have (:meth:`give_classes`); empty when none."""
        if not self.given_routes.numel():
            return []
        return (self.given_routes > GIVEN_CLASS_LOG_FLOOR).nonzero().flatten().tolist()

    def give_classes(self, classes: Sequence[int]) -> None:
        """Route every input to the gates of ``classes`` (indices into the classifier's classes,
        equally weighted) instead of by the classifier's probabilities; an empty sequence hands
        the routing back to the classifier. ValueError for an index out of range."""
        device = self.given_routes.device
        if not len(classes):
            self.given_routes = torch.zeros(0, device=device)
            return
        self.given_routes = told_routes(self.classifier.num_classes, classes).to(device)

    def told_choice(self, descriptor: Tensor, classes: Sequence[int]) -> Tensor:
        """The candidate weights (B×(K+E+2)) the head would give raw ``descriptor`` if told
        ``classes`` (:meth:`give_classes`), whatever it was told now (which it keeps)."""
        given = self.given_routes
        try:
            self.give_classes(classes)
            return self.choose(descriptor)
        finally:
            self.given_routes = given

    def told_changes(self, descriptor: Tensor) -> Tensor:
        """B×C: for each class, the share of the candidates' weight (0–1) that telling it
        (:meth:`told_choice`) moves from the head's present choice for raw ``descriptor``."""
        now = self.choose(descriptor)
        return torch.stack([
            0.5 * (self.told_choice(descriptor, [k]) - now).abs().sum(dim=1)
            for k in range(self.classifier.num_classes)
        ], dim=1)  # fmt: skip

    def told_descriptor(self, descriptor: Tensor, routes: Tensor) -> Tensor:
        """``descriptor`` (B×D, raw) with its classifier terms (the last ``C``) replaced by
        ``routes`` (``C`` or B×C log-routes, :func:`told_routes`)."""
        c = self.classifier.num_classes
        given = routes.to(descriptor).expand(descriptor.shape[0], c)
        return torch.cat([descriptor[:, :-c], given], dim=1)

    def choose(self, descriptor: Tensor) -> Tensor:
        """As :meth:`FilterBankHead.choose`; when told (:meth:`give_classes`) and the head has
        a :class:`ToldGate`, that gate's choice for the descriptor with the told routes in the
        classifier's place."""
        if self.given_routes.numel() and self.told_gate is not None:
            told = self.told_descriptor(descriptor, self.given_routes)
            return self.mix(self.told_gate(told), told)
        return super().choose(descriptor)

    def log_routes(self, descriptor: Tensor) -> Tensor:
        """``log p(c|x)`` (B×C) from raw descriptors: their last ``C`` terms (the classifier's
        log-probabilities), normalised again — or the routes a user gave."""
        if self.given_routes.numel():  # told, not asked
            return self.given_routes.to(descriptor.device).expand(descriptor.shape[0], -1)
        return descriptor[:, -self.classifier.num_classes :].float().log_softmax(dim=1)

    def log_mix(self, logits: Tensor, descriptor: Tensor) -> Tensor:
        # log Σ_c p_c·softmax_c = logsumexp_c (log p_c + log_softmax_c): exact for tiny weights
        per_class = logits.view(logits.shape[0], self.classifier.num_classes, -1)
        log_routes = self.log_routes(descriptor).to(per_class.dtype)
        return (log_routes[:, :, None] + per_class.log_softmax(dim=2)).logsumexp(dim=1)

    def mix(self, logits: Tensor, descriptor: Tensor) -> Tensor:
        return self.log_mix(logits, descriptor).exp()


class RoutedClassifierFilterBankHead(_RoutedGate, ClassifierFilterBankHead):
    """A :class:`ClassifierFilterBankHead` whose gate is one per degradation class, mixed by the
    classifier's probabilities (:class:`_RoutedGate`). Same arguments."""


class RoutedCompactClassifierFilterBankHead(_RoutedGate, CompactClassifierFilterBankHead):
    """A :class:`CompactClassifierFilterBankHead` with a routed gate (:class:`_RoutedGate`)."""


#: The heads whose gate is one per degradation class (their statistics-reading subclasses
#: too): what ``isinstance`` asks of a head that is told a task, fits a told gate or hints.
ROUTED_HEADS: tuple[
    type[RoutedClassifierFilterBankHead], type[RoutedCompactClassifierFilterBankHead]
] = (RoutedClassifierFilterBankHead, RoutedCompactClassifierFilterBankHead)


class _GateStatistics(ClassifierFilterBankHead):
    """A classifier-reading head whose gate also reads :func:`gate_statistics` of the input,
    before the classifier's terms (which stay last: a routed gate reads its routes there).

    Why: a class's gate learns what to do from the examples its classifier sends it, and
    reads them through the network's terms and the verdict alone — a pale clean crop and a
    hazy one that the classifier reads alike look alike to it, so the haze gate hedges on
    both. The dark channel, exposure and the shadows of horizontal bands (haze grows towards
    the far field, at the top; a pale scene is lifted evenly) let the gate weigh what it
    does by what the input shows, without changing the verdict that routes it."""

    statistics_terms = len(GATE_STATISTICS)

    def input_terms(self, x: Tensor) -> Tensor:
        return torch.cat([gate_statistics(x), super().input_terms(x)], dim=1)

    def input_terms_id(self) -> str:
        return f"gate_statistics+{super().input_terms_id()}"


class StatisticsRoutedClassifierFilterBankHead(_GateStatistics, RoutedClassifierFilterBankHead):
    """A :class:`RoutedClassifierFilterBankHead` whose gates also read the input's
    statistics (:class:`_GateStatistics`). Same arguments."""


class StatisticsRoutedCompactClassifierFilterBankHead(
    _GateStatistics, RoutedCompactClassifierFilterBankHead
):
    """A :class:`RoutedCompactClassifierFilterBankHead` whose gates also read the input's
    statistics (:class:`_GateStatistics`). Same arguments."""


class LeastSquaresFilterFit:
    """Accumulates normal equations to fit one ``T×T`` filter per group by least squares.

    For each group ``g`` it finds ``h`` minimising ``Σ ‖h ⋆ input − target‖²`` over the pairs
    added to ``g`` (all channels share the filter; :func:`apply_filter`'s padding). Products and
    sums are float64; ``solve`` adds a small ridge ``λ·mean(diag)`` for stability.
    """

    def __init__(self, groups: int, taps: int = 15) -> None:
        if taps < 1 or taps % 2 == 0:
            raise ValueError(f"taps must be a positive odd number, got {taps}")
        n = taps * taps
        self.taps = taps
        self.gram = torch.zeros(groups, n, n, dtype=torch.float64)
        self.cross = torch.zeros(groups, n, dtype=torch.float64)
        self.count = torch.zeros(groups, dtype=torch.long)

    def add(self, group: int, inputs: Tensor, targets: Tensor) -> None:
        """Add pairs (B×C×H×W each) to ``group``."""
        if inputs.shape != targets.shape:
            raise ValueError(f"inputs {tuple(inputs.shape)} ≠ targets {tuple(targets.shape)}")
        # float64 products, not only float64 sums: the normal equations of blurred inputs are
        # ill-conditioned, and float32 Gram matrices cost the fitted filters ≈ 1 dB
        padded = _pad_channels(inputs.double(), self.taps)
        design = F.unfold(padded, self.taps).transpose(1, 2).reshape(-1, self.taps**2)
        target = targets.double().reshape(-1)
        self.gram[group] += design.T @ design
        self.cross[group] += design.T @ target
        self.count[group] += inputs.shape[0]

    def solve(self, ridge: float = 1e-6) -> Tensor:
        """The fitted filters, groups×T×T (float32). Every group needs pairs."""
        empty = (self.count == 0).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"no pairs were added to group(s) {empty}")
        n = self.taps**2
        eye = torch.eye(n, dtype=torch.float64)
        scale = self.gram.diagonal(dim1=1, dim2=2).mean(dim=1)[:, None, None]
        # Cholesky, not torch.linalg.solve: the system is symmetric positive definite, and the
        # batched LU solve of torch's CPU build fails (MKL "DLASWP" error) once
        # torch.set_num_threads(n ≥ 2) has been called, as `trainer.num_threads` does
        factor = torch.linalg.cholesky(self.gram + ridge * scale * eye)
        h = torch.cholesky_solve(self.cross.unsqueeze(-1), factor).squeeze(-1)
        return h.view(-1, self.taps, self.taps).float()
