from django.apps import AppConfig


class ClustersConfig(AppConfig):
    name = "labapp.clusters"
    label = "clusters"
    verbose_name = "Clusters"
