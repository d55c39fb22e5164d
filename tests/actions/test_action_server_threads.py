"""The action server keeps numpy's BLAS to one thread: a second, spinning one doubled what a spending
chart costs and took a core from the Rasa process."""

from __future__ import annotations

from typing import Any

import numpy  # noqa: F401  (loads OpenBLAS, as matplotlib does in the action server)
from threadpoolctl import threadpool_info, threadpool_limits

import rasa_sdk_plugins
from actions import blas_threads


def blas_thread_counts() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_blas_runs_on_one_thread_once_the_action_server_starts() -> None:
    before = {pool["prefix"]: pool["num_threads"] for pool in threadpool_info()}
    try:
        blas_threads.attach_sanic_app_extensions(app=None)
        assert blas_thread_counts() and set(blas_thread_counts()) == {1}
    finally:
        threadpool_limits(limits=before)


def test_the_project_plugin_registers_it() -> None:
    registered: list[Any] = []

    class Manager:
        def register(self, plugin: Any) -> None:
            registered.append(plugin)

    rasa_sdk_plugins.init_hooks(Manager())  # type: ignore[arg-type]
    assert blas_threads in registered
