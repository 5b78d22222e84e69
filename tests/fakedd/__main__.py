"""Run FakeDatadog by hand: `uv run python -m tests.fakedd [PORT]`, then point the tasks at it, e.g.

    DD_API_KEY=fake-api-key DD_APP_KEY=fake-app-key INVOKE_API_BASE_URL=http://127.0.0.1:PORT uv run invoke apply
"""

import sys
import time

from tests.fakedd.server import FakeDatadog


def main() -> None:
    fake = FakeDatadog()
    fake.serve(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(f"FakeDatadog (a local stand-in, not Datadog) on {fake.url}; keys: fake-api-key / fake-app-key", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.close()


if __name__ == "__main__":
    main()
