class LocalClusterError(RuntimeError):
    """Base for failures the management command reports as one clear line."""


class BuildError(LocalClusterError):
    """The binaries could not be built; the message says why and what to do."""


class ClusterError(LocalClusterError):
    """The cluster could not be brought to the asked state; says why."""
