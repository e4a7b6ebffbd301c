"""The swarm-cluster CrossGuard policy pack.

The Pulumi CLI never imports this package: `pulumi preview --policy-pack policies` runs this folder's `__main__.py` as
a script with the folder on `sys.path` (so the policies are the top-level module `rules` there). This file only makes
`policies.rules` importable from the repository root, for tests and type checking.
"""
