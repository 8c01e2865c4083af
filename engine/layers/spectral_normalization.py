"""SpectralNormalization: a wrapper keeping the spectral norm of a layer's kernel at 1, as
keras.layers.SpectralNormalization (Miyato et al., 2018)."""
import numpy as np

from engine import initializers
from engine.layers.wrappers import Wrapper


def _unit(v):
    """v / ||v|| (a zero vector stays zero)."""
    norm = np.linalg.norm(v)
    return v / (norm if norm else 1.0)


class SpectralNormalization(Wrapper):
    """Divides the wrapped layer's kernel (or an Embedding's embeddings) by its largest singular
    value, estimated by power iteration, on every training call; inference uses the kernel as it
    stands.

    The kernel W, seen as a matrix (-1, n), and the non-trainable estimate u (1, n) give
    v = unit(u W^T), u = unit(v W) (power_iterations times) and sigma = v W u^T; then W / sigma
    is written into the kernel variable (not recorded: the gradient reaches the kernel through
    the layer's own call), as Keras does.  A kernel of zeros is left alone.

    Args:
        layer: the layer to wrap; it must have a `kernel` or an `embeddings` weight.
        power_iterations: positive integer, power-iteration steps per training call (default 1).
        **kwargs: base layer keyword arguments, such as `name`.
    """

    def __init__(self, layer, power_iterations=1, **kwargs):
        super().__init__(layer, **kwargs)
        if isinstance(power_iterations, bool) or not isinstance(power_iterations, (int, np.integer)) \
                or power_iterations <= 0:
            raise ValueError(f"SpectralNormalization: power_iterations must be a positive integer, got "
                             f"{power_iterations!r}")
        self.power_iterations = int(power_iterations)

    def build(self, input_shape=None):
        super().build(input_shape)
        names = [n for n in ("kernel", "embeddings") if getattr(self.layer, n, None) is not None]
        if not names:
            raise ValueError(f"SpectralNormalization: the wrapped {type(self.layer).__name__} has neither a "
                             f"`kernel` nor an `embeddings` weight to normalize")
        self.kernel = getattr(self.layer, names[0])
        # Keras tracks the wrapped kernel as the wrapper's own variable too: its weights read
        # [kernel, vector_u, other weights of the layer] and its files keep vars/0 = kernel.
        self._trainable_weights_list.append(self.kernel)
        self.vector_u = self.add_weight(shape=(1, self.kernel.shape[-1]),
                                        initializer=initializers.TruncatedNormal(stddev=0.02), trainable=False,
                                        name="vector_u", dtype=self.kernel.dtype)
        self.built = True

    def call(self, inputs, training=False):
        if training:
            self._normalize_kernel()
        return self.layer(inputs)

    def _normalize_kernel(self):
        w = np.asarray(self.kernel.numpy(), dtype=np.float64)
        if not w.any():
            return
        matrix = w.reshape(-1, w.shape[-1])
        u = self.vector_u.numpy().astype(np.float64)
        for _ in range(self.power_iterations):
            v = _unit(u @ matrix.T)
            u = _unit(v @ matrix)
        sigma = float((v @ matrix @ u.T)[0, 0])
        self.vector_u.assign(u.astype(self.vector_u.dtype))
        self.kernel.assign((w / sigma).astype(self.kernel.dtype))

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "power_iterations": self.power_iterations}
