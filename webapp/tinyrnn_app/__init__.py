"""tinyrnn in the browser: paste text, train a character-level RNN in the tab, watch it learn, sample, take it home.

``create_app()`` builds the page over a :class:`TrainingSession`. Importing this package builds and starts nothing
(and imports no Panel until one of the two is used, so ``tinyrnn_app.settings`` imports with tinyrnn alone); the
entry script (``webapp/app.py``) loads Panel's extension and serves ``create_app()``. The app uses only the public
``tinyrnn`` API, ``panel``, ``param``, ``bokeh`` and ``numpy``. See docs/app.md.
"""

__all__ = ["TrainingSession", "create_app"]


def __getattr__(name):
    if name == "create_app":
        from .layout import create_app

        return create_app
    if name == "TrainingSession":
        from .session import TrainingSession

        return TrainingSession
    raise AttributeError(f"module 'tinyrnn_app' has no attribute {name!r}")
