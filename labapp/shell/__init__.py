"""The restricted shell, free of Django: what a learner may type (parse, policy) and how
it runs (execute)."""
