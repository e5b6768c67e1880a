"""Django-free helpers shared by the apps."""
