"""tinyrnn in the browser: paste text, train a character-level RNN in the tab, watch it learn, sample, take it home.

``create_app()`` builds the page over a :class:`TrainingSession`. Importing this package builds and starts nothing;
the entry script (``webapp/app.py``) loads Panel's extension and serves ``create_app()``. The app uses only the
public ``tinyrnn`` API, ``panel``, ``param``, ``bokeh`` and ``numpy``. See docs/app.md and docs/architecture.md.
"""

from .layout import create_app
from .session import TrainingSession

__all__ = ["TrainingSession", "create_app"]
