"""Imported first by the local pool's forkserver: its import defers the IRI grammar.

multiprocessing's forkserver preloads modules by name only, so the call that must come
before papermill's import (:func:`atlassian_playbook._iri_grammar.defer`) is this module's
whole body. Nothing else imports it.
"""

from .._iri_grammar import defer

defer()
