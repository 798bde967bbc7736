"""The entry point every bench/dns script shares."""

import os
import signal


def run(main):
    """Runs `main()`; on Ctrl-C dies of SIGINT, so that the calling shell sees the interrupt."""
    try:
        main()
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
