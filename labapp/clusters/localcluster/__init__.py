"""A real Kubernetes control plane built from Go modules, with KWOK nodes.

Django-free on purpose: the management command, the tests and the
benchmarks all drive it with plain paths.
"""

from labapp.clusters.localcluster.build import Toolchain
from labapp.clusters.localcluster.cluster import LocalCluster
from labapp.clusters.localcluster.errors import BuildError, ClusterError, LocalClusterError

__all__ = ["BuildError", "ClusterError", "LocalCluster", "LocalClusterError", "Toolchain"]
