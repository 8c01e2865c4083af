"""Where engine's messages go: standard output while interactive logging is on (the default),
else the `logging` module (logger "engine", level INFO), as Keras sends them to absl's logging."""
import logging
import sys

_interactive = True


def enable_interactive_logging():
    """Progress bars and messages are written to standard output (the default)."""
    global _interactive
    _interactive = True


def disable_interactive_logging():
    """Progress bars and messages go to Python's `logging` (logger "engine", INFO) instead of
    standard output: for jobs whose output is collected by a logging setup."""
    global _interactive
    _interactive = False


def is_interactive_logging_enabled():
    """Whether messages are written to standard output (True) or to `logging` (False)."""
    return _interactive


def print_msg(message, line_break=True):
    """Writes a message where messages go now (see `disable_interactive_logging`).

    Args:
        message: the text.
        line_break: end it with a new line (standard output only; a log record is one line).
    """
    if _interactive:
        sys.stdout.write(message + ("\n" if line_break else ""))
        sys.stdout.flush()
    else:
        logging.getLogger("engine").info(message.strip("\r\n"))
