"""The ``arco`` command line: catalog DDL, verification, GC and commit history."""

import time

#: When the CLI package was first imported: startup figures (``arco dev``'s "ready
#: in") count the imports of the CLI and its dependencies, as a user waits for them.
STARTED = time.monotonic()
