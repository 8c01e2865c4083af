"""Where engine's messages go: standard output while interactive logging is on (the default),
else the `logging` module (logger "engine", level INFO), as Keras sends them to absl's logging.
The switch is `engine.config.disable_interactive_logging()` (also at engine.utils)."""
import logging
import sys

from engine import config


def print_msg(message, line_break=True):
    """Writes a message where messages go now (see `config.disable_interactive_logging`).

    Args:
        message: the text.
        line_break: end it with a new line (standard output only; a log record is one line).
    """
    if config.is_interactive_logging_enabled():
        sys.stdout.write(message + ("\n" if line_break else ""))
        sys.stdout.flush()
    else:
        logging.getLogger("engine").info(message.strip("\r\n"))
