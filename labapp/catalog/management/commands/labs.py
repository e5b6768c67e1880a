"""`manage.py labs validate [PATH]` and `manage.py labs rehearse LAB|--all [--kubeconfig PATH]`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from labapp.catalog.loader import validate_labs
from labapp.catalog.rehearsal import format_report, rehearse_lab
from labapp.clusters.client import ClusterUnreachable
from labapp.clusters.config import local_cluster
from labapp.clusters.localcluster import LocalClusterError
from labapp.clusters.tools import default_tools


class Command(BaseCommand):
    help = "Validate lab files, or rehearse labs against fresh sandboxes."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        validate = sub.add_parser("validate", help="report every problem with file:line")
        validate.add_argument("path", nargs="?", type=Path, default=None)
        rehearse = sub.add_parser(
            "rehearse",
            help="prove the solutions, alternatives and mistakes, that checks fail before "
            "their steps, and that the seed page's commands work",
        )
        rehearse.add_argument("lab", nargs="?", help="lab id")
        rehearse.add_argument("--all", action="store_true", help="every lab")
        rehearse.add_argument(
            "--kubeconfig",
            type=Path,
            default=None,
            help="cluster to use (default: LABAPP_KUBECONFIG, else the local control plane)",
        )
        rehearse.add_argument("--path", type=Path, default=None, help="lab folder root")
        rehearse.add_argument(
            "--jobs",
            type=int,
            default=3,
            help="walks (each in its own fresh sandbox) to run side by side (default 3)",
        )

    def handle(self, *args: object, action: str, **options: Any) -> None:
        if action == "validate":
            self._validate(options["path"] or settings.LAB_STEPS_DIR)
        else:
            self._rehearse(options)

    def _validate(self, root: Path) -> None:
        labs, problems = validate_labs(root)
        for problem in problems:
            self.stderr.write(str(problem))
        if problems:
            raise CommandError(f"{len(problems)} problem(s) in the labs under {root}")
        self.stdout.write(f"{len(labs)} lab(s) valid: {', '.join(lab.id for lab in labs)}")

    def _rehearse(self, options: dict) -> None:
        root = options["path"] or settings.LAB_STEPS_DIR
        labs, problems = validate_labs(root)
        if problems:
            for problem in problems:
                self.stderr.write(str(problem))
            raise CommandError("the labs are not valid; fix them before rehearsing")
        if options["all"]:
            chosen = labs
        else:
            chosen = [lab for lab in labs if lab.id == options["lab"]]
            if not chosen:
                known = ", ".join(lab.id for lab in labs)
                raise CommandError(f"no lab {options['lab']!r}; known labs: {known}")
        kubeconfig = options["kubeconfig"] or (
            Path(settings.KUBECONFIG) if settings.KUBECONFIG else None
        )
        if kubeconfig is None:
            try:
                cluster = local_cluster()
                cluster.up(progress=lambda message: self.stderr.write(f"[localcluster] {message}"))
            except LocalClusterError as exc:
                raise CommandError(str(exc)) from exc
            kubeconfig = cluster.kubeconfig_path
        tools = default_tools()
        # Walks run side by side through one API client: its pool turning connections
        # away is expected, and says nothing about the labs.
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
        failed = []
        for lab in chosen:
            try:
                report = rehearse_lab(
                    lab,
                    kubeconfig=kubeconfig,
                    tools=tools,
                    say=self.stdout.write,
                    jobs=options["jobs"],
                )
            except ClusterUnreachable as exc:
                raise CommandError(f"cannot rehearse {lab.id}: {exc}") from exc
            self.stdout.write(format_report(report))
            if not report.ok:
                failed.append(lab.id)
        if failed:
            raise CommandError(f"rehearsal failed for: {', '.join(failed)}")
        self.stdout.write(f"rehearsal passed for {len(chosen)} lab(s)")
