"""The page's entry script (a few lines on purpose): the app itself is the ``tinyrnn_app`` package, its own wheel.

``python -m sitebuild.build`` converts this file with ``panel convert --to pyodide-worker`` (the page loads the
tinyrnn and tinyrnn-app wheels first); ``panel serve webapp/app.py`` serves it on a dev server (with
``pip install -e webapp/``).
"""
import panel as pn

from tinyrnn_app import create_app

pn.extension()
create_app().servable()
