from django.apps import AppConfig


class SandboxesConfig(AppConfig):
    name = "labapp.sandboxes"
    label = "sandboxes"
    verbose_name = "Sandboxes"
