"""Keras-style progress display for fit / evaluate / predict."""
import sys
import time

import numpy as np

from engine.config import is_interactive_logging_enabled
from engine.utils.io_utils import print_msg


def _format_value(v, signed=True):
    # Keras's rule: 4 decimals above 1e-3 in magnitude, else scientific (so 0 is 0.0000e+00). Its
    # one-line-per-epoch display (verbose=2) compares the signed value, so negatives go scientific.
    return f"{v:.4f}" if (abs(v) if signed else v) > 1e-3 else f"{v:.4e}"


def _format_time(seconds):
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{int(seconds)}s"


def _format_per_step(seconds, unit_name="step"):
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/{unit_name}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit_name}"
    return f"{seconds * 1e6:.0f}us/{unit_name}"


class Progbar:
    """A Keras-style progress bar: `step/target ━━━━ ETA - metric: value`.

    Values of metrics not declared stateful are averaged over the steps they were reported for
    (weighted by how many steps each update covered), as Keras's Progbar does; stateful ones are
    shown as last given. On a terminal the bar is redrawn in place; elsewhere only the final line
    is printed.

    Args:
        target: the total number of steps, or None if unknown.
        width: the bar's width in characters.
        verbose: 0 (silent), 1 (the bar) or 2 (one line when finished).
        interval: the least number of seconds between redraws.
        stateful_metrics: names of metrics shown as given (all others are averaged).
        stateless_metrics: instead of `stateful_metrics`, the names of the metrics averaged (all
            others are shown as given).
        unit_name: the name of a step in the timing (`ms/step`).
        stream: where to write (default: sys.stdout); engine's addition.
    """

    def __init__(self, target, width=20, verbose=1, interval=0.05, stateful_metrics=None, stateless_metrics=None,
                 unit_name="step", stream=None):
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ValueError("Progbar: pass only one of stateful_metrics (metrics shown as given; the rest are "
                             "averaged) and stateless_metrics (metrics averaged; the rest are shown as given)")
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.unit_name = unit_name
        self.stateful_metrics = set(stateful_metrics or ()) if stateless_metrics is None else None
        self.stateless_metrics = set(stateless_metrics) if stateless_metrics is not None else None
        self.stream = stream     # None: print_msg's destination (stdout, or logging when not interactive)
        out = stream or sys.stdout
        self.dynamic = hasattr(out, "isatty") and out.isatty() and (stream is not None or is_interactive_logging_enabled())
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self._finalized = False
        self._seen_so_far = 0
        self._values = {}           # name -> [weighted sum, weight] (insertion order is display order)

    def _averaged(self, name):
        if self.stateful_metrics is not None:
            return name not in self.stateful_metrics
        return name in self.stateless_metrics

    def _record(self, current, values, finished):
        for name, value in values:
            value = float(np.mean(value))
            if finished or not self._averaged(name):
                self._values[name] = [value, 1]     # as Keras: a final update's values are shown as given
            else:
                weight = max(current - self._seen_so_far, 1)
                total = self._values.setdefault(name, [0.0, 0])
                total[0] += value * weight
                total[1] += weight
        self._seen_so_far = current

    def _metrics(self, signed=True):
        return "".join(f" - {k}: {_format_value(total / max(count, 1), signed)}"
                       for k, (total, count) in self._values.items())

    def _line(self, current, finished):
        elapsed = time.perf_counter() - self.start
        per_step = elapsed / max(current, 1)
        count = f"{current}/{self.target}" if self.target else f"{current}/Unknown"   # as Keras
        if self.verbose == 2:
            return f"{count} - {_format_time(elapsed)} - {_format_per_step(per_step, self.unit_name)}" \
                   f"{self._metrics(signed=False)}"
        if self.target:
            filled = int(self.width * current / self.target)
            bar = "\u2501" * filled + ("\u2578" if filled < self.width else "") + " " * max(self.width - filled - 1, 0)
        else:
            bar = ""
        if finished or not self.target:      # without a total, Keras shows the time so far
            timing = f"{_format_time(elapsed)} {_format_per_step(per_step, self.unit_name)}"
        else:
            timing = f"{_format_time(per_step * (self.target - current))}"
        return f"{count} {bar} {timing}{self._metrics()}"

    def update(self, current, values=None, finalize=None):
        """Moves the bar to step `current`.

        Args:
            current: the number of steps done.
            values: `(name, value)` pairs for the steps since the last update.
            finalize: whether this is the last update (default: `current >= target`).
        """
        if self._finalized:
            return
        finished = finalize if finalize is not None else (self.target is not None and current >= self.target)
        self._record(current, values or (), finished)
        if not self.verbose:
            return
        now = time.perf_counter()
        if finished:
            self._finalized = True
            line = self._line(current, True)
            self._write(("\r" + line + "\x1b[K\n") if self.dynamic else line + "\n")
        elif self.dynamic and self.verbose == 1 and now - self._last_draw >= self.interval:
            self._last_draw = now
            self._write("\r" + self._line(current, False) + "\x1b[K")

    def _write(self, text):
        if self.stream is None:
            print_msg(text, line_break=False)
        else:
            self.stream.write(text)
            self.stream.flush()

    def add(self, n, values=None):
        """Advances the bar by `n` steps (`update(steps so far + n, values)`)."""
        self.update(self._seen_so_far + n, values)
