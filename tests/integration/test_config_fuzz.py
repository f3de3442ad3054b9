"""1,000 mutated configuration files: never a crash; always either exit 78
with every line of stderr in FILE:LINE: form, or exit 0 with
"configuration OK"."""
import os
import random
import re
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


class ConfigFuzzTest(unittest.TestCase):
    def test_thousand_mutations(self):
        with open(os.path.join(ROOT, "agentsyncd.conf"), "rb") as f:
            seed = f.read()
        rng = random.Random(20261124)
        d = tempfile.mkdtemp(prefix="agentsyncd-cfuzz-")
        path = os.path.join(d, "fuzz.conf")
        env = dict(os.environ, CODEGEN_API_TOKEN="c", COTOOL_API_KEY="k")
        outcomes = {0: 0, 78: 0}
        for i in range(1000):
            data = bytearray(seed)
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
            self.assertIn(r.returncode, (0, 78),
                          f"mutation {i}: exit {r.returncode}: "
                          f"{r.stderr[-500:]!r}")
            outcomes[r.returncode] += 1
            if r.returncode == 0:
                self.assertEqual(r.stdout, b"configuration OK\n")
            else:
                lines = r.stderr.decode("utf-8", "replace").split("\n")[:-1]
                self.assertTrue(lines, f"mutation {i}: no message")
                for line in lines:
                    self.assertTrue(re.match(re.escape(path) + r":\d+: ",
                                             line),
                                    f"mutation {i}: {line!r}")
        # Both outcomes occur: the mutations are neither all fatal nor
        # all harmless.
        self.assertGreater(outcomes[0], 20)
        self.assertGreater(outcomes[78], 200)


if __name__ == "__main__":
    unittest.main()
