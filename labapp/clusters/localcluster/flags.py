"""The flags each control-plane component runs with: all on loopback (only the API
server may bind elsewhere, for containers that reach it by name)."""

from __future__ import annotations

from pathlib import Path

from labapp.clusters.localcluster.audit import audit_flags
from labapp.clusters.localcluster.build import Binaries
from labapp.clusters.localcluster.pki import ClusterPKI

SERVICE_CIDR = "10.96.0.0/16"


def component_args(
    name: str,
    *,
    workdir: Path,
    pki: ClusterPKI,
    kubeconfig: Path,
    bind_address: str,
    binaries: Binaries,
    ports: dict[str, int],
) -> list[str]:
    """The command-line flags of one control-plane component."""
    wd = workdir
    if name == "etcd":
        client = f"http://127.0.0.1:{ports['etcd']}"
        peer = f"http://127.0.0.1:{ports['etcd-peer']}"
        return [
            "--name=node0",
            f"--data-dir={wd / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=node0={peer}",
            "--auto-compaction-retention=1",
            # A lab sandbox, not a bank: skip fsync for speed on shared disks.
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ]
    if name == "kube-apiserver":
        # Admission plugins stay at their defaults: that keeps PodSecurity on.
        return [
            f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
            f"--bind-address={bind_address}",
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",
            f"--secure-port={ports['kube-apiserver']}",
            f"--cert-dir={wd / 'apiserver'}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            "--profiling=false",
            # Pod Security audit records, which the lab shows each learner for
            # their own namespaces (labapp.clusters.localcluster.audit).
            *audit_flags(wd),
        ]
    if name in ("kube-controller-manager", "kube-scheduler"):
        args = [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports[name]}",
            f"--cert-dir={wd / name}",
            "--leader-elect=false",
            "--profiling=false",
        ]
        if name == "kube-controller-manager":
            args += [
                f"--root-ca-file={pki.ca_cert}",
                f"--service-account-private-key-file={pki.sa_key}",
                "--use-service-account-credentials=true",
            ]
        return args
    if name == "kwok":
        # No Exec/Attach/PortForward rules, ever: they would run learner
        # commands on this host. Only the stage config is given.
        return [
            f"--kubeconfig={kubeconfig}",
            f"--config={binaries.kwok_config}",
            "--manage-all-nodes=true",
            "--node-ip=127.0.0.1",
            "--node-name=localhost",
            f"--node-port={ports['kwok']}",
            f"--server-address=127.0.0.1:{ports['kwok']}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            "--node-lease-duration-seconds=40",
            "--cidr=10.244.0.0/16",
        ]
    raise ValueError(name)
