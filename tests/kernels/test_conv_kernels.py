"""Convolution kernels (engine._kernels.conv) against float64 loops written here.

Covers both ways the kernels compute an ordinary convolution: im2col + GEMM (2-D windows,
dilation) and the row path of 1-D convolutions (H == 1, no dilation: GEMMs straight on the
input with overlapping rows, and the flipped-kernel correlation for the input gradient), with
few images (the threaded GEMM takes each image) and many (whole images per thread)."""
import numpy as np
import pytest

from engine._kernels import conv as K


def _out_size(size, k, stride, dilation, lo, hi):
    return (size + lo + hi - ((k - 1) * dilation + 1)) // stride + 1


def reference(x, w, strides, dilations, pads):
    """out, and the two gradients for output gradient gy as functions, in float64 loops."""
    N, H, W, C = x.shape
    kh, kw, _, F = w.shape
    (sh, sw), (dh, dw), (pt, pb, pl, pr) = strides, dilations, pads
    Ho, Wo = _out_size(H, kh, sh, dh, pt, pb), _out_size(W, kw, sw, dw, pl, pr)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)

    def taps():
        for i in range(Ho):
            for j in range(Wo):
                for a in range(kh):
                    for b in range(kw):
                        hi, wi = i * sh + a * dh - pt, j * sw + b * dw - pl
                        if 0 <= hi < H and 0 <= wi < W:
                            yield i, j, a, b, hi, wi

    out = np.zeros((N, Ho, Wo, F))
    for i, j, a, b, hi, wi in taps():
        out[:, i, j] += x64[:, hi, wi] @ w64[a, b]

    def grads(gy):
        gy = gy.astype(np.float64)
        dx, dwt = np.zeros_like(x64), np.zeros_like(w64)
        for i, j, a, b, hi, wi in taps():
            dx[:, hi, wi] += gy[:, i, j] @ w64[a, b].T
            dwt[a, b] += x64[:, hi, wi].T @ gy[:, i, j]
        return dx, dwt
    return out, grads


CASES = [
    # (N, H, W, C, kh, kw, F, strides, dilations, pads)
    (1, 1, 17, 5, 1, 3, 4, (1, 1), (1, 1), (0, 0, 0, 0)),     # 1-D valid, one image
    (9, 1, 23, 6, 1, 5, 7, (1, 1), (1, 1), (0, 0, 0, 0)),     # 1-D valid, short: all images in one product
    (5, 1, 80, 4, 1, 3, 6, (1, 1), (1, 1), (0, 0, 0, 0)),     # 1-D valid, long: forward per image, dx batched
    (3, 1, 70, 5, 1, 4, 3, (1, 1), (1, 1), (0, 0, 2, 1)),     # the same with "same" padding
    (8, 1, 20, 3, 1, 4, 5, (1, 1), (1, 1), (0, 0, 1, 2)),    # 1-D "same" (1 left, 2 right)
    (8, 1, 19, 4, 1, 3, 6, (1, 1), (1, 1), (0, 0, 2, 0)),     # 1-D causal
    (7, 1, 31, 5, 1, 5, 3, (1, 3), (1, 1), (0, 0, 0, 0)),     # 1-D strided: row path fwd/dW, im2col dx
    (6, 1, 21, 5, 1, 3, 3, (1, 2), (1, 1), (0, 0, 1, 1)),     # strided and padded
    (6, 1, 21, 4, 1, 3, 5, (1, 1), (1, 2), (0, 0, 2, 2)),     # dilated: im2col
    (3, 9, 8, 5, 3, 2, 6, (1, 1), (1, 1), (1, 1, 0, 1)),      # 2-D, rectangular kernel
    (2, 11, 10, 3, 3, 3, 4, (2, 2), (1, 1), (0, 1, 0, 1)),    # 2-D strided, TF "same" split
    (5, 10, 9, 2, 2, 3, 3, (1, 2), (2, 1), (1, 1, 1, 1)),     # 2-D dilated
    (2, 24, 24, 64, 3, 3, 8, (1, 1), (1, 1), (1, 1, 1, 1)),   # unrolled in chunks that split images
    (4, 24, 24, 64, 3, 3, 8, (1, 1), (1, 1), (1, 1, 1, 1)),   # whole images per thread, two runs each
    (6, 12, 11, 16, 3, 3, 8, (2, 1), (1, 1), (0, 1, 1, 1)),   # whole images per thread, strided
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_kernels_match_float64_loops(case, dtype, tol=None):
    N, H, W, C, kh, kw, F, strides, dilations, pads = case
    rng = np.random.default_rng(sum(case[:7]))
    x = rng.standard_normal((N, H, W, C)).astype(dtype)
    w = rng.standard_normal((kh, kw, C, F)).astype(dtype)
    out_ref, grads = reference(x, w, strides, dilations, pads)
    gy = rng.standard_normal(out_ref.shape).astype(dtype)
    dx_ref, dw_ref = grads(gy)
    if tol is None:
        tol = 2e-5 if dtype == np.float32 else 1e-12

    out = np.full(out_ref.shape, np.nan, dtype)
    K.conv2d_forward(x, w, out, strides, dilations, pads)
    np.testing.assert_allclose(out, out_ref, rtol=tol, atol=tol * 10)

    dx = np.full(x.shape, np.nan, dtype)
    K.conv2d_backward_input(gy, w, dx, strides, dilations, pads)
    np.testing.assert_allclose(dx, dx_ref, rtol=tol, atol=tol * 10)

    dw = np.full(w.shape, np.nan, dtype)
    K.conv2d_backward_weight(x, gy, dw, strides, dilations, pads)
    np.testing.assert_allclose(dw, dw_ref, rtol=tol, atol=tol * 10)

    # accumulate adds onto what is there (shared kernels sum the gradients of every call)
    dw2 = np.ones(w.shape, dtype)
    K.conv2d_backward_weight(x, gy, dw2, strides, dilations, pads, accumulate=True)
    np.testing.assert_allclose(dw2, dw_ref + 1, rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", [(16, 1, 40, 8, 1, 5, 9, (1, 1), (1, 1), (0, 0, 2, 2)),
                                  (8, 9, 10, 12, 3, 3, 7, (1, 1), (1, 1), (1, 1, 1, 1)),
                                  (2, 13, 12, 12, 3, 3, 7, (2, 2), (1, 1), (0, 1, 0, 1)),
                                  (5, 12, 12, 40, 3, 3, 64, (1, 1), (1, 1), (1, 1, 1, 1))])
def test_threads_agree(threads, case):
    """Whole images per thread (partial kernel-gradient sums) and one image or chunk at a time
    through the threaded GEMM give the reference's results."""
    from engine import config
    old = config.get_num_threads()
    config.set_num_threads(threads)
    try:
        test_conv_kernels_match_float64_loops(case, np.float64)
    finally:
        config.set_num_threads(old)


WINOGRAD_CASES = [
    # (N, H, W, C, kh, kw, F, pads): stride 1, C * F >= 2048, so a Winograd path runs
    (2, 9, 10, 32, 3, 3, 64, (1, 1, 1, 1)),     # F(2x2, 3x3), "same", odd height: half tiles at the bottom
    (3, 8, 7, 64, 3, 3, 33, (0, 0, 0, 0)),      # valid, odd width and output channels
    (1, 6, 5, 48, 3, 3, 48, (2, 0, 0, 2)),      # uneven explicit padding
    (5, 12, 12, 40, 3, 3, 64, (1, 1, 1, 1)),    # several tile blocks per thread
    (3, 1, 23, 32, 1, 5, 64, (0, 0, 0, 0)),     # F(2, 5), valid, odd output length
    (2, 1, 16, 64, 1, 5, 40, (0, 0, 2, 2)),     # "same"
    (2, 1, 9, 40, 1, 5, 64, (0, 0, 4, 0)),      # causal
    (40, 1, 14, 64, 1, 5, 48, (0, 0, 0, 0)),    # several tile blocks per thread
    (40, 1, 70, 64, 1, 5, 48, (0, 0, 0, 0)),    # several blocks of the (deeper) kernel-gradient tiles
]


@pytest.mark.parametrize("winograd", [True, False])
@pytest.mark.parametrize("case", WINOGRAD_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_winograd_path_matches_float64_loops(case, dtype, winograd):
    """3x3 and 1-D 5-wide stride-1 convolutions with enough channels take Winograd for the
    forward pass and the input gradient; im2col + GEMM (set_winograd(False)) must agree with the
    same reference."""
    N, H, W, C, kh, kw, F, pads = case
    # Winograd's transforms scale values up before the products and cancel after: in float32 its
    # errors are 2-4x im2col's (F(2, 5)'s kernel gradient on 128 -> 256 channels: 1.8e-6 of the
    # largest element, against 4.8e-7), hence a wider float32 tolerance on that path.
    tol = 1e-4 if winograd and dtype == np.float32 else None
    K.set_winograd(winograd)
    try:
        test_conv_kernels_match_float64_loops((N, H, W, C, kh, kw, F, (1, 1), (1, 1), pads), dtype, tol)
    finally:
        K.set_winograd(True)


def test_kernel_shape_errors_name_the_shapes():
    x = np.zeros((2, 1, 10, 3), np.float32)
    w = np.zeros((1, 3, 4, 5), np.float32)
    with pytest.raises(ValueError, match="input channels"):
        K.conv2d_forward(x, w, np.zeros((2, 1, 8, 5), np.float32))
    w = np.zeros((1, 3, 3, 5), np.float32)
    with pytest.raises(ValueError, match=r"output shape \(2, 1, 9, 5\)"):
        K.conv2d_forward(x, w, np.zeros((2, 1, 9, 5), np.float32))
    with pytest.raises(ValueError, match="share one dtype"):
        K.conv2d_backward_input(np.zeros((2, 1, 8, 5), np.float32), w, np.zeros((2, 1, 10, 3)))


# -- depthwise ----------------------------------------------------------------------------------
def depthwise_reference(x, w, strides, dilations, pads):
    """out (N, Ho, Wo, C*M) and the two gradients for an output gradient gy, in float64 loops."""
    N, H, W, C = x.shape
    kh, kw, _, M = w.shape
    (sh, sw), (dh, dw), (pt, pb, pl, pr) = strides, dilations, pads
    Ho, Wo = _out_size(H, kh, sh, dh, pt, pb), _out_size(W, kw, sw, dw, pl, pr)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    taps = [(i, j, a, b, i * sh + a * dh - pt, j * sw + b * dw - pl)
            for i in range(Ho) for j in range(Wo) for a in range(kh) for b in range(kw)]
    taps = [t for t in taps if 0 <= t[4] < H and 0 <= t[5] < W]
    out = np.zeros((N, Ho, Wo, C, M))
    for i, j, a, b, hi, wi in taps:
        out[:, i, j] += x64[:, hi, wi, :, None] * w64[a, b]

    def grads(gy):
        gy = gy.astype(np.float64).reshape(N, Ho, Wo, C, M)
        dx, dwt = np.zeros_like(x64), np.zeros_like(w64)
        for i, j, a, b, hi, wi in taps:
            dx[:, hi, wi] += (gy[:, i, j] * w64[a, b]).sum(axis=-1)
            dwt[a, b] += (x64[:, hi, wi, :, None] * gy[:, i, j]).sum(axis=0)
        return dx, dwt
    return out.reshape(N, Ho, Wo, C * M), grads


DEPTHWISE_CASES = [
    # (N, H, W, C, kh, kw, M, strides, dilations, pads)
    (2, 9, 10, 53, 3, 3, 1, (1, 1), (1, 1), (1, 1, 1, 1)),    # "same"; 53 channels: 3 vector blocks + tail
    (3, 8, 7, 40, 3, 3, 1, (1, 1), (1, 1), (0, 0, 0, 0)),     # valid
    (2, 11, 10, 19, 3, 3, 1, (2, 2), (1, 1), (0, 1, 0, 1)),   # strided, TF's odd pad at the end
    (2, 10, 12, 24, 3, 2, 1, (1, 2), (2, 1), (2, 2, 1, 1)),   # dilated, rectangular, mixed strides
    (2, 10, 13, 20, 3, 3, 1, (1, 1), (2, 1), (2, 2, 1, 1)),   # 3 wide, rows dilated: four-pixel blocks
    (1, 6, 7, 5, 5, 5, 1, (3, 2), (1, 1), (2, 2, 2, 2)),      # stride 3: input rows no tap covers
    (2, 4, 4, 70, 1, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0)),     # 1x1
    (2, 1, 40, 3, 1, 35, 1, (1, 1), (1, 1), (0, 0, 17, 17)),  # 35 taps: the plain loops
    (2, 7, 6, 5, 3, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1)),      # depth multiplier 3: the plain loops
]


@pytest.mark.parametrize("case", DEPTHWISE_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_kernels_match_float64_loops(case, dtype, isa_level):
    N, H, W, C, kh, kw, M, strides, dilations, pads = case
    rng = np.random.default_rng(sum(case[:7]))
    x = rng.standard_normal((N, H, W, C)).astype(dtype)
    w = rng.standard_normal((kh, kw, C, M)).astype(dtype)
    out_ref, grads = depthwise_reference(x, w, strides, dilations, pads)
    gy = rng.standard_normal(out_ref.shape).astype(dtype)
    dx_ref, dw_ref = grads(gy)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    out = np.full(out_ref.shape, np.nan, dtype)
    K.depthwise_conv2d_forward(x, w, out, strides, dilations, pads)
    dx = np.full(x.shape, np.nan, dtype)
    K.depthwise_conv2d_backward_input(gy, w, dx, strides, dilations, pads)
    dw = np.full(w.shape, np.nan, dtype)
    K.depthwise_conv2d_backward_weight(x, gy, dw, strides, dilations, pads)
    dw2 = np.ones(w.shape, dtype)
    K.depthwise_conv2d_backward_weight(x, gy, dw2, strides, dilations, pads, accumulate=True)
    np.testing.assert_allclose(out, out_ref, rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(dx, dx_ref, rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(dw, dw_ref, rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(dw2, dw_ref + 1, rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("threads", [1, 2])
def test_depthwise_threads_agree(threads):
    from engine import config
    old = config.get_num_threads()
    config.set_num_threads(threads)
    try:
        test_depthwise_kernels_match_float64_loops((3, 12, 11, 33, 3, 3, 1, (1, 1), (1, 1), (1, 1, 1, 1)),
                                                   np.float64, None)
    finally:
        config.set_num_threads(old)
