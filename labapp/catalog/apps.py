from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "labapp.catalog"
    label = "catalog"
    verbose_name = "Lab catalogue"

    def ready(self) -> None:
        # Registers the system check that validates the labs (`manage.py check`).
        from labapp.catalog import checks  # noqa: F401
