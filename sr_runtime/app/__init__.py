"""`sr-app`: the demo's web app (Gradio, extra ``app``): maps of LR | SR | HR truth and COGs.

Nothing here is imported by the runtime itself; Gradio is needed only by
:mod:`sr_runtime.app.ui` (``sr-app`` checks for it first and names the extra to install).
"""
