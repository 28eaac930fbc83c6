"""The `backstage` command (installed by the wheel) and `python -m backstage`: the Rust CLI."""

from __future__ import annotations

import signal
import sys

from backstage._backstage import run_cli


def main() -> None:
    """Runs the `backstage` command line on `sys.argv` and exits with its code."""
    # The CLI runs without the GIL; let Ctrl-C stop it as it stops the native binary.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(run_cli(["backstage", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
