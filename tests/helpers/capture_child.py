"""Child process for capture_output tests: argv = base_dir echo(0/1) fail(0/1)."""

import subprocess
import sys

from quantbot.artifacts import create_run_directory

base_dir, echo, fail = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1"
try:
    with create_run_directory("policy", base_dir=base_dir, durable=False, git=False) as run:
        print(run.path, flush=True)
        with run.capture_output(echo=echo):
            print("from print")
            print("to stderr", file=sys.stderr)
            subprocess.run([sys.executable, "-c",
                            "import sys; print('from child'); print('child err', file=sys.stderr)"],
                           check=True)
            import os
            os.write(1, b"raw fd write\n")
            if fail:
                raise ValueError("bad")
        print("after capture")
except ValueError:
    print("caught", flush=True)
