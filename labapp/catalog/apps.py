from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "labapp.catalog"
    label = "catalog"
    verbose_name = "Lab catalogue"
