"""The restricted shell: parse a learner's command, refuse what is not allowed, run the rest.

Django-free on purpose: `shell` and `execute` work on plain strings and paths,
so the view, the worker and the tests all call them the same way.
"""
