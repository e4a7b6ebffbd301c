"""Entry point of the policy pack: `pulumi preview --policy-pack policies`.

`PolicyPack(...)` starts the analyzer's gRPC server and blocks, so it stays alone here; the policies live in
`rules.py`. The CLI runs this folder as a script (`python -m pulumi.policy <engine> .` in this folder, which calls
`runpy.run_path`), where the sibling module is the top-level `rules`; the type checker sees the package import.
"""

from typing import TYPE_CHECKING

from pulumi_policy import EnforcementLevel, PolicyPack

if TYPE_CHECKING:
    from policies.rules import PACK_NAME, POLICIES
else:
    from rules import PACK_NAME, POLICIES

PolicyPack(name=PACK_NAME, policies=POLICIES, enforcement_level=EnforcementLevel.MANDATORY)
