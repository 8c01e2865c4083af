"""RMSprop's velocity decay, deferred for the table rows a step gives no gradient.

A plain RMSprop step (no momentum, not centered) leaves a row without gradient as it is, except
for its velocity: v = rho * v. For an Embedding table stepped by rows (the batch's ids), that is
most of the table on most steps, and streaming the whole velocity through memory for it was the
step's largest cost (the three-output tour model's 50000 x 256 table: 9 ms of a step, on one
thread). So the kernel only counts those decays, per row (engine._kernels.optimizer_step.
rmsprop_update(pending=...)); a row's counted decays are applied, one rounded product each, just
before its next step, and all of them whenever the velocity is read in any other way. The bits
are those of the eager steps: rho * (rho * v) applied later is the same sequence of roundings.

The velocity is a DecayDeferringVariable: every read of it (numpy(), the optimizer's variables,
saving, get_weights, a data-parallel broadcast, a dense step) goes through `_value`, which applies
what is counted first; only the rows step takes the raw array with its counts (`deferring`).
"""
import numpy as np

from engine._kernels import optimizer_step as K
from engine.variables import Variable


class DecayDeferringVariable(Variable):
    """An optimizer slot whose table rows may carry velocity decays counted but not yet applied
    (see the module's docstring); reading its value applies them first. Its shape, dtype, ndim
    and size are read without doing so."""

    _pending = None      # int32 counts, one per table row, made by the first deferring step
    _rho = None          # the decay those counts stand for
    _deferred = False    # whether some count may be non-zero

    @property
    def _value(self):
        if self._deferred:
            self.apply_deferred()
        return self.storage()

    @_value.setter
    def _value(self, array):
        self.__dict__["_array"] = array
        self._deferred = False
        if self._pending is not None:
            self._pending[...] = 0

    def storage(self):
        return self.__dict__["_array"]

    # what describes the array, read without applying the counted decays
    shape = property(lambda self: self.storage().shape)
    dtype = property(lambda self: self.storage().dtype)
    ndim = property(lambda self: self.storage().ndim)
    size = property(lambda self: self.storage().size)

    def deferring(self, rho):
        """The raw (rows, width) array and its int32 counts, for a rows step of decay `rho`: decays
        counted at another rho are applied first, so the counts always stand for one rho."""
        array = self.storage()
        if self._pending is None:
            self._pending = np.zeros(array.shape[0], np.int32)
        elif self._rho != rho:
            self.apply_deferred()
        self._rho = rho
        self._deferred = True
        return array, self._pending

    def apply_deferred(self):
        """Apply every counted decay (the array is then the eager steps' velocity)."""
        if self._deferred:
            K.apply_deferred_decay(self.storage(), self._pending, self._rho)
            self._deferred = False
