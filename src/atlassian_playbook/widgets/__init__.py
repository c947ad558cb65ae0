"""The playbook's ipywidgets: views over plain package functions.

Each widget changes state only through a callback that the headless path calls directly
(papermill runs pass the same choice as a notebook parameter), so people and batch runs take
the same code path. Rules that keep secrets out of saved notebooks:

* no widget is ever created holding a secret value, except :class:`SecretReveal` while its
  Reveal button is down; it empties itself when released (its Copy button releases it);
* :class:`CredentialsForm` empties its password field as soon as the secret is saved.

Every widget, displayed, offers two views in one mimebundle: the live widget (JupyterLab shows
it) and a ``text/html`` snapshot of what it shows at that moment, which is what an executed
notebook keeps (no widget state is saved) and what the training site's pages show. A snapshot
never holds a secret: the form is drawn empty, a secret masked.

Copy buttons are plain HTML buttons inside an ``HTML`` widget: ipywidgets 8 sets that HTML
as ``innerHTML`` and the browser runs the inline handler (``navigator.clipboard.writeText``),
in JupyterLab and in a static page alike. Everything renders in JupyterLab 4 with the stock
ipywidgets 8 (no extra extension).
"""

from ._display import copy_button
from .checklist import ChecklistWidget
from .credentials import CredentialsForm
from .scope_advisor import ScopeAdvisorPanel
from .scope_picker import OPEN_MATCHES_AT_MOST, ScopeGroup, ScopePicker, scope_groups
from .secret_reveal import SecretReveal

__all__ = [
    "ChecklistWidget",
    "ScopePicker",
    "ScopeGroup",
    "scope_groups",
    "OPEN_MATCHES_AT_MOST",
    "CredentialsForm",
    "SecretReveal",
    "ScopeAdvisorPanel",
    "copy_button",
]
