"""Running labapp: health and readiness, the operator's cluster page, `runlab`, the dev
stack, logging."""
