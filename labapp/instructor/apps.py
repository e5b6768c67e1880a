from django.apps import AppConfig


class InstructorConfig(AppConfig):
    name = "labapp.instructor"
    label = "instructor"
    verbose_name = "Instructor"
