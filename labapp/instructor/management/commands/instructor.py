"""Who may teach: grant, revoke and list the instructor role.

    manage.py instructor grant alice            # an existing account
    manage.py instructor grant alice --create   # a new account (then: changepassword alice)
    manage.py instructor revoke alice
    manage.py instructor list

Staff accounts (manage.py createsuperuser) may teach without the role.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser

from labapp.instructor.roles import INSTRUCTORS_GROUP
from labapp.instructor.services import instructor_grant, instructor_revoke


class Command(BaseCommand):
    help = "Grant, revoke or list the instructor role (who may open /teach/)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        grant = actions.add_parser("grant", help="let USERNAME create and run workshops")
        grant.add_argument("username")
        grant.add_argument(
            "--create",
            action="store_true",
            help="create the account first (no password: set one with changepassword)",
        )
        revoke = actions.add_parser("revoke", help="take the role away from USERNAME")
        revoke.add_argument("username")
        actions.add_parser("list", help="everyone with the role, and staff")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "list":
            self._list()
            return
        User = get_user_model()
        username = options["username"]
        user = User.objects.filter(username=username).first()
        if user is None and action == "grant" and options["create"]:
            user = User.objects.create_user(username)  # an unusable password
            self.stdout.write(
                f"Created {username}; set a password with: manage.py changepassword {username}"
            )
        if user is None:
            raise CommandError(f"no account is named {username!r} (grant --create makes one)")
        if action == "grant":
            instructor_grant(user=user)
            self.stdout.write(f"{username} is an instructor.")
        else:
            instructor_revoke(user=user)
            note = " (still staff: staff may teach)" if user.is_staff else ""
            self.stdout.write(f"{username} is no longer an instructor{note}.")

    def _list(self) -> None:
        User = get_user_model()
        group = Group.objects.filter(name=INSTRUCTORS_GROUP).first()
        members = set(group.user_set.values_list("username", flat=True)) if group else set()
        staff = set(User.objects.filter(is_staff=True).values_list("username", flat=True))
        for username in sorted(members | staff):
            self.stdout.write(username + (" (staff)" if username in staff else ""))
