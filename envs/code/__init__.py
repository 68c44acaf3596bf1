"""The code environment: write and run Python against hidden tests in a sandbox."""
