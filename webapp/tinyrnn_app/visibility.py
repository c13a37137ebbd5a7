"""A zero-size page component that tells Python when the tab is hidden (switched away from, minimised, closed):
the Pyodide worker has no ``document`` to listen to, so the listener runs in the page and counts in ``hidden``."""

from __future__ import annotations

import param
from panel.custom import JSComponent


class PageVisibility(JSComponent):
    """``hidden`` goes up by one each time the page is hidden (``visibilitychange`` to hidden, or ``pagehide``)."""

    hidden = param.Integer(default=0)

    _esm = """
    export function render({ model }) {
      const hide = () => { model.hidden = model.hidden + 1 };
      document.addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") hide() });
      window.addEventListener("pagehide", hide);
      return document.createElement("span");
    }
    """
