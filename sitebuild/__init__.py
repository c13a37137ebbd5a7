"""tinyrnn's site build: the tools that turn the app into the static site the browser tests drive and GitHub Pages
publishes (docs/deploy.md). Run from the repository root with the project's venv:

    python -m sitebuild.mirror --dest .cache/mirror                                # registries -> offline mirror
    python -m sitebuild.build --mirror .cache/mirror --out build/site               # the site
    python -m sitebuild.serve --site build/site --port 8000

Modules: ``pins`` (every version and package choice), ``common`` (logging, subprocesses, hashes, files, cached
steps), ``pyodide_build`` (the pyodide-build venv), ``standins`` (wheels of the stand-in packages; their sources in
``standin_src/``), ``mirror`` (the registries' files), ``selfcontained`` (the site's Pyodide folder), ``patches``
(fixes to the converter's output; JavaScript in ``js/``), ``pwa`` (manifest, icon, service worker),
``build`` (the site), ``serve`` (a local server).
"""
