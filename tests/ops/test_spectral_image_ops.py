"""Fourier transforms against DFT sums written here, and image ops against references built
from their definitions (sampling, kernels, colour formulas); gradients checked."""
import cmath
import itertools
import math

import numpy as np
import pytest

from engine import ops
from engine.ops import image
from engine.testing import check_gradients

rng = np.random.default_rng(0)


def dft(z, inverse=False):
    n = len(z)
    sign = 1 if inverse else -1
    out = [sum(z[t] * cmath.exp(sign * 2j * math.pi * k * t / n) for t in range(n)) for k in range(n)]
    return np.array(out) / (n if inverse else 1)


def test_fft_family():
    re, im = rng.standard_normal((3, 8)), rng.standard_normal((3, 8))
    out = ops.fft((re, im))
    ref = np.array([dft(r + 1j * i) for r, i in zip(re, im)])
    np.testing.assert_allclose(np.asarray(out[0]), ref.real, atol=1e-12)
    np.testing.assert_allclose(np.asarray(out[1]), ref.imag, atol=1e-12)
    out2 = ops.fft2((re, im))
    ref2 = np.array([dft(col) for col in np.array([dft(r + 1j * i) for r, i in zip(re, im)]).T]).T
    np.testing.assert_allclose(np.asarray(out2[0]) + 1j * np.asarray(out2[1]), ref2, atol=1e-12)
    back = ops.ifft2(out2)
    np.testing.assert_allclose(np.asarray(back[0]), re, atol=1e-12)
    np.testing.assert_allclose(np.asarray(back[1]), im, atol=1e-12)
    for part in (0, 1):
        check_gradients(lambda a, b: ops.fft((a, b))[part], [re, im])
        check_gradients(lambda a, b: ops.fft2((a, b))[part], [re, im])
        check_gradients(lambda a, b: ops.ifft2((a, b))[part], [re, im])
    x = rng.standard_normal((2, 7))
    r, i = ops.rfft(x)
    ref = np.array([dft(row)[:4] for row in x])
    np.testing.assert_allclose(np.asarray(r) + 1j * np.asarray(i), ref, atol=1e-12)
    r, i = ops.rfft(x, fft_length=10)
    np.testing.assert_allclose(np.asarray(r) + 1j * np.asarray(i), [dft(np.r_[row, np.zeros(3)])[:6] for row in x], atol=1e-12)
    for n in (None, 5, 10):
        check_gradients(lambda a: ops.rfft(a, fft_length=n)[0], [x])
        check_gradients(lambda a: ops.rfft(a, fft_length=n)[1], [x])
    spec_re, spec_im = rng.standard_normal((2, 5)), rng.standard_normal((2, 5))
    for n in (None, 7, 9, 4):
        n_eff = 8 if n is None else n
        out = np.asarray(ops.irfft((spec_re, spec_im), fft_length=n))
        # The Hermitian spectrum irfft inverts: bins 0..n//2 from the input (imaginary parts of
        # the zero and Nyquist bins dropped), the rest their conjugates.
        full = np.zeros(n_eff, complex)
        for k in range(n_eff // 2 + 1):
            val = spec_re[0, k] + 1j * spec_im[0, k] if k < 5 else 0
            if k == 0 or (n_eff % 2 == 0 and k == n_eff // 2):
                val = val.real
            full[k] = val
            if k:
                full[n_eff - k] = np.conj(val)
        np.testing.assert_allclose(out[0], dft(full, inverse=True).real, atol=1e-12)
        check_gradients(lambda a, b: ops.irfft((a, b), fft_length=n), [spec_re, spec_im])
    with pytest.raises(ValueError, match="pair"):
        ops.fft(re)


def hann(n):
    return [0.5 - 0.5 * math.cos(2 * math.pi * k / n) for k in range(n)]


def test_stft_and_istft():
    x = rng.standard_normal(30)
    re, im = ops.stft(x, 6, 3, 8, window="hann", center=False)
    win = [0.0] + hann(6) + [0.0]
    frames = (30 - 8) // 3 + 1
    ref = np.array([[sum(x[f * 3 + t] * win[t] * cmath.exp(-2j * math.pi * k * t / 8) for t in range(8))
                     for k in range(5)] for f in range(frames)])
    np.testing.assert_allclose(np.asarray(re) + 1j * np.asarray(im), ref, atol=1e-12)
    re, im = ops.stft(x, 8, 2, 8, window="hamming")
    padded = np.pad(x, 4, mode="reflect")
    ham = [0.54 - 0.46 * math.cos(2 * math.pi * k / 8) for k in range(8)]
    f0 = [sum(padded[t] * ham[t] * cmath.exp(-2j * math.pi * k * t / 8) for t in range(8)) for k in range(5)]
    np.testing.assert_allclose(np.asarray(re)[0] + 1j * np.asarray(im)[0], f0, atol=1e-12)
    y = np.asarray(ops.istft((re, im), 8, 2, 8, window="hamming"))
    np.testing.assert_allclose(y, x, atol=1e-10)                   # perfect reconstruction
    y = np.asarray(ops.istft(ops.stft(x, 8, 4, 8), 8, 4, 8, length=20))
    np.testing.assert_allclose(y, x[:20], atol=1e-10)
    check_gradients(lambda a: ops.stft(a, 6, 3, 8)[0], [x])
    check_gradients(lambda a, b: ops.istft((a, b), 6, 3, 8), [rng.standard_normal((9, 5)), rng.standard_normal((9, 5))])
    with pytest.raises(ValueError, match="fft_length"):
        ops.stft(x, 8, 2, 4)


def test_complex_helpers():
    z = np.asarray(ops.polar(np.array([2.0]), np.array([math.pi / 2])))
    np.testing.assert_allclose(z, [2j], atol=1e-12)
    c = ops.view_as_complex(np.array([[1.0, 2.0], [3.0, -1.0]]))
    np.testing.assert_array_equal(np.asarray(c), [1 + 2j, 3 - 1j])
    np.testing.assert_array_equal(np.asarray(ops.view_as_real(c)), [[1.0, 2.0], [3.0, -1.0]])


IMG = rng.uniform(0, 1, (2, 5, 6, 3))


def test_colour_conversions():
    gray = np.asarray(image.rgb_to_grayscale(IMG))
    np.testing.assert_allclose(gray[..., 0], 0.2989 * IMG[..., 0] + 0.5870 * IMG[..., 1] + 0.1140 * IMG[..., 2])
    hsv = np.asarray(image.rgb_to_hsv(IMG))
    for idx in itertools.product(range(2), range(5), range(6)):
        r, g, b = IMG[idx]
        v, lo = max(r, g, b), min(r, g, b)
        s = (v - lo) / v if v else 0.0
        if v == lo:
            h = 0.0
        elif v == r:
            h = ((g - b) / (v - lo) / 6) % 1.0
        elif v == g:
            h = ((b - r) / (v - lo) + 2) / 6
        else:
            h = ((r - g) / (v - lo) + 4) / 6
        np.testing.assert_allclose(hsv[idx], [h, s, v], atol=1e-12)
    np.testing.assert_allclose(np.asarray(image.hsv_to_rgb(hsv)), IMG, atol=1e-12)
    check_gradients(image.hsv_to_rgb, [hsv])
    check_gradients(image.rgb_to_grayscale, [IMG])
    with pytest.raises(ValueError, match="float"):
        image.rgb_to_hsv((IMG * 255).astype("uint8"))


def triangle_resize_ref(x, out_h, out_w):
    """Half-pixel-centre bilinear sampling with clamped taps, written per output pixel."""
    def axis_weights(n_in, n_out):
        w = np.zeros((n_out, n_in))
        for o in range(n_out):
            src = (o + 0.5) * n_in / n_out - 0.5
            for i in range(n_in):
                w[o, i] = max(0.0, 1 - abs(src - i))
            w[o] /= w[o].sum()
        return w
    wh, ww = axis_weights(x.shape[1], out_h), axis_weights(x.shape[2], out_w)
    return np.einsum("oh,nhwc,pw->nopc", wh, x, ww)


def test_resize():
    np.testing.assert_allclose(np.asarray(image.resize(IMG, (9, 4))), triangle_resize_ref(IMG, 9, 4), atol=1e-12)
    near = np.asarray(image.resize(IMG, (3, 9), interpolation="nearest"))
    rows = [int((i + 0.5) * 5 / 3) for i in range(3)]
    cols = [int((j + 0.5) * 6 / 9) for j in range(9)]
    np.testing.assert_array_equal(near, IMG[:, rows][:, :, cols])
    for method in ("bilinear", "bicubic", "lanczos3", "nearest"):
        check_gradients(lambda a: image.resize(a, (4, 8), interpolation=method), [IMG[:1]])
    assert image.resize(IMG, (2, 3), antialias=True).shape == (2, 2, 3, 3)
    # A constant image stays constant under every interpolation, antialiased or not.
    flat = np.full((1, 6, 7, 1), 0.25)
    for method in ("bilinear", "bicubic", "lanczos3", "lanczos5"):
        for aa in (False, True):
            np.testing.assert_allclose(np.asarray(image.resize(flat, (3, 11), interpolation=method, antialias=aa)), 0.25)
    ints = image.resize((IMG * 255).astype("uint8"), (3, 3))
    assert ints.dtype == np.uint8
    assert image.resize(IMG, (4, 4), crop_to_aspect_ratio=True).shape == (2, 4, 4, 3)
    padded = np.asarray(image.resize(IMG[0], (12, 6), pad_to_aspect_ratio=True, fill_value=-1.0))
    assert padded.shape == (12, 6, 3) and (padded[0] == -1.0).all()
    with pytest.raises(ValueError, match="interpolation"):
        image.resize(IMG, (2, 2), interpolation="area")


def sample_ref(img, r, c, order, mode, cval):
    """One sample of a 2-D image at (r, c), with scipy.ndimage's boundary modes written out."""
    def fix(i, n):
        if mode == "nearest":
            return min(max(i, 0), n - 1)
        if mode == "wrap":
            return i % n
        if mode == "mirror":
            period = 2 * (n - 1)
            j = i % period
            return j if j < n else period - j
        if mode == "reflect":
            period = 2 * n
            j = i % period
            return j if j < n else period - 1 - j
        return i
    if order == 0:
        taps = [(int(math.floor(abs(r) + 0.5) * (1 if r >= 0 else -1)), int(math.floor(abs(c) + 0.5) * (1 if c >= 0 else -1)), 1.0)]
    else:
        r0, c0 = math.floor(r), math.floor(c)
        fr, fc = r - r0, c - c0
        taps = [(r0, c0, (1 - fr) * (1 - fc)), (r0 + 1, c0, fr * (1 - fc)), (r0, c0 + 1, (1 - fr) * fc),
                (r0 + 1, c0 + 1, fr * fc)]
    total = 0.0
    for i, j, w in taps:
        if mode == "constant" and not (0 <= i < img.shape[0] and 0 <= j < img.shape[1]):
            total += w * cval
        else:
            total += w * img[fix(i, img.shape[0]), fix(j, img.shape[1])]
    return total


@pytest.mark.parametrize("mode", ["constant", "nearest", "wrap", "mirror", "reflect"])
@pytest.mark.parametrize("order", [0, 1])
def test_map_coordinates(mode, order):
    img = rng.standard_normal((5, 6))
    coords = rng.uniform(-3, 8, (2, 4, 3))
    out = np.asarray(image.map_coordinates(img, coords, order, fill_mode=mode, fill_value=0.5))
    for p, q in itertools.product(range(4), range(3)):
        assert abs(out[p, q] - sample_ref(img, coords[0, p, q], coords[1, p, q], order, mode, 0.5)) < 1e-12
    check_gradients(lambda a: image.map_coordinates(a, coords, order, fill_mode=mode), [img])
    if order == 1:
        check_gradients(lambda c: image.map_coordinates(img, c, 1, fill_mode=mode), [coords + 0.013])


def test_affine_and_perspective_transforms():
    t = np.array([1.0, 0.0, 1.5, 0.0, 1.0, -0.5, 0.0, 0.0])     # read from (x + 1.5, y - 0.5)
    out = np.asarray(image.affine_transform(IMG[:1], t, fill_mode="constant", fill_value=0.0))
    for y, x, ch in itertools.product(range(5), range(6), range(3)):
        assert abs(out[0, y, x, ch] - sample_ref(IMG[0, :, :, ch], y - 0.5, x + 1.5, 1, "constant", 0.0)) < 1e-12
    rot = np.array([0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0])  # transpose of a square image
    sq = IMG[:, :5, :5]
    np.testing.assert_allclose(np.asarray(image.affine_transform(sq, rot, interpolation="nearest")),
                               np.swapaxes(sq, 1, 2))
    check_gradients(lambda a, tt: image.affine_transform(a, tt), [IMG[:1], t + np.array([0.01, 0.02, 0, 0.01, 0, 0, 0, 0])])
    corners = np.array([[0, 0], [5, 0], [5, 4], [0, 4]], float)
    same = np.asarray(image.perspective_transform(IMG, corners, corners))
    np.testing.assert_allclose(same, IMG, atol=1e-6)
    shifted = np.asarray(image.perspective_transform(IMG, corners, corners + [1.0, 0.0]))
    np.testing.assert_allclose(shifted[:, :, 1:], IMG[:, :, :-1], atol=1e-6)


def test_crop_pad_patches():
    padded = np.asarray(image.pad_images(IMG, 1, 2, target_height=8, target_width=9))
    assert padded.shape == (2, 8, 9, 3)
    np.testing.assert_array_equal(padded[:, 1:6, 2:8], IMG)
    assert padded[:, 0].sum() == 0 and padded[:, 6:].sum() == 0
    cropped = np.asarray(image.crop_images(IMG, 1, 2, target_height=3, right_cropping=1))
    np.testing.assert_array_equal(cropped, IMG[:, 1:4, 2:5])
    check_gradients(lambda a: image.crop_images(image.pad_images(a, 1, 1, 1, 1), 0, 1, 2, 0), [IMG[:1]])
    with pytest.raises(ValueError, match="exactly two"):
        image.pad_images(IMG, 1, 1, 1, 1, target_height=3)
    patches = np.asarray(image.extract_patches(IMG, (2, 3), strides=(2, 1)))
    assert patches.shape == (2, 2, 4, 2 * 3 * 3)
    for n, i, j, a, b, ch in itertools.product(range(2), range(2), range(4), range(2), range(3), range(3)):
        assert patches[n, i, j, (a * 3 + b) * 3 + ch] == IMG[n, i * 2 + a, j + b, ch]
    same = image.extract_patches(IMG, 3, strides=1, padding="same")
    assert same.shape == (2, 5, 6, 27)
    corner = np.asarray(same)[0, 0, 0]
    np.testing.assert_array_equal(corner[:9], 0.0)                                  # the padded row above
    np.testing.assert_array_equal(corner[(1 * 3 + 1) * 3:(1 * 3 + 1) * 3 + 3], IMG[0, 0, 0])   # its centre
    check_gradients(lambda a: image.extract_patches(a, 2, padding="same"), [IMG[:1]])
    vol = rng.standard_normal((1, 4, 4, 4, 2))
    p3 = np.asarray(image.extract_patches_3d(vol, 2))
    assert p3.shape == (1, 2, 2, 2, 16) and p3[0, 1, 0, 1, (1 * 4 + 0 * 2 + 1) * 2 + 1] == vol[0, 3, 0, 3, 1]


def test_filters_and_ssim():
    g = [math.exp(-0.5 * ((k - 1) / 1.0) ** 2) for k in range(3)]
    g = np.array(g) / sum(g)
    kernel = np.outer(g, g)
    blurred = np.asarray(image.gaussian_blur(IMG, (3, 3), (1.0, 1.0)))
    padded = np.pad(IMG, ((0, 0), (1, 1), (1, 1), (0, 0)))
    ref = sum(kernel[a, b] * padded[:, a:a + 5, b:b + 6] for a in range(3) for b in range(3))
    np.testing.assert_allclose(blurred, ref, atol=1e-12)
    check_gradients(lambda a: image.gaussian_blur(a), [IMG[:1]])
    edges = np.asarray(image.sobel_edges(IMG))
    assert edges.shape == (2, 5, 6, 3, 2)
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    ref_dx = sum(sobel[a, b] * padded[:, a:a + 5, b:b + 6] for a in range(3) for b in range(3))
    ref_dy = sum(sobel.T[a, b] * padded[:, a:a + 5, b:b + 6] for a in range(3) for b in range(3))
    np.testing.assert_allclose(edges[..., 1], ref_dx, atol=1e-12)
    np.testing.assert_allclose(edges[..., 0], ref_dy, atol=1e-12)
    assert abs(float(np.asarray(image.ssim(IMG[0], IMG[0], filter_size=3))) - 1.0) < 1e-12
    other = IMG * 0.7 + 0.1
    val = np.asarray(image.ssim(IMG, other, filter_size=3))
    assert val.shape == (2,) and (val < 1).all()
    check_gradients(lambda a: image.ssim(a, other[:1], filter_size=3), [IMG[:1]])


def test_elastic_transform_is_seeded_and_keeps_shape():
    a = np.asarray(image.elastic_transform(IMG, alpha=2.0, sigma=1.0, seed=3))
    b = np.asarray(image.elastic_transform(IMG, alpha=2.0, sigma=1.0, seed=3))
    np.testing.assert_array_equal(a, b)
    assert a.shape == IMG.shape and not np.allclose(a, IMG)
    np.testing.assert_allclose(np.asarray(image.elastic_transform(IMG, alpha=0.0, seed=1)), IMG, atol=1e-12)
    with pytest.raises(ValueError, match="seed"):
        image.elastic_transform(IMG, seed="x")


@pytest.mark.parametrize("call", [
    lambda a, fmt: image.resize(a, (4, 8), data_format=fmt),
    lambda a, fmt: image.affine_transform(a, np.array([1.0, 0.1, 0.5, 0.0, 1.0, -0.5, 0, 0]), data_format=fmt),
    lambda a, fmt: image.gaussian_blur(a, data_format=fmt),
    lambda a, fmt: image.extract_patches(a, 2, data_format=fmt),
    lambda a, fmt: image.pad_images(a, 1, 1, 1, 1, data_format=fmt),
    lambda a, fmt: image.rgb_to_hsv(a, data_format=fmt),
])
def test_channels_first_and_single_images(call):
    last = np.asarray(call(IMG, "channels_last"))
    first = np.asarray(call(np.transpose(IMG, (0, 3, 1, 2)), "channels_first"))
    np.testing.assert_allclose(first, np.transpose(last, (0, 3, 1, 2)), atol=1e-12)
    single = np.asarray(call(IMG[1], "channels_last"))
    np.testing.assert_allclose(single, last[1], atol=1e-12)
