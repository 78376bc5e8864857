"""The ``arco`` command line: catalog DDL, verification, GC and commit history."""
