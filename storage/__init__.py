"""PostgreSQL (optionally TimescaleDB) storage: schema, migrations, bulk writes, queries."""
