"""Synthetic example data and walk-throughs: an airline's loyalty members and a brand's CRM.

The generator lives in `examples.generate` (``from examples.generate import generate``); it is
not re-exported here so that the module and the function of the same name never shadow each
other (``python -m examples.generate`` runs it from the command line).
"""
