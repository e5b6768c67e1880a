from django.apps import AppConfig


class RunnerConfig(AppConfig):
    name = "labapp.runner"
    label = "runner"
    verbose_name = "Command runs"
