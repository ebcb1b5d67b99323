"""Corrections of real stacks, checked on simulated stacks whose artifacts are known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from microscope_phantom import ETA_EPOXY, ETA_GOLD, phantom
from skimage.measure import perimeter

from fibsynth.errors import FibsynthError
from fibsynth.microscope import (
    CorrectConfig,
    Curtaining,
    Detector,
    Drift,
    MicroscopeModel,
    Shading,
    align,
    apply,
    correct,
    correct_drift,
    correct_shading,
    denoise,
    destripe,
    destripe_phase_slice,
    destripe_slice,
    register_slices,
    runs_along_y,
)
from fibsynth.microscope.inverse import _DB4, _dwt2, _haar2, _idwt2, _ihaar2

THR = 0.5 * (ETA_EPOXY + ETA_GOLD)


def edge_displacement(img: np.ndarray, ref: np.ndarray, thr: float = THR) -> float:
    """Mean displacement (px) of the iso-contour at ``thr``: pixels that changed phase per unit of boundary length."""
    a, b = img > thr, ref > thr
    length = sum(perimeter(b[k]) for k in range(b.shape[0]))
    return float((a ^ b).sum() / length)


def test_wavelet_transforms_are_orthonormal_and_invertible():
    h = _DB4
    assert h.sum() == pytest.approx(np.sqrt(2)) and (h ** 2).sum() == pytest.approx(1.0)
    assert all(abs(np.dot(h[: -2 * k], h[2 * k:])) < 1e-9 for k in (1, 2, 3))  # orthogonal to its even shifts
    g = np.array([(-1) ** k * h[7 - k] for k in range(8)])
    assert all(abs(np.dot(g, np.arange(8.0) ** p)) < 1e-8 for p in range(4))  # four vanishing moments
    a = np.random.default_rng(0).random((32, 48))
    for parts, inv in ((_haar2(a), _ihaar2), (_dwt2(a, h), lambda *p: _idwt2(*p, h))):
        assert np.allclose(inv(*parts), a)
        assert sum((p ** 2).sum() for p in parts) == pytest.approx((a ** 2).sum())


def _drifting(eta, seed):
    m = MicroscopeModel(detector=Detector(electrons_per_pixel=300, read_noise=0.005),
                        drift=Drift(xy_step_px=1.5, blur_px=0.5), curtaining=Curtaining(amplitude=0.02),
                        shading=Shading(depth=0.3, tilt=0.1), seed=seed)
    r = apply(eta, m)
    return r.image, np.array(r.record["realised"]["shifts_px"])


def test_alignment_recovers_known_shifts_within_half_a_pixel():
    # a structure that does not change along z: every change between slices is the drift (plus noise, curtains)
    _, eta = phantom((8, 96, 96), 11)
    img, true = _drifting(np.repeat(eta[:1], 8, 0), 12)
    est = register_slices(img)
    err = np.abs(est + (true - true[0]))  # registration moves each slice back by its drift
    assert np.abs(true).max() > 2.0  # the drift is several pixels by the end
    assert err.max() < 0.5, err
    aligned, shifts = align(img)
    assert np.allclose(shifts, est)
    assert np.abs(np.diff(aligned, axis=0)).mean() < 0.7 * np.abs(np.diff(img, axis=0)).mean()


def test_alignment_of_a_3d_structure_step_by_step():
    # a 3D structure changes from slice to slice: each slice-to-slice step is still found within half a pixel
    _, eta = phantom((8, 96, 96), 13)
    img, true = _drifting(eta, 14)
    steps = np.diff(register_slices(img), axis=0)
    assert np.abs(steps + np.diff(true, axis=0)).max() < 0.5


def _noisy_static_stack(seed, nz=16, n=64, electrons=10.0, jump=None):
    """A structure that does not change along z, drifted and imaged at a low dose: every error of the registration
    is its own (noise), none is apparent motion. ``jump``: a stage jump (dy, dx) px from the middle slice on."""
    _, eta = phantom((nz, n, n), seed)
    m = MicroscopeModel(detector=Detector(electrons_per_pixel=electrons, read_noise=0.005),
                        drift=Drift(xy_step_px=1.5, blur_px=0.5), seed=seed + 10)
    r = apply(np.repeat(eta[:1], nz, 0), m)
    img, true = r.image, np.array(r.record["realised"]["shifts_px"])
    if jump is not None:
        img = img.copy()
        for k in range(nz // 2, nz):
            img[k] = ndimage.shift(img[k], jump, order=3, mode="nearest")
        true = true.copy()
        true[nz // 2:] += jump
    return img, true - true[0]


def test_registration_against_several_neighbours_averages_the_noise():
    # 10 electrons per pixel: the chain sums 15 noisy steps; the robust least squares over pairs (k, k-1..k-3)
    # and the median-template registration both see each slice more than once (measured: seed 1, chain 0.95 px,
    # neighbours 0.23, template 0.62)
    img, true = _noisy_static_stack(1)
    err = {m: np.abs(register_slices(img, method=m) + true).mean() for m in ("chain", "neighbours", "template")}
    assert err["neighbours"] < 0.5 * err["chain"] and err["neighbours"] < 0.35, err
    assert err["template"] < err["chain"], err
    assert np.array_equal(register_slices(img, method="chain"), register_slices(img))
    assert np.array_equal(register_slices(img, method="neighbours", neighbours=1), register_slices(img))
    aligned, shifts = align(img, method="neighbours")
    assert np.array_equal(shifts, register_slices(img, method="neighbours")) and shifts[0].tolist() == [0, 0]


def test_every_registration_method_keeps_a_stage_jump():
    # a 7-px stage jump between slices 7 and 8 (on top of the random-walk drift) is real motion: every pair across
    # it sees it, so the robust fit must not treat it as an outlier, and the template must not smooth it away
    img, true = _noisy_static_stack(3, electrons=300.0, jump=(5.0, -5.0))
    for m in ("chain", "neighbours", "template"):
        est = register_slices(img, method=m)
        assert np.abs(est + true).max() < 0.5, (m, np.abs(est + true).max())
        assert np.hypot(*(est[8] - est[7])) > 6.0, m


def test_registration_method_options_are_checked():
    img = np.random.default_rng(0).random((3, 16, 16))
    for kw, param in (({"method": "pairs"}, "method"), ({"method": "neighbours", "neighbours": 0}, "neighbours"),
                      ({"method": "template", "template_half_width": 0}, "template_half_width")):
        with pytest.raises(FibsynthError) as e:
            register_slices(img, **kw)
        assert e.value.param == param
    with pytest.raises(Exception):
        CorrectConfig(align=True, align_method="pairs")
    y, rec = correct(_noisy_static_stack(1, nz=6)[0], CorrectConfig(align=True, align_method="neighbours"))
    assert rec["config"]["align_method"] == "neighbours" and len(rec["shifts_px"]) == 6


def test_destriping_removes_stripes_and_keeps_edges():
    lab, eta = phantom((8, 96, 96), 13)
    m = MicroscopeModel(curtaining=Curtaining(amplitude=0.06, width_px=3.0), seed=14)
    r = apply(eta, m)
    stripes = np.repeat(r.stripes[:, None, :], eta.shape[1], 1)
    assert np.allclose(r.image, np.clip(eta + stripes, 0, None), atol=1e-6)  # yields are not negative
    # the filter is linear: what is left of the stripes is the filter applied to the stripes alone
    left = destripe(stripes)
    removed = 1 - (left ** 2).mean() / (stripes ** 2).mean()
    assert removed >= 0.8, removed
    before = edge_displacement(r.image, eta)
    after = edge_displacement(destripe(r.image), eta)
    assert after < 0.5 and after < before, (before, after)
    # the filter keeps the mean (up to the asymmetry of the db4 wavelet on the mirrored image), and leaves alone
    # whatever varies along y only (no vertical detail)
    clean = destripe(eta)
    assert clean.mean() == pytest.approx(eta.mean(), abs=0.01 * (ETA_GOLD - ETA_EPOXY))
    rows = np.repeat(np.sin(np.arange(96) / 5.0)[None, :, None], 96, 2)
    assert np.allclose(destripe(rows), rows, atol=1e-9)


def test_destripe_slice_pads_odd_sizes_and_checks_arguments():
    rng = np.random.default_rng(1)
    img = rng.random((37, 51)) + np.sin(np.arange(51))[None, :]
    out = destripe_slice(img, levels=3)
    assert out.shape == img.shape
    assert (out.mean(0) - out.mean()).std() < 0.3 * (img.mean(0) - img.mean()).std()
    haar = destripe_slice(img, levels=3, wavelet="haar")
    assert (haar.mean(0) - haar.mean()).std() < 0.3 * (img.mean(0) - img.mean()).std()
    for kw, p in ((dict(levels=0), "levels"), (dict(sigma=0), "sigma"), (dict(wavelet="db42"), "wavelet")):
        with pytest.raises(FibsynthError) as e:
            destripe_slice(img, **kw)
        assert e.value.param == p


def test_shading_and_drift_corrections():
    _, eta = phantom((6, 96, 96), 15)
    m = MicroscopeModel(shading=Shading(depth=0.4, tilt=0.3), seed=1)
    shaded = apply(eta, m).image
    flat, bg, info = correct_shading(shaded)
    assert bg.min() < 0.8 and info["depth"] == pytest.approx(0.4, rel=0.2)
    rows = lambda v: v.mean((0, 2))  # noqa: E731
    # the bottom/top ratio of the row means goes from 0.6 back to that of the unshaded stack
    ratio = lambda v: rows(v)[-16:].mean() / rows(v)[:16].mean()  # noqa: E731
    assert abs(ratio(flat) - ratio(eta)) < 0.25 * abs(ratio(shaded) - ratio(eta))
    g = np.array([1.0, 1.2, 0.8, 1.1, 0.9, 1.0])[:, None, None]
    o = np.array([0.0, 0.05, -0.03, 0.02, 0.0, 0.01])[:, None, None]
    fixed, rec = correct_drift(eta * g + o)
    means, stds = fixed.mean((1, 2)), fixed.std((1, 2))
    assert np.ptp(means) < 0.02 * np.ptp((eta * g + o).mean((1, 2))) + 0.01 * eta.std()
    assert np.ptp(stds) / stds.mean() < 0.05 and len(rec["gain"]) == 6


@pytest.mark.parametrize("method", ["gaussian", "median", "bilateral", "nl_means"])
def test_denoising_brings_a_noisy_stack_closer_to_the_truth(method):
    _, eta = phantom((2, 64, 64), 16)
    noisy = apply(eta, MicroscopeModel(detector=Detector(electrons_per_pixel=100), seed=2)).image
    out = denoise(noisy, method, 1.0)
    assert np.sqrt(((out - eta) ** 2).mean()) < 0.8 * np.sqrt(((noisy - eta) ** 2).mean())


def test_correct_applies_what_is_asked_and_records_it():
    _, eta = phantom((4, 64, 64), 17)
    r = apply(eta, MicroscopeModel(drift=Drift(xy_step_px=1.0), curtaining=Curtaining(amplitude=0.03), seed=3))
    out, rec = correct(r.image, CorrectConfig(align=True, destripe=True, denoise="gaussian"))
    assert rec["applied"] == ["align", "destripe", "denoise:gaussian"] and len(rec["shifts_px"]) == 4
    assert out.shape == eta.shape
    same, rec0 = correct(r.image)
    assert rec0["applied"] == [] and np.array_equal(same, r.image.astype(np.float64))
    with pytest.raises(FibsynthError) as e:
        denoise(eta, "wiener")
    assert e.value.param == "method"


def test_default_destriping_keeps_a_layer_that_crosses_the_face():
    # a gold layer 32 px wide running down the whole face (its interface along y) in a network: any destriper
    # takes it for a stripe; the default detects it and uses fewer levels (7 levels moved it by ~10 px)
    lab, _ = phantom((6, 128, 128), 51)
    lab[:, :, 48:80] = 1
    eta = ETA_EPOXY + (ETA_GOLD - ETA_EPOXY) * ndimage.gaussian_filter(lab.astype(float), (0, 0.6, 0.6))
    r = apply(eta, MicroscopeModel(curtaining=Curtaining(amplitude=0.03, width_px=3.0), seed=5))
    assert runs_along_y(r.image) and not runs_along_y(phantom((6, 128, 128), 51)[1])
    after = edge_displacement(destripe(r.image), eta)
    assert after < 0.5, after
    assert edge_displacement(destripe(r.image, levels=7), eta) > 2 * after  # what the old default did
    s = np.repeat(r.stripes[:, None, :], 128, 1)
    assert 1 - (destripe(s, levels=5) ** 2).mean() / (s ** 2).mean() >= 0.8  # 3-px curtains still removed


def test_phase_destriping_removes_broad_curtains_and_keeps_a_layer():
    # strong broad curtains (rms 0.08, 6 px) on a network with a gold layer running down the face, shot noise,
    # shadow and tilt: the default (auto -> phase method on a layered stack) removes most of the stripe power
    # where the 5-level wavelet filter (the previous layered default) could not, and keeps the layer's edges
    lab, _ = phantom((4, 128, 128), 61)
    lab[:, :, 40:72] = 1
    eta = ETA_EPOXY + (ETA_GOLD - ETA_EPOXY) * ndimage.gaussian_filter(lab.astype(float), (0, 0.6, 0.6))
    r = apply(eta, MicroscopeModel(detector=Detector(electrons_per_pixel=300),
                                   curtaining=Curtaining(amplitude=0.08, width_px=6.0), seed=7))
    out = destripe(r.image)
    estimate = (r.image - out).mean(1)  # the phase method subtracts one column profile per slice
    removed = 1 - ((r.stripes - estimate) ** 2).mean() / (r.stripes ** 2).mean()
    s = np.repeat(r.stripes[:, None, :], 128, 1)
    wavelet5 = 1 - (destripe(s, levels=5) ** 2).mean() / (s ** 2).mean()
    assert removed >= 0.8 and removed > wavelet5 + 0.1, (removed, wavelet5)
    assert edge_displacement(out, eta) < 0.5 * edge_displacement(r.image, eta)
    layer = lambda v: (v[:, :, 30:82] > THR).mean(1)  # noqa: E731  (the layer's columns, rows averaged)
    assert np.abs(layer(out) - layer(eta)).mean() < 0.02
    # with shading (shadow and tilt are modelled per phase, not taken for stripes) it still removes most of it
    shaded = apply(eta, MicroscopeModel(detector=Detector(electrons_per_pixel=300), shading=Shading(depth=0.3, tilt=0.1),
                                        curtaining=Curtaining(amplitude=0.08, width_px=6.0), seed=7))
    prof = np.array([destripe_phase_slice(k)[1] for k in shaded.image])
    assert 1 - ((shaded.stripes - prof) ** 2).mean() / (shaded.stripes ** 2).mean() >= 0.75
    # a stack without curtains is left nearly alone; arguments are checked
    clean = destripe(eta, method="phase")
    assert np.abs(clean - eta).max() < 0.01
    with pytest.raises(FibsynthError) as e:
        destripe(eta, method="fft")
    assert e.value.param == "method"
    with pytest.raises(FibsynthError) as e:
        destripe_phase_slice(eta[0], iters=0)
    assert e.value.param == "iters"


def test_detrended_registration_has_no_linear_trend():
    _, eta = phantom((8, 96, 96), 52)
    img, _ = _drifting(eta, 53)
    raw, flat = register_slices(img), register_slices(img, detrend=True)
    t = np.arange(8.0)
    assert np.allclose(t @ flat, 0, atol=1e-9) and np.allclose(flat[0], 0)
    assert np.allclose(raw - flat, np.outer(t, (t @ raw) / (t @ t)))


def test_upsampled_dft_is_the_dft_on_a_fine_grid_and_pcc_refines_with_it():
    # Guizar-Sicairos et al. (2008): the matrix-multiply DFT equals the direct sum on the fine grid around the peak
    from scipy.fft import fftfreq, fftn

    from fibsynth.microscope.inverse import _pcc, upsampled_dft

    rng = np.random.default_rng(3)
    spec = rng.standard_normal((12, 10)) + 1j * rng.standard_normal((12, 10))
    up, size, offsets = 4.0, 6, np.array([2.6, -1.4])
    got = upsampled_dft(spec, size, up, offsets)
    fy, fx = fftfreq(12, up), fftfreq(10, up)
    i, j = np.arange(size) - offsets[0], np.arange(size) - offsets[1]
    ky, kx = np.exp(-2j * np.pi * np.outer(i, fy)), np.exp(-2j * np.pi * np.outer(j, fx))
    direct = np.einsum("kl,ik,jl->ij", spec, ky, kx)
    assert got.shape == (size, size) and np.allclose(got, direct, rtol=0, atol=1e-9)
    # the refined shift with a search window wider than the image is scikit-image's public
    # phase_cross_correlation's (unnormalised), on a shifted, noisy texture
    ref = ndimage.gaussian_filter(rng.standard_normal((48, 48)), 2.0)
    moving = ndimage.shift(ref, (1.37, -2.62), order=3, mode="grid-wrap") + 0.01 * rng.standard_normal((48, 48))
    wide = _pcc(ref, moving, 20, search_px=100)
    assert np.abs(wide - _pcc(ref, moving, 20)).max() < 1e-6
    assert np.abs(wide - (-1.37, 2.62)).max() < 0.1


# the former destripe_slice (before micro15): whole-array filters, the mirrored image built by concatenation, every
# level's scratch held to the end; the reference the blocked, released version must equal bit for bit

def _ref_destripe_slice(img, levels, sigma=1.0, wavelet="db4"):
    from fibsynth.microscope.inverse import WAVELETS, _qmf

    def analysis(a, h, axis):
        g, o = _qmf(h), -(len(h) // 2)
        sl = [slice(None)] * 2
        sl[axis] = slice(0, None, 2)
        return (ndimage.correlate1d(a, h, axis=axis, mode="wrap", origin=o)[tuple(sl)],
                ndimage.correlate1d(a, g, axis=axis, mode="wrap", origin=o)[tuple(sl)])

    def synthesis(lo, hi, h, axis):
        g, o = _qmf(h), -(len(h) // 2)
        shape = list(lo.shape)
        shape[axis] *= 2
        ulo, uhi = np.zeros(shape), np.zeros(shape)
        sl = [slice(None)] * 2
        sl[axis] = slice(0, None, 2)
        ulo[tuple(sl)], uhi[tuple(sl)] = lo, hi
        return (ndimage.convolve1d(ulo, h, axis=axis, mode="wrap", origin=o)
                + ndimage.convolve1d(uhi, g, axis=axis, mode="wrap", origin=o))

    a, h = np.asarray(img, np.float64), WAVELETS[wavelet]
    ny, nx = a.shape
    m = 2 ** levels
    work = np.concatenate([a, a[::-1]], 0)
    work = np.concatenate([work, work[:, ::-1]], 1)
    ca = np.pad(work, ((0, (-work.shape[0]) % m), (0, (-work.shape[1]) % m)), mode="wrap")
    details = []
    for _ in range(levels):
        lo_y, hi_y = analysis(ca, h, 0)
        (ca, cv), (ch, cd) = analysis(lo_y, h, 1), analysis(hi_y, h, 1)
        k = np.fft.fftfreq(cv.shape[0]) * cv.shape[0]
        cv = np.fft.ifft(np.fft.fft(cv, axis=0) * (1.0 - np.exp(-(k ** 2) / (2.0 * sigma ** 2)))[:, None], axis=0).real
        details.append((ch, cv, cd))
    for ch, cv, cd in reversed(details):
        ca = synthesis(synthesis(ca, cv, h, 1), synthesis(ch, cd, h, 1), h, 0)
    return ca[:ny, :nx]


def test_destripe_slice_same_values_with_less_scratch(monkeypatch):
    from test_lazy_slices import _traced_peak

    import fibsynth.microscope.inverse as inv

    rng = np.random.default_rng(4)
    for shape, levels, wavelet, sigma in (((96, 96), 6, "db4", 1.0), ((37, 51), 3, "haar", 2.0),
                                          ((5, 70), 8, "db4", 1.0), ((130, 64), 4, "db4", 0.7)):
        img = rng.standard_normal(shape) * 30 + np.sin(np.arange(shape[1]) / 3.0)[None, :]
        ref = _ref_destripe_slice(img, levels, sigma, wavelet)
        assert np.array_equal(destripe_slice(img, levels=levels, sigma=sigma, wavelet=wavelet), ref)  # bit for bit
        monkeypatch.setattr(inv, "_BLOCK_VALUES", 97)  # blocks of one or a few lines: the same values
        assert np.array_equal(destripe_slice(img, levels=levels, sigma=sigma, wavelet=wavelet), ref)
        monkeypatch.undo()
    img = rng.standard_normal((256, 256))
    work = 4 * img.nbytes  # the mirrored image
    # the former code peaked at 8.25 work images at every size (264 MB at 1024^2); now ~2 (the first level's input
    # and its two halves, or the last synthesis' output and its two inputs) and the blocks' ~3 MB of scratch:
    # 3.26 here, 2.08 at 1024^2 (66.5 MB)
    assert _traced_peak(destripe_slice, img) < 4.0 * work
