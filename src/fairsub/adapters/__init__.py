"""Everything outside the core: database, email, payments, clocks, password hashing."""
