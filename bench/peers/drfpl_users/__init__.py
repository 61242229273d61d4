"""The drfpasswordless peer's user model: drfpasswordless's own test model (tests/models.py)."""
