# SPDX-License-Identifier: ISC
"""make check-reliability: see run.py.  Helpers shared by the cases: the
wait and the stop are the integration harness's own (one of each)."""
from tests.integration.harness import stop, wait_for  # noqa: F401


class Skip(Exception):
    """Raised by a case that cannot run on this machine, with why."""
