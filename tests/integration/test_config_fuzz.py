# SPDX-License-Identifier: ISC
"""1,000 mutated configuration files: never a crash; always either exit 78
with every line of stderr in FILE:LINE: form, or exit 0 with
"configuration OK".  mutate_configs() is shared with
tests/reliability/rel_config.py, which prints the figures."""
import os
import random
import re
import shutil
import subprocess
import tempfile
import unittest

from tests.integration.harness import BIN, ROOT

PIECES = ["[", "]", "=", ";", "#", "\n", " ", "\t", "\x00", "\xff", "0",
          "-1", "99999999999999999999", "1e9", "ms", "d", "/", "@", ":",
          "[source x]", "[agentsyncd]", "type = cotool", "org_id = 1",
          "token = t", "token_file = /dev/null", "http://127.0.0.1",
          "https://", "rate_limit = 0/0s", "page_size = 100", "\\",
          "\"", "'", "\u00e9", "[source ]", "[source a b]"]


def example_with_sources(database):
    """The example configuration as an operator fills it in: both sources
    uncommented (type, org_id, token_env; the tokens are in the
    environment), the database in a directory that exists."""
    out = []
    with open(os.path.join(ROOT, "agentsyncd.conf")) as f:
        for line in f:
            if re.match(r";(\[source |type =|org_id =|token_env =)", line):
                line = line[1:]
            if line.startswith("database ="):
                line = f"database = {database}\n"
            out.append(line)
    return "".join(out).encode()


def mutate_configs(n=1000, seed=20261124):
    """Run agentsyncd -t on n mutations of the example configuration.
    Returns ({exit code: count}, [problems as sentences])."""
    d = tempfile.mkdtemp(prefix="agentsyncd-cfuzz-")
    base = example_with_sources(os.path.join(d, "fuzz.db"))
    rng = random.Random(seed)
    path = os.path.join(d, "fuzz.conf")
    env = dict(os.environ, CODEGEN_API_TOKEN="fuzz-codegen-token-01", COTOOL_API_KEY="fuzz-cotool-token-001")
    outcomes, problems = {}, []
    try:
        for i in range(n):
            data = bytearray(base)
            for _ in range(rng.randint(1, 8)):
                op = rng.random()
                pos = rng.randrange(len(data) + 1)
                if op < 0.4:
                    data[pos:pos] = rng.choice(PIECES).encode(
                        "utf-8", "surrogateescape")
                elif op < 0.7 and data:
                    del data[pos:pos + rng.randint(1, 40)]
                elif data:
                    data[min(pos, len(data) - 1)] = rng.randrange(256)
            with open(path, "wb") as f:
                f.write(data)
            os.chmod(path, 0o600)
            r = subprocess.run([BIN, "-c", path, "-t"], env=env,
                               capture_output=True, timeout=30)
            outcomes[r.returncode] = outcomes.get(r.returncode, 0) + 1
            if r.returncode == 0:
                if r.stdout != b"configuration OK\n":
                    problems.append(f"mutation {i}: exit 0 but stdout "
                                    f"{r.stdout[:100]!r}")
            elif r.returncode == 78:
                lines = r.stderr.decode("utf-8", "replace").split("\n")[:-1]
                if not lines:
                    problems.append(f"mutation {i}: exit 78, no message")
                for line in lines:
                    if not re.match(re.escape(path) + r":\d+: ", line):
                        problems.append(f"mutation {i}: {line!r}")
            else:
                problems.append(f"mutation {i}: exit {r.returncode}: "
                                f"{r.stderr[-500:]!r}")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return outcomes, problems


class ConfigFuzzTest(unittest.TestCase):
    def test_thousand_mutations(self):
        outcomes, problems = mutate_configs()
        self.assertEqual(problems, [])
        # Both outcomes occur: the mutations are neither all fatal nor
        # all harmless.
        self.assertGreater(outcomes.get(0, 0), 20)
        self.assertGreater(outcomes.get(78, 0), 200)


if __name__ == "__main__":
    unittest.main()
