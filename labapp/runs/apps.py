from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "labapp.runs"
    label = "runs"
    verbose_name = "Command runs"
