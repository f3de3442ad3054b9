"""make check-reliability: see run.py.  Helpers shared by the cases."""
import time


class Skip(Exception):
    """Raised by a case that cannot run on this machine, with why."""


def wait_for(cond, timeout, what, proc=None, log=None, step=0.05):
    """Poll cond() until true, at most timeout seconds; fail early when
    proc (a daemon) has exited.  log() gives a log tail for the message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(
                f"daemon exited {proc.returncode} while waiting for {what}"
                + (f"; log tail: {log()[-600:]}" if log else ""))
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                         + (f"; log tail: {log()[-600:]}" if log else ""))
