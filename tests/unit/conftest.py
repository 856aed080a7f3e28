"""Hypothesis settings for the unit suite.

No example database (a failure prints its reproducing example instead), and no
per-example deadline, so a slow CI machine cannot turn a correct property into a failure.
Hypothesis still keeps small caches in .hypothesis/, which it git-ignores itself.
"""

from hypothesis import settings

settings.register_profile("unit", database=None, deadline=None)
settings.load_profile("unit")
