from django.apps import AppConfig


class LearningConfig(AppConfig):
    name = "labapp.learning"
    label = "learning"
    verbose_name = "Learning"
