"""Where this deployment's learner tools live: the pinned kubectl and the built yq."""

from __future__ import annotations

import functools

from django.conf import settings

from labapp.clusters.kubectl import kubectl_path
from labapp.clusters.localcluster import Toolchain
from labapp.shell.execute import ToolPaths


@functools.cache
def default_tools() -> ToolPaths:
    yq = Toolchain(settings.LOCALCLUSTER_CACHE).ensure(progress=lambda message: None).path("yq")
    return ToolPaths(kubectl=kubectl_path(), yq=yq)
