"""engine.ops against keras.ops itself: every name's signature, and the values and dtypes of a
wide table of calls (run when Keras is importable; CI runs it in its Keras job)."""
import inspect
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")

import engine.ops as eops  # noqa: E402

NAMESPACES = ["ops", "ops.nn", "ops.numpy", "ops.linalg", "ops.image"]


def _namespace(root, parts):
    mod = root
    for part in parts:
        mod = getattr(mod, part)
    return mod


def _functions(mod):
    for name in sorted(dir(mod)):
        obj = getattr(mod, name)
        if not name.startswith("_") and inspect.isfunction(obj):
            yield name, obj


@pytest.mark.parametrize("path", NAMESPACES)
def test_every_keras_name_exists_with_keras_signature(path):
    kmod = _namespace(keras, path.split("."))
    emod = _namespace(eops, path.split(".")[1:])
    missing, differing = [], []
    for name, kfn in _functions(kmod):
        efn = getattr(emod, name, None)
        if efn is None:
            missing.append(name)
            continue
        kparams = [(p.name, p.kind, p.default) for p in inspect.signature(kfn).parameters.values()]
        eparams = [(p.name, p.kind, p.default) for p in inspect.signature(efn).parameters.values()]
        if kparams != eparams:
            differing.append(f"{name}: keras {inspect.signature(kfn)} engine {inspect.signature(efn)}")
    assert not missing, f"keras.{path} names missing in engine: {missing}"
    assert not differing, "signatures differ:\n" + "\n".join(differing)


rng = np.random.default_rng(0)
XF = rng.standard_normal((3, 4)).astype("float32")
XP = rng.uniform(0.5, 2.0, (3, 4)).astype("float32")
XU = rng.uniform(-0.9, 0.9, (3, 4)).astype("float32")
XI = rng.integers(-3, 4, (3, 4)).astype("int32")
XB = XI > 0
SQ = (rng.standard_normal((3, 3)) + 3 * np.eye(3)).astype("float32")
SPD = (SQ @ SQ.T).astype("float32")
V4 = rng.standard_normal((2, 5, 3)).astype("float32")

IMG = rng.uniform(0, 1, (2, 7, 9, 3)).astype("float32")
AFFINE = np.array([[1.1, 0.2, -1.0, 0.1, 0.9, 0.5, 0, 0], [0.8, -0.1, 0.5, 0.2, 1.2, -0.7, 0, 0]], "float32")
COORDS = rng.uniform(-2, 6, (2, 4, 5)).astype("float32")
CORNERS = np.array([[0, 0], [8, 0], [8, 6], [0, 6]], "float32")
MOVED = np.array([[1, 0], [7, 1], [8, 6], [0, 5]], "float32")

# (label, name path, args, kwargs)
CASES = [
    ("tan", "tan", (XU,), {}), ("arcsinh", "arcsinh", (XF,), {}), ("arctanh", "arctanh", (XU,), {}),
    ("expm1", "expm1", (XF,), {}), ("exp2", "exp2", (XI,), {}), ("log2", "log2", (XP,), {}),
    ("log10", "log10", (XP,), {}), ("cbrt", "cbrt", (XF,), {}), ("rsqrt", "rsqrt", (XP,), {}),
    ("sinc", "sinc", (XF,), {}), ("erf", "erf", (XF,), {}), ("erfinv", "erfinv", (XU,), {}),
    ("i0", "i0", (XF,), {}), ("floor_int", "floor", (XI,), {}), ("ceil", "ceil", (XF,), {}),
    ("trunc_int", "trunc", (XI,), {}), ("round", "round", (XF * 10,), {"decimals": 1}),
    ("fabs_int", "fabs", (XI,), {}), ("isnan", "isnan", (XF,), {}), ("signbit", "signbit", (XF,), {}),
    ("nan_to_num", "nan_to_num", (np.array([np.nan, np.inf, -np.inf, 1.0], "float32"),), {}),
    ("arctan2", "arctan2", (XF, XP), {}), ("hypot", "hypot", (XF, XI), {}), ("logaddexp", "logaddexp", (XF, XP), {}),
    ("fmod", "fmod", (XI, np.int32(3)), {}), ("fmax", "fmax", (XF, 0.0), {}), ("heaviside", "heaviside", (XF, 0.5), {}),
    ("gcd", "gcd", (XI, np.full((3, 4), 6, "int32")), {}), ("divide_no_nan", "divide_no_nan", (XF, XI), {}),
    ("isclose", "isclose", (XF, XF + 1e-6), {}), ("bitwise_xor", "bitwise_xor", (XI, np.int32(5)), {}),
    ("relu6", "relu6", (XF * 4,), {}), ("hard_sigmoid", "hard_sigmoid", (XF * 4,), {}),
    ("hard_silu", "hard_silu", (XF * 4,), {}), ("log_sigmoid", "log_sigmoid", (XF * 4,), {}),
    ("softsign", "softsign", (XF,), {}), ("celu", "celu", (XF,), {"alpha": 0.7}), ("glu", "glu", (XF,), {}),
    ("sparse_plus", "sparse_plus", (XF * 2,), {}), ("sparse_sigmoid", "sparse_sigmoid", (XF * 2,), {}),
    # sparsemax is left out: Keras 3.15's threshold sums the cumulative sums over the support
    # instead of taking the last one, so its rows do not sum to 1 once two entries are non-zero
    # (tests/ops/test_nn_extra_ops.py checks engine's against the simplex projection).
    ("squareplus", "squareplus", (XF,), {"b": 2}),
    ("tanh_shrink", "tanh_shrink", (XF,), {}), ("hard_tanh", "hard_tanh", (XF * 2,), {}),
    ("hard_shrink", "hard_shrink", (XF,), {}), ("soft_shrink", "soft_shrink", (XF,), {"threshold": 0.3}),
    ("threshold", "threshold", (XF, 0.2, -1.0), {}),
    ("arange", "arange", (2, 11, 3), {}), ("arange_f", "arange", (0.0, 1.0, 0.25), {}),
    ("linspace", "linspace", (0, 1, 7), {}), ("linspace_noend", "linspace", (1.0, 2.0, 4), {"endpoint": False}),
    ("logspace", "logspace", (0, 2, 5), {}), ("geomspace", "geomspace", (1, 16, 5), {}),
    ("eye", "eye", (3, 4), {"k": 1}), ("tri", "tri", (3, 4), {"k": -1}), ("full", "full", ((2, 3), 7), {}),
    ("full_like", "full_like", (XI, 2.5), {}), ("flip", "flip", (XF,), {"axis": 1}), ("roll", "roll", (XF, 2), {}),
    ("roll_axis", "roll", (XF, (1, -1)), {"axis": (0, 1)}), ("rot90", "rot90", (XF,), {"k": 3}),
    ("swapaxes", "swapaxes", (V4, 0, 2), {}), ("moveaxis", "moveaxis", (V4, [0, 1], [2, 0]), {}),
    ("tile", "tile", (XF, (2, 1, 2)), {}), ("triu", "triu", (V4,), {"k": 1}), ("tril", "tril", (XF,), {"k": -1}),
    ("diag", "diag", (XF,), {"k": 1}), ("diag_1d", "diag", (XF[0],), {"k": -1}), ("diagflat", "diagflat", (XF[:2],), {}),
    ("diagonal", "diagonal", (V4,), {"offset": 1, "axis1": 2, "axis2": 1}),
    ("take_along_axis", "take_along_axis", (XF, np.array([[0, 3], [1, 1], [2, 0]])), {"axis": 1}),
    ("append", "append", (XF, XI), {"axis": 0}), ("hstack", "hstack", ([XF, XF],), {}),
    ("vstack", "vstack", ([XF[0], XF[1]],), {}), ("dstack", "dstack", ([XF, XF],), {}),
    ("split", "split", (XF, 2), {"axis": 1}), ("split_points", "split", (XF, [1, 3]), {"axis": 1}),
    ("array_split", "array_split", (XF, 3), {"axis": 1}), ("unstack", "unstack", (V4,), {"axis": 1}),
    ("repeat", "repeat", (XF, 2), {}), ("repeat_each", "repeat", (XF, np.array([1, 0, 2])), {"axis": 0}),
    ("vander", "vander", (XF[0],), {"N": 3}), ("select", "select", ([XB, ~XB], [XF, XP]), {"default": -1.0}),
    ("meshgrid", "meshgrid", (XF[0], XF[1, :3]), {}), ("meshgrid_ij", "meshgrid", (XF[0], XF[1, :3]), {"indexing": "ij"}),
    *[(f"pad_{mode}", "pad", (XF, ((1, 2), (2, 1))), {"mode": mode})
      for mode in ("constant", "edge", "reflect", "symmetric", "wrap", "maximum", "minimum", "mean", "median",
                   "linear_ramp")],
    ("pad_value", "pad", (XF, 1), {"constant_values": 3.0}),
    ("prod", "prod", (XF,), {"axis": 1}), ("prod_bool", "prod", (XB,), {}), ("cumsum", "cumsum", (XF,), {"axis": 0}),
    ("cumsum_bool", "cumsum", (XB,), {}), ("cumprod", "cumprod", (XI,), {"axis": 1}), ("var", "var", (XI,), {"axis": 0}),
    ("std", "std", (XF,), {"keepdims": True}), ("logsumexp", "logsumexp", (XF,), {"axis": 1}),
    ("average", "average", (XF,), {"axis": 1, "weights": XP[0]}), ("ptp", "ptp", (XF,), {"axis": 0}),
    ("any", "any", (XB,), {"axis": 1}), ("all", "all", (XB,), {}), ("count_nonzero", "count_nonzero", (XI,), {"axis": 0}),
    ("argsort", "argsort", (XF,), {"axis": 0}), ("sort", "sort", (XF,), {}), ("top_k", "top_k", (XF, 2), {}),
    ("median", "median", (XF,), {"axis": 1}), ("quantile", "quantile", (XF, [0.2, 0.75]), {"axis": 0}),
    ("quantile_nearest", "quantile", (XF, 0.4), {"method": "nearest"}),
    ("percentile", "percentile", (XF, 30.0), {"axis": 1, "method": "midpoint"}),
    ("nanmean", "nanmean", (np.array([[1.0, np.nan], [3.0, 4.0]], "float32"),), {"axis": 1}),
    ("nanmax", "nanmax", (np.array([[1.0, np.nan], [3.0, 4.0]], "float32"),), {"axis": 1}),
    ("nanmedian", "nanmedian", (np.array([[1.0, np.nan, 2.0], [3.0, 4.0, 5.0]], "float32"),), {"axis": 1}),
    ("diff", "diff", (XF,), {"n": 2}), ("trapezoid", "trapezoid", (XF,), {"dx": 0.5}),
    ("histogram", "histogram", (XF[0],), {"bins": 3}), ("argpartition", "argpartition", (XF, 2), {"axis": 0}),
    ("in_top_k", "in_top_k", (np.array([1, 0, 3], "int32"), XF, 2), {}),
    ("max_initial", "max", (XF,), {"initial": 0.5}), ("clip_none", "clip", (XF, -0.5, None), {}),
    ("bincount", "bincount", (np.array([0, 2, 2, 5], "int32"),), {"minlength": 7}),
    ("digitize", "digitize", (XF, np.array([-1.0, 0.0, 1.0])), {}),
    ("searchsorted", "searchsorted", (np.array([1.0, 2.0, 3.0]), np.array([2.0, 0.5])), {"side": "right"}),
    ("unique", "unique", (np.array([3, 1, 3, 2], "int32"),), {}),
    ("einsum", "einsum", ("ij,kj->ik", XF, XP), {}), ("einsum_trace", "einsum", ("ii", SQ), {}),
    ("tensordot", "tensordot", (V4, XF[:, :3].T, 1), {}), ("dot_nd", "dot", (V4, np.ones((2, 3, 4), "float32")), {}),
    ("outer", "outer", (XF[0], XP[1]), {}), ("inner", "inner", (XF, XP), {}), ("vdot", "vdot", (XF, XP), {}),
    ("kron", "kron", (XF[:2, :2], SQ), {}), ("trace", "trace", (V4,), {"axis1": 1, "axis2": 2}),
    ("cross", "cross", (XF[:, :3], XP[:, :3]), {}), ("correlate", "correlate", (XF[0], XP[0, :2]), {"mode": "full"}),
    ("clip_int", "clip", (XI, 0.5, 2.5), {}), ("clip_bool", "clip", (XB, 0, 1), {}),
    ("moments", "moments", (XF, [0]), {}), ("normalize", "normalize", (XF,), {"order": 3}),
    ("batch_normalization", "batch_normalization", (XF, XF[0], XP[0], 1), {"offset": XF[1], "scale": XP[1]}),
    ("layer_normalization", "layer_normalization", (XF, XP[0], XF[1]), {}),
    ("rms_normalization", "rms_normalization", (XF, XP[0]), {}), ("psnr", "psnr", (XP, XP * 0.9, 2.0), {}),
    ("multi_hot", "multi_hot", (np.array([[0, 2], [1, 1]]), 4), {}),
    ("one_hot", "one_hot", (np.array([0, 3, -1]), 3), {}),
    ("depth_to_space", "depth_to_space", (rng.standard_normal((1, 2, 2, 8)).astype("float32"), 2), {}),
    ("unfold", "unfold", (rng.standard_normal((1, 2, 5, 5)).astype("float32"), 3), {"stride": 2, "padding": 1}),
    ("extract_sequences", "extract_sequences", (XF, 2, 1), {}),
    ("adaptive_average_pool", "adaptive_average_pool", (rng.standard_normal((1, 5, 7, 2)).astype("float32"), (2, 3)), {}),
    ("adaptive_max_pool", "adaptive_max_pool", (rng.standard_normal((1, 7, 2)).astype("float32"), 3), {}),
    ("dot_product_attention", "dot_product_attention",
     (rng.standard_normal((1, 3, 2, 4)).astype("float32"), rng.standard_normal((1, 5, 2, 4)).astype("float32"),
      rng.standard_normal((1, 5, 2, 4)).astype("float32")), {"is_causal": True}),
    ("ctc_loss", "ctc_loss", (np.array([[1, 2, 2]]), rng.standard_normal((1, 7, 4)).astype("float32"),
                              np.array([3]), np.array([7])), {}),
    ("inv", "linalg.inv", (SQ,), {}), ("det", "linalg.det", (SQ,), {}), ("slogdet", "slogdet", (SQ,), {}),
    ("solve", "linalg.solve", (SQ, XF[:, :2]), {}), ("solve_triangular", "linalg.solve_triangular", (SQ, XF[:, :2]), {"lower": True}),
    ("cholesky", "linalg.cholesky", (SPD,), {}), ("cholesky_upper", "linalg.cholesky", (SPD,), {"upper": True}),
    ("eigh_values", "linalg.eigh", (SPD,), {}), ("qr_r_abs", "linalg.qr", (XF.T,), {}),
    ("svd_values", "linalg.svd", (XF,), {"compute_uv": False}), ("pinv", "linalg.pinv", (XF,), {}),
    ("lstsq", "linalg.lstsq", (XF.T, XP[0]), {}), ("matrix_rank", "linalg.matrix_rank", (SQ,), {}),
    ("lu_factor", "linalg.lu_factor", (SQ,), {}), ("norm_fro", "linalg.norm", (XF,), {"ord": "fro"}),
    ("norm_nuc", "linalg.norm", (XF,), {"ord": "nuc"}), ("norm_vec", "norm", (XF,), {"ord": 3, "axis": 1}),
    ("norm_inf", "norm", (XF,), {"ord": np.inf}), ("cdist", "cdist", (XF, XP), {}),
    ("segment_sum", "segment_sum", (XF, np.array([0, 2, 0])), {"num_segments": 3}),
    ("segment_max", "segment_max", (XF, np.array([1, 1, 0])), {"num_segments": 2}),
    ("scatter", "scatter", (np.array([[0, 1], [2, 3], [0, 1]]), np.array([1.0, 2.0, 3.0], "float32"), (3, 4)), {}),
    ("scatter_update", "scatter_update", (XF, np.array([[0, 1], [2, 3]]), np.array([9.0, 8.0], "float32")), {}),
    ("slice", "slice", (XF, (1, 2), (2, 2)), {}), ("slice_update", "slice_update", (XF, (1, 1), np.ones((2, 2), "float32")), {}),
    ("rearrange", "rearrange", (V4, "b (h w) c -> b c w h"), {"h": 1}), ("saturate_cast", "saturate_cast", (XF * 200, "int8"), {}),
    ("rfft", "rfft", (XF,), {"fft_length": 6}), ("irfft", "irfft", ((XF, XP),), {}), ("fft", "fft", ((XF, XP),), {}),
    ("stft", "stft", (rng.standard_normal((30,)).astype("float32"), 8, 3, 8), {}),
    ("conv_transpose", "conv_transpose", (rng.standard_normal((1, 4, 3, 2)).astype("float32"),
                                          rng.standard_normal((3, 3, 5, 2)).astype("float32")), {"strides": 2, "padding": "same"}),
    ("separable_conv", "separable_conv", (rng.standard_normal((1, 5, 5, 2)).astype("float32"),
                                          rng.standard_normal((3, 3, 2, 2)).astype("float32"),
                                          rng.standard_normal((1, 1, 4, 3)).astype("float32")), {"padding": "same"}),
    *[(f"resize_{interp}_{aa}", "image.resize", (IMG, (4, 13)), {"interpolation": interp, "antialias": aa})
      for interp in ("bilinear", "nearest", "bicubic", "lanczos3", "lanczos5") for aa in (False, True)],
    ("resize_crop", "image.resize", (IMG, (5, 5)), {"crop_to_aspect_ratio": True}),
    ("resize_pad", "image.resize", (IMG, (5, 5)), {"pad_to_aspect_ratio": True, "fill_value": 0.5}),
    ("resize_uint8", "image.resize", ((IMG * 255).astype("uint8"), (4, 5)), {}),
    ("rgb_to_grayscale", "image.rgb_to_grayscale", (IMG,), {}), ("rgb_to_hsv", "image.rgb_to_hsv", (IMG,), {}),
    ("hsv_to_rgb", "image.hsv_to_rgb", (IMG,), {}),
    *[(f"affine_{mode}_{interp}", "image.affine_transform", (IMG, AFFINE),
       {"interpolation": interp, "fill_mode": mode, "fill_value": 0.3})
      for mode in ("constant", "nearest", "wrap", "mirror", "reflect") for interp in ("nearest", "bilinear")],
    *[(f"map_coordinates_{mode}_{order}", "image.map_coordinates", (XF, COORDS, order), {"fill_mode": mode, "fill_value": 0.5})
      for mode in ("constant", "nearest", "wrap", "mirror", "reflect") for order in (0, 1)],
    ("perspective_transform", "image.perspective_transform", (IMG, np.stack([CORNERS, CORNERS]),
                                                              np.stack([MOVED, CORNERS])), {}),
    ("pad_images", "image.pad_images", (IMG, 1, 2), {"target_height": 10, "target_width": 12}),
    ("crop_images", "image.crop_images", (IMG, 1, 2), {"target_height": 4, "right_cropping": 1}),
    ("extract_patches", "image.extract_patches", (IMG, (2, 3)), {"strides": (1, 2), "padding": "same"}),
    ("extract_patches_dilated", "image.extract_patches", (IMG, 2), {"dilation_rate": 2}),
    ("extract_patches_3d", "image.extract_patches_3d", (rng.standard_normal((1, 5, 6, 7, 2)).astype("float32"), 2),
     {"padding": "same"}),
    # Keras 3.15's JAX gaussian_blur blurs the wrong axes unless data_format is given explicitly.
    ("gaussian_blur", "image.gaussian_blur", (IMG, (3, 5), (1.0, 2.0)), {"data_format": "channels_last"}),
    ("sobel_edges", "image.sobel_edges", (IMG,), {}), ("ssim", "image.ssim", (IMG, IMG * 0.8 + 0.1), {"filter_size": 3}),
    ("scale_and_translate", "image.scale_and_translate", (IMG, (2, 5, 4, 3), np.array([0.7, 0.45], "float32"),
                                                           np.array([0.5, -1.0], "float32"), (1, 2), "cubic"), {}),
]

# Results defined only up to signs (decompositions): compared by absolute value.
UP_TO_SIGN = {"eigh_values", "qr_r_abs"}


def _get(root, path):
    obj = root
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _flat(out):
    if isinstance(out, (list, tuple)):
        return [leaf for o in out for leaf in _flat(o)]
    return [out]


@pytest.mark.parametrize("label,path,args,kwargs", CASES, ids=[c[0] for c in CASES])
def test_values_and_dtypes_match_keras(label, path, args, kwargs):
    expected = _flat(_get(keras.ops, path)(*args, **kwargs))
    got = _flat(_get(eops, path)(*args, **kwargs))
    assert len(got) == len(expected), f"{label}: {len(got)} outputs, keras gives {len(expected)}"
    for g, e in zip(got, expected):
        e = np.asarray(e)
        g_arr = np.asarray(g)
        assert g_arr.shape == e.shape, f"{label}: shape {g_arr.shape}, keras {e.shape}"
        assert g_arr.dtype == e.dtype, f"{label}: dtype {g_arr.dtype}, keras {e.dtype}"
        if label in UP_TO_SIGN:
            g_arr, e = np.abs(g_arr), np.abs(e)
        if e.dtype.kind == "f":
            np.testing.assert_allclose(g_arr, e, rtol=2e-4, atol=2e-5, err_msg=label)
        else:
            np.testing.assert_array_equal(g_arr.astype(np.int64), e.astype(np.int64), err_msg=label)
