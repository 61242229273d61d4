"""Email backends: the default delivers through Django's own email framework."""
