"""The local control plane's audit log, and the Pod Security records in it.

kube-apiserver writes one JSON event per line to `<cluster>/logs/audit.log`. The
policy keeps only what Pod Security Admission annotates (requests that create or
change pods and the objects that make them), at Metadata level: who, what, when
and the annotations, never a request or response body.

Learners never read the file. The lab page asks `psa_audit_records` for the
records of the learner's own namespaces, and shows a few fields of each.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Bump the version in the file's name when the policy changes: the API server's flags
# then change, and `up` restarts it with the new policy.
POLICY_FILE = "audit-policy-v1.yaml"
LOG_FILE = Path("logs") / "audit.log"
POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
omitManagedFields: true
rules:
  # Pod Security Admission annotates these requests (audit-violations, enforce-policy).
  - level: Metadata
    verbs: ["create", "update", "patch"]
    resources:
      - group: ""
        resources: ["pods"]
      - group: "apps"
        resources: ["deployments", "replicasets", "statefulsets", "daemonsets"]
      - group: "batch"
        resources: ["jobs", "cronjobs"]
  - level: None
"""
PSA_PREFIX = "pod-security.kubernetes.io/"
# Read at most this much of the log's end for one page view.
TAIL_BYTES = 2 * 1024 * 1024


def audit_flags(workdir: Path) -> list[str]:
    """kube-apiserver's audit flags; writes the policy file they name."""
    policy = workdir / POLICY_FILE
    if not policy.is_file() or policy.read_text() != POLICY:
        workdir.mkdir(parents=True, exist_ok=True)
        policy.write_text(POLICY)
    return [
        f"--audit-policy-file={policy}",
        f"--audit-log-path={workdir / LOG_FILE}",
        "--audit-log-format=json",
        "--audit-log-maxsize=50",
        "--audit-log-maxbackup=2",
    ]


@dataclass(frozen=True)
class AuditRecord:
    """One request Pod Security Admission annotated, as a learner may see it."""

    time: str
    verb: str
    resource: str  # "deployments", "pods", ...
    name: str  # empty for a pod made from a generateName
    namespace: str
    actor: str  # the last part of the user name: "learner-x1", "replicaset-controller"
    annotations: tuple[tuple[str, str], ...]  # the pod-security.kubernetes.io/ ones

    @property
    def violations(self) -> str:
        return dict(self.annotations).get(f"{PSA_PREFIX}audit-violations", "")


def psa_audit_records(
    log_path: Path, namespaces: Iterable[str], *, limit: int = 20
) -> list[AuditRecord]:
    """The newest records in `namespaces` that carry Pod Security annotations."""
    wanted = set(namespaces)
    if not wanted:
        return []
    records: list[AuditRecord] = []
    # A cheap test first: most lines are other learners', and JSON parsing is not free.
    tokens = [f'"namespace":"{name}"'.encode() for name in wanted]
    for line in reversed(_tail_lines(log_path)):
        if not any(token in line for token in tokens):
            continue
        record = _record(line, wanted)
        if record is not None:
            records.append(record)
            if len(records) >= limit:
                break
    return records


def _tail_lines(path: Path) -> list[bytes]:
    try:
        with path.open("rb") as log:
            log.seek(0, 2)
            size = log.tell()
            log.seek(max(0, size - TAIL_BYTES))
            data = log.read()
    except OSError:
        return []
    lines = data.split(b"\n")
    return lines[1:] if size > TAIL_BYTES else lines  # the first may be cut


def _record(line: bytes, namespaces: set[str]) -> AuditRecord | None:
    if not line.strip():
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("stage") != "ResponseComplete":
        return None
    ref = event.get("objectRef") or {}
    if ref.get("namespace") not in namespaces or ref.get("subresource"):
        return None
    annotations = tuple(
        sorted(
            (str(key), str(value))
            for key, value in (event.get("annotations") or {}).items()
            if str(key).startswith(PSA_PREFIX)
        )
    )
    if not annotations:
        return None
    user = str((event.get("user") or {}).get("username", ""))
    return AuditRecord(
        time=str(event.get("stageTimestamp") or event.get("requestReceivedTimestamp") or ""),
        verb=str(event.get("verb", "")),
        resource=str(ref.get("resource", "")),
        name=str(ref.get("name", "")),
        namespace=str(ref["namespace"]),
        actor=user.rsplit(":", 1)[-1],
        annotations=annotations,
    )
