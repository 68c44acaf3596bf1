"""The SQL environment: text-to-SQL over generated, read-only SQLite databases."""
