"""Ending a command-line entry point as a command: standard library only, so `dev.py` (any python3) uses it too."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable


def as_command(main: Callable[[], int]) -> int:
    """`main()`'s exit status, or what a shell reports for a command its signal ended, without a traceback:
    128 + SIGINT after Ctrl-C, 128 + SIGPIPE when the reader of the output left early (`dev.py plan --json | head`)."""
    try:
        try:
            return main()
        finally:
            sys.stdout.flush()  # a reader that left shows here, not in the interpreter's flush at exit
    except KeyboardInterrupt:  # the terminal shows ^C; a traceback of where the program was tells the user nothing
        return 128 + signal.SIGINT
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to write, at exit either
        return 128 + signal.SIGPIPE
