from django.apps import AppConfig


class HealthConfig(AppConfig):
    name = "labapp.health"
    label = "health"
