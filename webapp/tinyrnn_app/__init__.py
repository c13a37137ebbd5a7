"""tinyrnn's in-browser app as a package (TEMP: a mechanical move of webapp/app.py; H2's split replaces it)."""
from tinyrnn_app.app import TrainingSession, create_app

__all__ = ["TrainingSession", "create_app"]
