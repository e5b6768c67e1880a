from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "labapp.ops"
    label = "ops"
