"""One BLAS thread in the action server. Registered by ``rasa_sdk_plugins``.

numpy's OpenBLAS starts a worker thread per core at import, and after each matrix operation
that thread keeps spinning on a core for a while, waiting for more work. The action server's
only numpy user is matplotlib (the spending chart), whose matrices are tiny: the spinning
thread doubled the CPU a chart costs (about 145 against 55 ms per spending breakdown, measured
with ``scripts/profile_message.py --charts``) and took that core from the Rasa process beside it.
"""

from __future__ import annotations

import logging

import pluggy
from sanic import Sanic

hookimpl = pluggy.HookimplMarker("rasa_sdk")
logger = logging.getLogger(__name__)


def one_blas_thread() -> None:
    """Limit every BLAS library loaded in this process to one thread (threadpoolctl, as scikit-learn does)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn, a Rasa dependency, brings it
        logger.warning("threadpoolctl is not installed; BLAS keeps its own thread count")
        return
    threadpool_limits(limits=1, user_api="blas")


@hookimpl
def attach_sanic_app_extensions(app: Sanic) -> None:
    one_blas_thread()
