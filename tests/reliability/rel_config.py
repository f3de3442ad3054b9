# SPDX-License-Identifier: ISC
"""Config fuzz: 1,000 mutated configuration files (the example file with
random insertions, deletions and byte flips, seeded): never a crash;
always exit 0 with "configuration OK" or exit 78 with every line of stderr
in FILE:LINE: form.  The same mutations as the integration test."""
from tests.integration.test_config_fuzz import mutate_configs


def thousand_mutations():
    outcomes, problems = mutate_configs(1000)
    if problems:
        raise AssertionError(f"{len(problems)} problems: "
                             + "; ".join(problems[:5]))
    if outcomes.get(0, 0) < 20 or outcomes.get(78, 0) < 200:
        raise AssertionError(f"mutations too tame or too wild: {outcomes}")
    return (f"1,000 mutations: {outcomes.get(0, 0)} exit 0 (configuration "
            f"OK), {outcomes.get(78, 0)} exit 78 with FILE:LINE: lines, "
            f"0 crashes")


CASES = [("1,000 mutated configuration files", thousand_mutations)]
