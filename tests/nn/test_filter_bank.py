"""Filter bank: the filter convention, the least-squares fit, the head's candidate mix."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from aioir.nn.filter_bank import (
    DETAIL_SIGMAS,
    GATE_STATISTICS,
    INPUT_STATISTICS,
    FilterBankHead,
    InputStatisticsFilterBankHead,
    LeastSquaresFilterFit,
    apply_filter,
    detail_profile,
    gate_statistics,
    input_statistics,
)


def _images(n: int = 4, size: int = 40, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.avg_pool2d(torch.rand(n, 3, size + 2, size + 2, generator=g), 3, stride=1)


def test_apply_filter_is_a_correlation_with_reflect_padding():
    x = _images(2)
    delta = torch.zeros(5, 5)
    delta[2, 2] = 1.0
    assert torch.equal(apply_filter(x, delta), x)
    right = torch.zeros(5, 5)
    right[2, 3] = 1.0  # correlation: output(i, j) = x(i, j + 1)
    out = apply_filter(x, right)
    assert torch.allclose(out[..., :-1], x[..., 1:])
    assert torch.allclose(out[..., -1], x[..., -2])  # reflect padding at the right edge


def test_least_squares_fit_recovers_a_known_filter():
    g = torch.Generator().manual_seed(1)
    truth = torch.rand(2, 5, 5, generator=g)
    truth /= truth.sum(dim=(1, 2), keepdim=True)
    fit = LeastSquaresFilterFit(groups=2, taps=5)
    for k in range(2):
        for _ in range(3):
            x = torch.rand(2, 3, 24, 24, generator=g)
            fit.add(k, x, apply_filter(x, truth[k]))
    solved = fit.solve(ridge=1e-10)
    assert torch.allclose(solved, truth, atol=1e-4)
    assert fit.count.tolist() == [6, 6]


def test_least_squares_fit_is_exact_on_ill_conditioned_blurred_inputs():
    # twice box-blurred inputs make the normal equations nearly singular: with float32 products
    # the recovered filter was off by ~30 per tap; float64 products recover it to 1e-6
    g = torch.Generator().manual_seed(3)
    truth = torch.randn(7, 7, generator=g) * 0.1
    truth[3, 3] += 1.0
    box = torch.full((5, 5), 1 / 25)
    fit = LeastSquaresFilterFit(groups=1, taps=7)
    for _ in range(4):
        x = apply_filter(apply_filter(torch.rand(4, 3, 64, 64, generator=g), box), box)
        fit.add(0, x, apply_filter(x, truth))
    assert torch.allclose(fit.solve(ridge=1e-12)[0], truth, atol=1e-4)


def test_least_squares_fit_solves_a_batch_after_set_num_threads():
    # torch's CPU build fails a batched LU solve of 4 × 225×225 systems (MKL "DLASWP") once
    # torch.set_num_threads(2) was called, as `trainer.num_threads` does; the fit uses Cholesky
    g = torch.Generator().manual_seed(4)
    fit = LeastSquaresFilterFit(groups=4, taps=15)
    for k in range(4):
        x = torch.rand(2, 3, 32, 32, generator=g)
        fit.add(k, x, x)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        solved = fit.solve()
    finally:
        torch.set_num_threads(threads)
    identity = torch.zeros(15, 15)
    identity[7, 7] = 1.0
    assert torch.allclose(solved, identity.expand(4, 15, 15), atol=1e-3)


def test_least_squares_fit_rejects_empty_groups_and_bad_shapes():
    fit = LeastSquaresFilterFit(groups=2, taps=3)
    fit.add(0, torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"group\(s\) \[1\]"):
        fit.solve()
    with pytest.raises(ValueError, match="targets"):
        fit.add(0, torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))
    with pytest.raises(ValueError, match="odd"):
        LeastSquaresFilterFit(groups=1, taps=4)


def test_detail_profile_sees_blur_and_its_direction_but_not_contrast():
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    sharp = detail_profile(x)
    assert sharp.shape == (1, len(DETAIL_SIGMAS) + 2)
    assert sharp[0, len(DETAIL_SIGMAS) - 1] == 0  # relative to the coarsest scale
    blurred = detail_profile(apply_filter(x, torch.full((5, 5), 1 / 25)))
    assert (blurred[0, :3] < sharp[0, :3] - 1.0).all()  # fine detail is gone
    streak = torch.zeros(5, 5)
    streak[2, :] = 0.2  # horizontal motion: horizontal gradients vanish, vertical ones stay
    moved = detail_profile(apply_filter(x, streak))
    assert moved[0, -2] > sharp[0, -2] + 1.0
    assert torch.allclose(detail_profile(0.5 * x), sharp, atol=1e-4)


def _head(filters: int = 3) -> FilterBankHead:
    torch.manual_seed(0)
    head = FilterBankHead(feature_channels=4, context_channels=5, filters=filters, taps=5)
    kernels = torch.rand(filters, 5, 5)
    head.set_filters(kernels / kernels.sum(dim=(1, 2), keepdim=True))
    return head.eval()


def test_head_mixes_output_input_and_filters_by_its_weights():
    head = _head()
    x, y = _images(2), _images(2, seed=5)
    f, c = torch.randn(2, 4, 40, 40), torch.randn(2, 5, 10, 10)
    w = head.weights(y, x, f, c)
    assert w.shape == (2, 5)
    assert torch.allclose(w.sum(dim=1), torch.ones(2))
    # a new head starts close to the network: zero last layer, output bias 5
    assert torch.allclose(w[:, 0], torch.full((2,), 1 / (1 + 4 * torch.exp(torch.tensor(-5.0)))))
    expected = w[:, 0, None, None, None] * y + w[:, 1, None, None, None] * x
    for k in range(3):
        expected = expected + w[:, k + 2, None, None, None] * apply_filter(x, head.filters[k])
    assert torch.allclose(head(y, x, f, c), expected, atol=1e-6)


def test_head_descriptor_reads_how_much_the_network_changed_the_input():
    head = _head()
    x = _images(2)
    f, c = torch.randn(2, 4, 40, 40), torch.randn(2, 5, 10, 10)
    profile = len(DETAIL_SIGMAS) + 2
    unchanged = head.descriptor(x, x, f, c)
    assert unchanged.shape == (2, head.gate[0].in_features)
    assert torch.allclose(unchanged[:, -profile:], torch.zeros(2, profile))  # same detail
    smoothed = apply_filter(x, torch.full((5, 5), 1 / 25))
    changed = head.descriptor(smoothed, x, f, c)
    assert (changed[:, -profile - 1] > unchanged[:, -profile - 1] + 5).all()  # log change
    assert (changed[:, -profile] < -1).all()  # the network removed the finest detail
    assert torch.equal(changed[:, : -profile - 1], unchanged[:, : -profile - 1])


@pytest.mark.parametrize("choice", [0, 1, 3])
def test_head_returns_the_candidate_its_gate_picks(choice):
    head = _head()
    with torch.no_grad():
        head.gate[-1].bias.zero_()
        head.gate[-1].bias[choice] = 60.0
    x, y = _images(2), _images(2, seed=5)
    out = head(y, x, torch.randn(2, 4, 40, 40), torch.randn(2, 5, 10, 10))
    picked = [y, x, *(apply_filter(x, head.filters[k]) for k in range(3))][choice]
    assert torch.allclose(out, picked, atol=1e-6)


class _CountingExpert(torch.nn.Module):
    """An expert that brightens its input and counts its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return (x + 0.3).clamp(max=1)


def _head_with_expert(expert_logit: float) -> tuple[FilterBankHead, _CountingExpert]:
    torch.manual_seed(0)
    expert = _CountingExpert()
    head = FilterBankHead(
        feature_channels=4, context_channels=5, filters=3, taps=5, experts=[expert]
    )
    with torch.no_grad():
        head.gate[-1].bias.copy_(torch.tensor([8.0, 6.0, 2.0, 2.0, 2.0, expert_logit]))
    return head.eval(), expert


def test_kept_candidates_leave_out_the_least_weighted_within_the_mass_for_every_image():
    weights = torch.tensor([[0.6, 0.3995, 4e-4, 1e-4, 0.0], [0.9, 0.0996, 1e-4, 3e-4, 0.0]])
    # ranked by their largest weight: 4 (0), 3 (3e-4), 2 (4e-4); 3 and 2 sum to 5e-4 and 4e-4
    assert FilterBankHead.kept_candidates(weights, 1e-3) == [0, 1]
    assert FilterBankHead.kept_candidates(weights, 4.5e-4) == [0, 1, 2]  # 2 would make 5e-4
    assert FilterBankHead.kept_candidates(weights, 0.0) == [0, 1, 2, 3]  # a zero weight goes
    assert FilterBankHead.kept_candidates(weights, 0.5) == [0]  # never every candidate


def test_head_skips_a_candidate_of_negligible_weight_at_inference_only():
    head, expert = _head_with_expert(expert_logit=-10.0)
    x, y = _images(2), _images(2, seed=5)
    f, c = torch.randn(2, 4, 40, 40), torch.randn(2, 5, 10, 10)
    with torch.no_grad():
        w = head.weights(y, x, f, c)
        assert (w[:, 5] < 1e-7).all() and (w[:, 2:5].sum(dim=1) > 1e-3).all()
        skipped = head(y, x, f, c)
        assert expert.calls == 0
        head.skip_mass = 0.0
        every = head(y, x, f, c)
        assert expert.calls == 1
    # the output moves by at most the skipped weight times the candidates' spread
    assert (skipped - every).abs().max() <= 1e-6
    torch.testing.assert_close(head.last_weights, w)  # --explain still sees every weight
    head.skip_mass = 1e-3
    head(y, x, f, c)  # gradients recorded: every candidate
    assert expert.calls == 2
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.trace's deprecation and tracer warnings
        torch.jit.trace(head, (y, x, f, c), check_trace=False)
    assert expert.calls == 3  # tracing records every candidate, even without gradients


def test_head_computes_a_candidate_one_image_of_the_batch_needs(monkeypatch):
    head, expert = _head_with_expert(expert_logit=-10.0)
    x, y = _images(2), _images(2, seed=5)
    f, c = torch.randn(2, 4, 40, 40), torch.randn(2, 5, 10, 10)
    with torch.no_grad():
        w = head.weights(y, x, f, c)
        w[1, 5], w[1, 0] = 0.5, w[1, 0] - 0.5
        monkeypatch.setattr(head, "weights", lambda *args: w)
        out = head(y, x, f, c)
    assert expert.calls == 1
    assert (out[1] - out[0]).abs().mean() > 0.05


def test_set_filters_checks_the_shape_and_marks_the_bank_fitted():
    head = FilterBankHead(4, 5, filters=2, taps=3)
    assert not bool(head.fitted)
    assert torch.equal(head.filters[:, 1, 1], torch.ones(2))  # identity until fitted
    with pytest.raises(ValueError, match="shape"):
        head.set_filters(torch.rand(3, 3, 3))
    head.set_filters(torch.rand(2, 3, 3))
    assert bool(head.fitted)
    state = head.state_dict()
    assert {"filters", "fitted", "descriptor_mean", "descriptor_std"} <= set(state)


def test_input_statistics_read_noise_haze_and_exposure():
    """Noise raises the noise estimate (grey and colour), haze the dark channel, darkening
    lowers the brightness and the highlights; a crop-split image has its whole image's."""
    from aioir.nn.image_statistics import recording

    x = _images(2, size=64)
    base = input_statistics(x)
    assert base.shape == (2, len(INPUT_STATISTICS))
    noisy = input_statistics(
        (x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    )
    assert (noisy[:, :3] > base[:, :3] + 0.5).all()  # log σ
    sigma = 0.03
    flat = torch.full((1, 3, 64, 64), 0.5)
    noise = sigma * torch.randn(flat.shape, generator=torch.Generator().manual_seed(2))
    estimate = input_statistics(flat + noise)[0, 0].exp()
    assert abs(estimate.item() - sigma / 3**0.5) < 0.004  # the grey level averages 3 channels
    hazy = input_statistics(0.4 * x + 0.6 * 0.9)  # t = 0.4, airlight 0.9
    assert (hazy[:, 3] > base[:, 3] + 0.3).all()
    dark = input_statistics(0.1 * x)
    assert (dark[:, 5] < base[:, 5] - 2.0).all() and (dark[:, 8] == 0).all()
    # two crops of one image (side by side) pool to the whole image's statistics
    whole = _images(1, size=64)
    crops = torch.cat([whole[..., :32], whole[..., 32:]])
    with recording(crops=2):
        pooled = input_statistics(crops)
    direct = input_statistics(whole)
    # means of per-pixel quantities pool exactly; the 15-px and 3×3 windows see crop borders
    assert torch.allclose(pooled[0, 4:], direct[0, 4:], atol=1e-5)
    assert torch.allclose(pooled[0], pooled[1])


def test_input_statistics_head_appends_them_to_the_descriptor():
    torch.manual_seed(0)
    plain = FilterBankHead(feature_channels=4, context_channels=5, filters=2, taps=3)
    torch.manual_seed(0)
    head = InputStatisticsFilterBankHead(feature_channels=4, context_channels=5, filters=2, taps=3)
    x, y = _images(2), _images(2, seed=5)
    f, c = torch.randn(2, 4, 40, 40), torch.randn(2, 5, 10, 10)
    d = head.descriptor(y, x, f, c)
    assert head.input_terms_size == len(INPUT_STATISTICS) and plain.input_terms_size == 0
    assert d.shape == (2, head.gate[0].in_features)
    assert head.gate[0].in_features == plain.gate[0].in_features + len(INPUT_STATISTICS)
    assert torch.equal(d[:, : -len(INPUT_STATISTICS)], plain.descriptor(y, x, f, c))
    assert torch.equal(d[:, -len(INPUT_STATISTICS) :], input_statistics(x))
    assert head(y, x, f, c).shape == x.shape


def _classifier_head(compact: bool = False) -> FilterBankHead:
    from aioir.nn.degradation_classifier import DegradationClassifier
    from aioir.nn.filter_bank import ClassifierFilterBankHead, CompactClassifierFilterBankHead

    torch.manual_seed(0)
    classifier = DegradationClassifier(["noise", "haze", "clean"], widths=(4, 6), hidden=8)
    kind = CompactClassifierFilterBankHead if compact else ClassifierFilterBankHead
    return kind(feature_channels=4, context_channels=5, filters=2, taps=3, classifier=classifier)


def test_classifier_head_appends_the_classifier_log_probabilities():
    torch.manual_seed(0)
    plain = FilterBankHead(feature_channels=4, context_channels=5, filters=2, taps=3)
    head = _classifier_head().eval()
    x, y = _images(2), _images(2, seed=5)
    f, c = torch.randn(2, 4, 40, 40), torch.randn(2, 5, 10, 10)
    with torch.no_grad():
        d = head.descriptor(y, x, f, c)
        log_probabilities = head.classifier(x).log_softmax(dim=1)
    assert head.input_terms_size == 3
    assert head.gate[0].in_features == plain.gate[0].in_features + 3 == d.shape[1]
    assert torch.equal(d[:, :-3], plain.descriptor(y, x, f, c))
    torch.testing.assert_close(d[:, -3:], log_probabilities)
    assert head(y, x, f, c).shape == x.shape


def test_compact_classifier_head_reads_only_the_blur_and_change_terms():
    torch.manual_seed(0)
    plain = FilterBankHead(feature_channels=4, context_channels=5, filters=2, taps=3)
    head = _classifier_head(compact=True).eval()
    x, y = _images(2), _images(2, seed=5)
    f, c = torch.randn(2, 4, 40, 40), torch.randn(2, 5, 10, 10)
    kept = 2 * (len(DETAIL_SIGMAS) + 2) + 1
    with torch.no_grad():
        d = head.descriptor(y, x, f, c)
    assert d.shape == (2, kept + 3) and head.gate[0].in_features == kept + 3
    assert torch.equal(d[:, :kept], plain.descriptor(y, x, f, c)[:, -kept:])
    with pytest.raises(ValueError, match="input terms"):
        head.assemble(plain.descriptor(y, x, f, c), None)


def test_input_terms_ids_name_what_the_terms_are():
    head = _classifier_head()
    assert FilterBankHead(4, 5, 2, 3).input_terms_id() == ""
    assert InputStatisticsFilterBankHead(4, 5, 2, 3).input_terms_id() == "input_statistics"
    first = head.input_terms_id()
    assert first.startswith("classifier:") and first == _classifier_head().input_terms_id()
    with torch.no_grad():
        head.classifier.head[-1].bias.add_(1.0)
    assert head.input_terms_id() != first  # other weights, other terms


def test_a_routed_gate_mixes_each_class_choice_by_the_classifier_probabilities():
    from aioir.nn.degradation_classifier import DegradationClassifier
    from aioir.nn.filter_bank import (
        RoutedClassifierFilterBankHead,
        RoutedCompactClassifierFilterBankHead,
    )

    torch.manual_seed(0)
    classifier = DegradationClassifier(["noise", "haze", "clean"], widths=(4, 6), hidden=8)
    head = RoutedClassifierFilterBankHead(4, 5, filters=2, taps=3, classifier=classifier).eval()
    single = _classifier_head()
    j = head.num_candidates
    assert (
        head.gate[-1].out_features == 3 * j
        and head.gate[0].in_features == single.gate[0].in_features
    )
    # before any fit every class's block is the single gate's start: the network output
    assert torch.equal(head.gate[-1].bias.view(3, j), single.gate[-1].bias.repeat(3, 1))
    with torch.no_grad():  # class c's gate picks candidate c, whatever the descriptor
        head.gate[-1].weight.zero_()
        head.gate[-1].bias.copy_((torch.eye(3, j) * 50.0).flatten())
    x, y = _images(2), _images(2, seed=5)
    f, c = torch.randn(2, 4, 40, 40), torch.randn(2, 5, 10, 10)
    with torch.no_grad():
        weights = head.weights(y, x, f, c)
        p = classifier(x).softmax(dim=1)
    torch.testing.assert_close(weights[:, :3], p)  # the classifier's probabilities, routed
    assert weights[:, 3:].abs().max() < 1e-6
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(2))
    logits, descriptor = torch.randn(2, 3 * j), head.descriptor(y, x, f, c)
    for h in (head, single):
        width = h.gate[-1].out_features
        torch.testing.assert_close(
            h.log_mix(logits[:, :width], descriptor), h.mix(logits[:, :width], descriptor).log()
        )
    compact = RoutedCompactClassifierFilterBankHead(4, 5, 2, 3, classifier=classifier)
    assert compact.gate[-1].out_features == 3 * j
    assert compact.gate[0].in_features == 2 * (len(DETAIL_SIGMAS) + 2) + 1 + 3


def test_gate_statistics_read_where_the_shadows_are_lifted():
    """The input statistics, then the shadow terms of three bands, top to bottom: haze that
    grows towards the top lifts the top band's shadows more than the bottom's; an even lift
    (a pale scene) lifts them alike."""
    x = _images(2, size=60)
    base = gate_statistics(x)
    assert base.shape == (2, len(GATE_STATISTICS)) == (2, len(INPUT_STATISTICS) + 6)
    assert torch.equal(base[:, : len(INPUT_STATISTICS)], input_statistics(x))
    rows = torch.linspace(1.0, 0.0, 60).view(1, 1, 60, 1)  # the airlight's share, top to bottom
    hazy = gate_statistics(x * (1 - 0.8 * rows) + 0.8 * rows * 0.9)
    pale = gate_statistics(0.6 * x + 0.4 * 0.9)
    top, bottom = len(INPUT_STATISTICS) + 1, len(INPUT_STATISTICS) + 5  # power 32, bands 1 and 3

    def lifted(t: torch.Tensor, column: int) -> torch.Tensor:  # shadows less black than x's
        return base[:, column] - t[:, column]

    assert (lifted(hazy, top) > lifted(hazy, bottom) + 0.2).all()
    assert (lifted(pale, top) - lifted(pale, bottom)).abs().max() < 0.1


def test_a_gate_reading_statistics_reads_them_before_the_classifier_verdict():
    """:class:`StatisticsRoutedClassifierFilterBankHead`: the routed head's descriptor with
    :func:`gate_statistics` before the classifier's terms, which still route it; its input
    terms are named as such."""
    from aioir.nn.degradation_classifier import DegradationClassifier
    from aioir.nn.filter_bank import (
        RoutedClassifierFilterBankHead,
        StatisticsRoutedClassifierFilterBankHead,
    )

    torch.manual_seed(0)
    classifier = DegradationClassifier(["noise", "haze", "clean"], widths=(4, 6), hidden=8)
    routed = RoutedClassifierFilterBankHead(4, 5, 2, 3, classifier=classifier).eval()
    head = StatisticsRoutedClassifierFilterBankHead(4, 5, 2, 3, classifier=classifier).eval()
    x, y = _images(2), _images(2, seed=5)
    f, c = torch.randn(2, 4, 40, 40), torch.randn(2, 5, 10, 10)
    s = len(GATE_STATISTICS)
    with torch.no_grad():
        plain, d = routed.descriptor(y, x, f, c), head.descriptor(y, x, f, c)
    assert head.input_terms_size == s + 3 and d.shape == (2, plain.shape[1] + s)
    assert head.gate[0].in_features == routed.gate[0].in_features + s
    assert torch.equal(d[:, : -(s + 3)], plain[:, :-3]) and torch.equal(d[:, -3:], plain[:, -3:])
    torch.testing.assert_close(d[:, -(s + 3) : -3], gate_statistics(x))
    torch.testing.assert_close(head.log_routes(d), routed.log_routes(plain))
    assert head.input_terms_id() == "gate_statistics+" + routed.input_terms_id()
    with torch.no_grad():
        assert head(y, x, f, c).shape == x.shape
