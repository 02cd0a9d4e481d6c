"""The ``sleeplm`` command line: one module per subcommand."""
